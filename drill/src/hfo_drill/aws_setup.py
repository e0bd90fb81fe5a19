"""The drill's AWS side, on the moto server: what Terraform creates, and the watchdog's
configuration as Terraform gave it to the functions, read back from the emulator.

Two ways to the same account:

- `with_terraform()`: the repository's complete example (terraform/examples/complete), applied
  to moto with the offline provider mirror (`hfo_drill.terraform`);
- `directly()`: when Terraform cannot be used here, the same resources under the same names,
  created with boto3: state table, stopped standby instance, alert topic, HMAC secret, an IAM
  role and the two functions with the environment the Terraform module sets (its defaults),
  and the heartbeat function's URL. The caller says so in its output.

Either way the drill then reads the functions' configuration back with
`lambda:GetFunctionConfiguration` (`read_functions`): the watchdog runs on what the function in
the account holds, not on what the drill meant to give it. `accelerate()` then scales that
configuration's timings down for a run of minutes (docs/demo.md, "Timings").

Needs the development dependencies (moto[server], boto3); the Lambda package never imports it.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from hfo_drill.proc import Child
from hfo_drill.terraform import Terraform, apply_example, lambda_package

NAME = "hfo"  # the example's default name prefix; the direct path uses the same names
REGION = "us-east-1"

# What terraform/modules/watchdog gives both functions, with the module's defaults (which are the
# watchdog's documented defaults, docs/configuration.md). The direct path sets exactly this.
MODULE_DEFAULTS: Mapping[str, str] = {
    "HFO_TICK_INTERVAL_S": "60",
    "HFO_PROBE_CONNECT_TIMEOUT_S": "3",
    "HFO_PROBE_READ_TIMEOUT_S": "5",
    "HFO_PROBE_MAX_BODY_BYTES": "65536",
    "HFO_MAX_SKEW_S": "30",
    "HFO_DOWN_PROBES": "3",
    "HFO_DOWN_HEARTBEAT_S": "180",
    "HFO_RECOVERY_PROBES": "3",
    "HFO_RECOVERY_STEADY_S": "180",
    "HFO_HEARTBEAT_INTERVAL_S": "10",
    "HFO_LEASE_TTL_S": "60",
    "HFO_STOP_GRACE_S": "30",
    "HFO_START_COOLDOWN_S": "900",
    "HFO_MIN_STATE_S": "120",
    "HFO_STANDBY_MAX_RUNTIME_S": "86400",
    "HFO_HISTORY_DAYS": "30",
    "HFO_AWS_MAX_ATTEMPTS": "3",
    "HFO_TRACING": "false",
    "POWERTOOLS_SERVICE_NAME": "hfo-watchdog",
    "POWERTOOLS_METRICS_NAMESPACE": "HybridFailover",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}

# --- accelerating the configuration ---------------------------------------------------------

TIME_FACTOR = 60  # one production minute is one drill second
# Durations divided by TIME_FACTOR, rounded up to whole seconds (the watchdog reads them as
# integers), then raised to the smallest value it accepts (docs/configuration.md).
SCALED_DURATIONS: Mapping[str, int] = {
    "HFO_TICK_INTERVAL_S": 1,
    "HFO_HEARTBEAT_INTERVAL_S": 1,
    "HFO_LEASE_TTL_S": 5,
    "HFO_STOP_GRACE_S": 0,
    "HFO_DOWN_HEARTBEAT_S": 10,
    "HFO_RECOVERY_STEADY_S": 0,
    "HFO_MIN_STATE_S": 0,
    "HFO_START_COOLDOWN_S": 0,
    "HFO_STANDBY_MAX_RUNTIME_S": 600,
}
# Network timeouts do not shrink with the story (a TLS handshake on a loaded machine takes what
# it takes); they are divided by 10 and must still fit in one tick.
NETWORK_FACTOR = 10
NETWORK_TIMEOUTS = ("HFO_PROBE_CONNECT_TIMEOUT_S", "HFO_PROBE_READ_TIMEOUT_S")


class DrillConfigError(ValueError):
    """A function environment the drill cannot scale; names the variable."""


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None
    after: str
    why: str


def _number(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name)
    if raw is None:
        raise DrillConfigError(f"{name}: missing from the function's environment")
    try:
        value = float(raw)
    except ValueError:
        raise DrillConfigError(f"{name}: {raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise DrillConfigError(f"{name}: {raw!r} must be a finite number >= 0")
    return value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def accelerate(env: Mapping[str, str], factor: int = TIME_FACTOR) -> tuple[dict[str, str], list[Change]]:
    """The function's environment with its timings scaled down for the drill, and what changed
    and why. Counts (failed probes, good probes) and everything else are kept as given.

    1. every duration of SCALED_DURATIONS: divided by `factor`, rounded up, raised to the
       watchdog's minimum;
    2. the probe's connect and read timeouts: divided by NETWORK_FACTOR, and shrunk further if
       both together would not fit in one tick;
    3. the watchdog's timing rules, restored if rounding broke them: lease TTL >= 3 heartbeat
       intervals, and heartbeat silence > lease TTL + stop grace + heartbeat interval.
    """
    if factor < 1:
        raise DrillConfigError(f"time factor: must be at least 1, got {factor}")
    out = dict(env)
    changes: list[Change] = []

    def put(name: str, value: float, why: str) -> None:
        text = _fmt(value)
        if out.get(name) != text:
            changes.append(Change(name, out.get(name), text, why))
            out[name] = text

    for name, minimum in SCALED_DURATIONS.items():
        value = math.ceil(_number(env, name) / factor)
        why = f"/{factor}, rounded up"
        if value < minimum:
            value, why = minimum, f"/{factor} is below the watchdog's minimum {minimum}"
        put(name, value, why)

    tick = _number(out, "HFO_TICK_INTERVAL_S")
    timeouts = {name: round(_number(env, name) / NETWORK_FACTOR, 2) for name in NETWORK_TIMEOUTS}
    total = sum(timeouts.values())
    if total >= tick:
        shrink = 0.8 * tick / total
        timeouts = {name: max(0.1, round(v * shrink, 2)) for name, v in timeouts.items()}
    for name, value in timeouts.items():
        put(name, value, f"/{NETWORK_FACTOR} (a network timeout), connect + read within one tick")

    hb = _number(out, "HFO_HEARTBEAT_INTERVAL_S")
    if _number(out, "HFO_LEASE_TTL_S") < 3 * hb:
        put("HFO_LEASE_TTL_S", 3 * hb, "raised to 3 heartbeat intervals (one lost heartbeat must not fence)")
    need = _number(out, "HFO_LEASE_TTL_S") + _number(out, "HFO_STOP_GRACE_S") + hb
    if _number(out, "HFO_DOWN_HEARTBEAT_S") <= need:
        put("HFO_DOWN_HEARTBEAT_S", math.floor(need) + 1, "raised above lease TTL + stop grace + heartbeat interval")
    return out, changes


# --- the account ----------------------------------------------------------------------------


@dataclass
class AwsSide:
    how: str  # "terraform" or "direct"
    note: str  # one sentence for the output: what created it, and why that way
    table: str
    instance_id: str
    topic_arn: str
    secret_arn: str
    functions: dict[str, str]  # tick / heartbeat -> function name
    function_url: str  # the heartbeat URL as the emulator reports it
    seconds: float
    detail: str = ""
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # GetFunctionConfiguration

    @property
    def url_id(self) -> str:
        host = self.function_url.split("://", 1)[-1].split("/", 1)[0]
        return host.split(".", 1)[0]

    def env(self, which: str) -> dict[str, str]:
        return dict(self.configs[which].get("Environment", {}).get("Variables", {}))


def read_functions(session: Any, side: AwsSide) -> None:
    """Fill `side.configs` from the emulator: what the functions really hold."""
    client = session.client("lambda")
    for which, name in side.functions.items():
        side.configs[which] = client.get_function_configuration(FunctionName=name)


def with_terraform(
    session: Any,
    tf: Terraform,
    aws_env: Mapping[str, str],
    keyring_text: str,
    health_url: str,
    register: Callable[[Child], None],
) -> AwsSide:
    zip_path, zip_note = lambda_package(tf.repo, tf.scratch)
    variables = {
        "aws_emulator": True,  # the example's switch for an emulator: skip what needs a real account
        "region": aws_env.get("AWS_REGION", REGION),
        "health_url": health_url,
        "lambda_zip_path": str(zip_path),
        "secret_values_version": 1,  # Terraform writes the keyring (write-only, never in state)
        "discord_alerts": False,  # no webhook here: alerts go to the SNS topic
    }
    secrets = {
        "TF_VAR_hmac_keyring": keyring_text,
        # The standby never runs Tailscale here; the module still wants a key to store.
        "TF_VAR_tailscale_auth_key": "tskey-auth-drill-" + "0" * 24,
    }
    applied = apply_example(tf, variables, aws_env, secrets, register)
    o = applied.outputs
    return AwsSide(
        how="terraform",
        note=f"terraform apply of terraform/examples/complete (checkout {tf.repo}); Lambda code: {zip_note}",
        table=str(o["table_name"]),
        instance_id=str(o["instance_id"]),
        topic_arn=str(o["alert_topic_arn"]),
        secret_arn=_secret_arn(session, str(o["hmac_secret_name"])),
        functions={"tick": str(o["function_names"]["tick"]), "heartbeat": str(o["function_names"]["heartbeat"])},
        function_url=str(o["heartbeat_url"]),
        seconds=applied.seconds,
        detail=applied.resources,
    )


def _secret_arn(session: Any, name: str) -> str:
    return str(session.client("secretsmanager").describe_secret(SecretId=name)["ARN"])


_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _source_zip() -> bytes:
    """The function code for the direct path: moto stores it and never runs it."""
    import hfo_watchdog

    buf = io.BytesIO()
    package = Path(hfo_watchdog.__file__).resolve().parent
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*.py")):
            zf.writestr(f"hfo_watchdog/{path.relative_to(package).as_posix()}", path.read_bytes())
    return buf.getvalue()


def ensure_table(client: Any, name: str, *, timeout_s: float = 30.0) -> None:
    """Create the state table as terraform/modules/watchdog does (keys `pk`/`sk`, on demand, TTL on
    `expires_at`); an existing table is kept."""
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    deadline = time.monotonic() + timeout_s
    while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} not ACTIVE within {timeout_s:.0f}s")
        time.sleep(0.2)
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )


def directly(session: Any, keyring_text: str, health_url: str, why: str) -> AwsSide:
    started = time.monotonic()
    table = f"{NAME}-state"
    ensure_table(session.client("dynamodb"), table)
    ec2 = session.client("ec2")
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["arm64"]}])["Images"]
    image = (images or ec2.describe_images(Owners=["amazon"])["Images"])[0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{NAME}-standby"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    topic = session.client("sns").create_topic(Name=f"{NAME}-alerts")["TopicArn"]
    secret_arn = session.client("secretsmanager").create_secret(Name=f"{NAME}/hmac-keyring", SecretString=keyring_text)[
        "ARN"
    ]
    role = session.client("iam").create_role(
        RoleName=f"{NAME}-watchdog", AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST)
    )["Role"]["Arn"]
    env = {
        **MODULE_DEFAULTS,
        "HFO_TABLE_NAME": table,
        "HFO_INSTANCE_ID": instance,
        "HFO_HEALTH_URL": health_url,
        "HFO_HMAC_SECRET_ARN": secret_arn,
        "HFO_SNS_TOPIC_ARN": topic,
    }
    lam = session.client("lambda")
    code = _source_zip()
    functions = {}
    for which, timeout in (("tick", 30), ("heartbeat", 10)):
        name = f"{NAME}-{which}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=f"hfo_watchdog.handlers.{which}",
            Code={"ZipFile": code},
            Timeout=timeout,
            MemorySize=256,
            Architectures=["arm64"],
            Environment={"Variables": env},
        )
        functions[which] = name
    url = lam.create_function_url_config(FunctionName=functions["heartbeat"], AuthType="NONE")["FunctionUrl"]
    return AwsSide(
        how="direct",
        note=f"created directly with boto3, not by Terraform: {why}",
        table=table,
        instance_id=instance,
        topic_arn=topic,
        secret_arn=secret_arn,
        functions=functions,
        function_url=url,
        seconds=time.monotonic() - started,
    )


def subscribe_inbox(session: Any, topic_arn: str) -> str:
    """An SQS queue subscribed to the alert topic, so the drill can show what was sent (the
    drill's own tap on the topic; Terraform subscribes only an optional e-mail address)."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName="hfo-drill-alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return str(url)
