"""The drill's AWS side: the timings scaled down (and still accepted by the watchdog), the
fallback that creates the same resources without Terraform, and the configuration read back
from the emulator. The fallback takes its configuration from the Terraform modules' own files,
checked here against the module read another way, and shown to follow a changed default."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import boto3
import pytest
from hfo_drill.aws_setup import directly, ensure_table, read_functions
from hfo_drill.module_defaults import ModuleDefaultsError, watchdog_defaults, watchdog_environment
from hfo_drill.moto_server import MotoServer
from hfo_drill.timescale import DrillConfigError, accelerate
from hfo_watchdog.config import Settings
from hfo_watchdog.core.model import Policy
from testsupport.tools import REPO_ROOT

IDS = {
    "HFO_TABLE_NAME": "hfo-state",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://127.0.0.1:8443/healthz",
    "HFO_HMAC_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hfo/hmac-keyring-AbCdEf",
    "HFO_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:hfo-alerts",
}


MODULE_DEFAULTS = watchdog_environment(REPO_ROOT)[0]


def production() -> dict[str, str]:
    return {**MODULE_DEFAULTS, **IDS}


def test_the_production_defaults_scale_to_the_documented_drill_timings() -> None:
    fast, changes = accelerate(production())
    expected = {
        "HFO_TICK_INTERVAL_S": "1",
        "HFO_HEARTBEAT_INTERVAL_S": "1",
        "HFO_LEASE_TTL_S": "5",
        "HFO_STOP_GRACE_S": "1",
        "HFO_DOWN_HEARTBEAT_S": "10",
        "HFO_RECOVERY_STEADY_S": "10",
        "HFO_MIN_STATE_S": "2",
        "HFO_START_COOLDOWN_S": "15",
        "HFO_STANDBY_MAX_RUNTIME_S": "1440",
        "HFO_PROBE_CONNECT_TIMEOUT_S": "0.3",
        "HFO_PROBE_READ_TIMEOUT_S": "0.5",
        "HFO_PREWARM_SILENCE_S": "3",
        "HFO_PREWARM_HOLD_S": "10",
        "HFO_PROBE_LEASE_TTL_S": "2",
        "HFO_PROBE_RENEW_AFTER_S": "0",  # 0 (renew at every passing probe) stays 0
        "HFO_HANDOVER_HEARTBEAT_INTERVAL_S": "1",
    }
    assert {k: fast[k] for k in expected} == expected
    assert {c.name for c in changes} == set(expected) - {"HFO_PROBE_RENEW_AFTER_S"}
    # Counts and everything else are kept as Terraform gave them.
    for key in ("HFO_DOWN_PROBES", "HFO_RECOVERY_PROBES", "HFO_MAX_SKEW_S", *IDS):
        assert fast[key] == production()[key]
    why = {c.name: c.why for c in changes}
    assert "minimum 5" in why["HFO_LEASE_TTL_S"] and "rounded up" in why["HFO_START_COOLDOWN_S"]
    assert "3 heartbeat intervals" in why["HFO_PREWARM_SILENCE_S"]
    Settings.from_env(fast)  # the watchdog accepts it, timing rules included


def test_rounding_that_breaks_the_timing_rules_is_repaired() -> None:
    slow_beats = {**production(), "HFO_HEARTBEAT_INTERVAL_S": "300", "HFO_LEASE_TTL_S": "900"}
    fast, changes = accelerate(slow_beats)
    assert fast["HFO_HEARTBEAT_INTERVAL_S"] == "5"
    assert fast["HFO_LEASE_TTL_S"] == "15"  # 900/60 = 15 >= 3 x 5
    assert fast["HFO_DOWN_HEARTBEAT_S"] == "22"  # raised above 15 + 1 + 5
    assert any(c.name == "HFO_DOWN_HEARTBEAT_S" and "raised above" in c.why for c in changes)
    Settings.from_env(fast)


def test_probe_timeouts_are_shrunk_to_fit_one_tick() -> None:
    fast, _ = accelerate({**production(), "HFO_PROBE_CONNECT_TIMEOUT_S": "30", "HFO_PROBE_READ_TIMEOUT_S": "30"})
    total = float(fast["HFO_PROBE_CONNECT_TIMEOUT_S"]) + float(fast["HFO_PROBE_READ_TIMEOUT_S"])
    assert total < float(fast["HFO_TICK_INTERVAL_S"])
    Settings.from_env(fast)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HFO_LEASE_TTL_S": "soon"}, "HFO_LEASE_TTL_S: 'soon' is not a number of seconds"),
        ({"HFO_MIN_STATE_S": "-1"}, "HFO_MIN_STATE_S: '-1' must be a finite number >= 0"),
        ({"HFO_TICK_INTERVAL_S": None}, "HFO_TICK_INTERVAL_S: missing from the function's environment"),
    ],
)
def test_a_configuration_it_cannot_scale_is_refused_by_name(change: dict[str, str | None], message: str) -> None:
    env = production()
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(DrillConfigError, match=re.escape(message)):
        accelerate(env)


@pytest.mark.moto
def test_the_fallback_creates_the_resources_and_functions_hold_the_module_environment(aws: MotoServer) -> None:
    session = boto3.session.Session()
    side = directly(
        session, "fallback-keyring-0123456789abcdef0123", "https://127.0.0.1:9/healthz", "no terraform here"
    )
    assert side.how == "direct" and "no terraform here" in side.note
    read_functions(session, side)
    env = side.env("tick")
    assert env == side.env("heartbeat")
    assert env == {
        **MODULE_DEFAULTS,
        "HFO_TABLE_NAME": side.table,
        "HFO_INSTANCE_ID": side.instance_id,
        "HFO_HEALTH_URL": "https://127.0.0.1:9/healthz",
        "HFO_HMAC_SECRET_ARN": side.secret_arn,
        "HFO_SNS_TOPIC_ARN": side.topic_arn,
        # the state handoff, as modules/watchdog sets it with a state bucket
        "HFO_STATE_BUCKET": side.state_bucket,
        "HFO_STATE_ROLE_ARN": side.state_role_arn,
        "HFO_STATE_CREDENTIALS_TTL_S": "900",
    }
    s3 = session.client("s3")
    assert s3.get_bucket_versioning(Bucket=side.state_bucket)["Status"] == "Enabled"
    # the functions' role may assume the state role, which may touch state/* only
    iam = session.client("iam")
    role_name = side.state_role_arn.rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    assert [st["Principal"]["AWS"] for st in trust["Statement"]] == [side.configs["tick"]["Role"]]
    policy = iam.get_role_policy(RoleName=role_name, PolicyName="state")["PolicyDocument"]
    assert {r for st in policy["Statement"] for r in [st["Resource"]]} == {
        f"arn:aws:s3:::{side.state_bucket}/state/*",
        f"arn:aws:s3:::{side.state_bucket}",
        f"arn:aws:s3:::{side.state_bucket}/state/*/epochs/*",
    }
    tagging = [st for st in policy["Statement"] if st["Action"] == "s3:PutObjectTagging"]
    assert [st["Resource"] for st in tagging] == [f"arn:aws:s3:::{side.state_bucket}/state/*/epochs/*"]
    assert side.configs["tick"]["Handler"] == "hfo_watchdog.handlers.tick"
    assert side.configs["heartbeat"]["Handler"] == "hfo_watchdog.handlers.heartbeat"
    module = watchdog_defaults(REPO_ROOT)
    assert (
        (side.configs["tick"]["Timeout"], side.configs["heartbeat"]["Timeout"])
        == (30, 10)
        == (
            module.tick_timeout_s,
            module.heartbeat_timeout_s,
        )
    )
    for config in side.configs.values():
        assert (config["MemorySize"], config["Architectures"]) == (module.memory_mb, [module.lambda_architecture])
    instance = session.client("ec2").describe_instances(InstanceIds=[side.instance_id])["Reservations"][0]
    assert instance["Instances"][0]["State"]["Name"] == "stopped"
    url = session.client("lambda").get_function_url_config(FunctionName=side.functions["heartbeat"])
    assert url["AuthType"] == "NONE" and url["FunctionUrl"] == side.function_url
    assert side.url_id and side.url_id in side.function_url
    secret = session.client("ssm").get_parameter(Name=side.secret_arn, WithDecryption=True)["Parameter"]["Value"]
    assert secret == "fallback-keyring-0123456789abcdef0123"
    assert session.client("dynamodb").describe_table(TableName=side.table)["Table"]["TableStatus"] == "ACTIVE"


@pytest.mark.moto
def test_ensure_table_is_idempotent_and_enables_ttl(aws: MotoServer) -> None:
    client = boto3.client("dynamodb")
    ensure_table(client, "t1")
    ensure_table(client, "t1")
    table = client.describe_table(TableName="t1")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="t1")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


MODULE = REPO_ROOT / "terraform" / "modules" / "watchdog"


def test_the_fallback_environment_is_the_terraform_modules_with_its_defaults() -> None:
    """hcl2's reading of the module (what the fallback uses) against a plain-text reading of it."""
    main = (MODULE / "main.tf").read_text()
    variables = (MODULE / "variables.tf").read_text()
    block = main[main.index("environment = merge(") :]
    block = block[: block.index("\n  )\n")]
    settings = dict(re.findall(r"^\s+((?:HFO|POWERTOOLS)_[A-Z_]+)\s+=\s+(.+?)\s*$", block, flags=re.MULTILINE))
    resource_bound = {"HFO_TABLE_NAME", "HFO_INSTANCE_ID", "HFO_HEALTH_URL", "HFO_HMAC_SECRET_ARN", "HFO_SNS_TOPIC_ARN"}
    optional = {"HFO_DISCORD_WEBHOOK_SECRET_ARN", "HFO_FALLBACK_INSTANCE_TYPES"}  # off by default
    assert set(settings) - resource_bound - optional == set(MODULE_DEFAULTS)

    def default(var: str) -> str:
        found = re.search(rf'variable "{var}" \{{.*?\n  default\s+=\s+(\S+)', variables, flags=re.DOTALL)
        assert found, var
        return found.group(1).strip('"')

    for name, expression in settings.items():
        if name not in MODULE_DEFAULTS:
            continue
        scaled = re.fullmatch(r"tostring\(var\.(\w+) \* 60\)", expression)
        plain = re.fullmatch(r"tostring\(var\.(\w+)\)", expression)
        boolean = re.fullmatch(r'var\.(\w+) \? "true" : "false"', expression)
        negated = re.fullmatch(r'var\.(\w+) \? "false" : "true"', expression)
        if scaled:
            value = str(int(default(scaled.group(1))) * 60)
        elif plain:
            value = default(plain.group(1))
        elif boolean:
            value = default(boolean.group(1))
        elif negated:
            value = {"true": "false", "false": "true"}[default(negated.group(1))]
        elif expression.startswith("var."):
            value = default(expression[4:])
        else:
            value = expression.strip('"')
        assert MODULE_DEFAULTS[name] == value, name


def _tree_with(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the checkout's terraform/ with one edit in `file`."""
    shutil.copytree(REPO_ROOT / "terraform", tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    path = tmp_path / "terraform" / file
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.moto
def test_the_fallback_follows_a_changed_module_default(aws: MotoServer, tmp_path: Path) -> None:
    """Nothing is copied by hand: a default changed in the module's variables.tf is what the
    functions created without Terraform hold."""
    rule = 'failed probes in a row before the probe signal says down."\n  type        = number\n  default     = '
    shipped = f"{int(Policy().down_probes)}\n"
    repo = _tree_with(tmp_path, "modules/watchdog/variables.tf", rule + shipped, rule + "5\n")
    session = boto3.session.Session()
    side = directly(session, "fallback-keyring-0123456789abcdef0123", "https://127.0.0.1:9/healthz", "t", repo=repo)
    read_functions(session, side)
    assert side.env("tick")["HFO_DOWN_PROBES"] == side.env("heartbeat")["HFO_DOWN_PROBES"] == "5"


def test_a_module_expression_the_reader_cannot_follow_is_refused_by_name(tmp_path: Path) -> None:
    repo = _tree_with(
        tmp_path,
        "modules/watchdog/main.tf",
        "HFO_MAX_SKEW_S               = tostring(var.max_skew_s)",
        "HFO_MAX_SKEW_S               = tostring(max(var.max_skew_s, 10))",
    )
    with pytest.raises(ModuleDefaultsError, match=r"HFO_MAX_SKEW_S = tostring\(max\(var\.max_skew_s, 10\)\)"):
        watchdog_defaults(repo)


def test_a_checkout_without_the_modules_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModuleDefaultsError, match=r"terraform/modules/watchdog/variables\.tf not found"):
        watchdog_defaults(tmp_path)
