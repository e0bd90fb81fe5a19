"""`hfo doctor` against a real deployment: the complete Terraform example applied to an AWS emulator
of its own (moto server), its real `terraform output -json`, the real health service behind the
drill's Funnel stand-in, and state written by the watchdog's own store. Every check is shown passing
on the healthy stack, then failing (or warning) after the live account is broken the way a user's
can be, and restored. The CLI's bad inputs exit 2 with a clear message and touch nothing.

Emulator gaps, each filled by a canned answer to the one call moto cannot make (validated against
AWS's API model, as botocore's Stubber validates its answers; every other call reaches moto):
- moto has no Lambda GetAccountSettings (the account's concurrency quota);
- moto confirms every SNS subscription at once (never `PendingConfirmation`).
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from hfo_drill.moto_server import MotoServer, moto_server
from hfo_protocol.heartbeat import Heartbeat
from hfo_protocol.nonce import new_nonce
from hfo_watchdog import cli, doctor
from hfo_watchdog.core.model import ControlState, Mode
from hfo_watchdog.store import DynamoStateStore
from testsupport.net import free_port
from testsupport.registry import Registry
from testsupport.terraform import Stack, TerraformEnv, make_stack, working_copy

pytestmark = [pytest.mark.terraform, pytest.mark.moto, pytest.mark.slow]

KEYRING = secrets.token_urlsafe(48)
TAILSCALE_KEY = "tskey-auth-" + secrets.token_hex(24)
WEBHOOK = f"https://discord.com/api/webhooks/{secrets.randbelow(10**18)}/{secrets.token_urlsafe(40)}"


@pytest.fixture(scope="module")
def doc_moto() -> Iterator[MotoServer]:
    """An emulator for this module only (the stack lives across its tests); AWS's managed policies
    loaded, as in every real account."""
    with moto_server(extra_env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}) as server:
        yield server


@pytest.fixture(scope="module")
def health_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """The images' registry: both images published for both platforms, as `make images` pushes them."""
    from testsupport.registry import Registry

    server = Registry().start(free_port())
    for repository in ("you/hfo-site", "you/hfo-bot"):
        server.publish(repository, "0.1.0", ["linux/amd64", "linux/arm64"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def session(doc_moto: MotoServer) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=doc_moto.region
    )


def _client(session: Any, service: str, endpoint: str) -> Any:
    return session.client(service, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def stack(
    tfenv: TerraformEnv,
    doc_moto: MotoServer,
    lambda_zip: Path,
    health_port: int,
    registry: Registry,
    session: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    key = _client(session, "kms", doc_moto.endpoint).create_key(Description="customer managed EBS key")
    tree = working_copy(tmp_path_factory.mktemp("doctor-stack"))
    variables = {
        "aws_emulator": True,
        "region": doc_moto.region,
        "health_url": f"https://127.0.0.1:{health_port}/healthz",
        "lambda_zip_path": str(lambda_zip),
        "alert_email": "ops@example.com",
        "secret_values_version": 1,
        "table_deletion_protection": False,
        "cpu_credits": "standard",  # moto gap (tests/terraform/test_stack.py)
        "ebs_kms_key_arn": key["KeyMetadata"]["Arn"],
        "workload_images": [f"{registry.host}/you/hfo-site:0.1.0", f"{registry.host}/you/hfo-bot:0.1.0"],
    }
    secret_env = {
        "TF_VAR_hmac_keyring": KEYRING,
        "TF_VAR_tailscale_auth_key": TAILSCALE_KEY,
        "TF_VAR_discord_webhook_url": WEBHOOK,
    }
    result = make_stack(tfenv, tree / "examples" / "complete", variables, doc_moto.env(), secret_env)
    result.apply()
    yield result


@pytest.fixture(scope="module")
def outputs_file(stack: Stack, tfenv: TerraformEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs exactly as the user saves them: `terraform output -json > outputs.json`."""
    result = tfenv.run(["output", "-json"], cwd=stack.directory)
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("outputs") / "outputs.json"
    path.write_text(result.stdout, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def outputs(outputs_file: Path) -> dict[str, Any]:
    return doctor.read_outputs_file(outputs_file)


@pytest.fixture
def aws_env(doc_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in doc_moto.env().items():
        monkeypatch.setenv(key, value)
    return doc_moto


@pytest.fixture(scope="module")
def healthy(stack: Stack, outputs: dict[str, Any], session: Any, doc_moto: MotoServer) -> None:
    """The state of a deployment that runs: the watchdog ticked a moment ago, in auto mode, and both
    sites heartbeated (written by the watchdog's own store, as the handlers write it)."""
    _write_state(session, doc_moto, outputs, tick_age_s=5, primary_age_s=3, standby=True)


def _store(session: Any, moto: MotoServer, outputs: dict[str, Any], now: float) -> DynamoStateStore:
    client = _client(session, "dynamodb", moto.endpoint)
    return DynamoStateStore(client, outputs["table_name"], writer="tick", clock=lambda: now)


def _write_state(
    session: Any,
    moto: MotoServer,
    outputs: dict[str, Any],
    *,
    tick_age_s: float | None,
    primary_age_s: float | None,
    standby: bool,
    mode: Mode = Mode.AUTO,
) -> None:
    """Replace the state table's items with a control item and site items of the given ages."""
    client = _client(session, "dynamodb", moto.endpoint)
    table = outputs["table_name"]
    for item in client.scan(TableName=table, ConsistentRead=True)["Items"]:
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    now = time.time()
    store = _store(session, moto, outputs, now)
    state = ControlState(version=1, mode=mode, last_tick_at=None if tick_age_s is None else now - tick_age_s)
    assert store.save(0, state, None)
    sites = ([("primary", primary_age_s)] if primary_age_s is not None else []) + (
        [("standby", 600.0)] if standby else []
    )
    for site, age in sites:
        hb = Heartbeat(
            site=site, sent_at=now - age, nonce=new_nonce(), seq=1, workload="stopped" if site == "standby" else
            "running", epoch_seen=1, ready=True, boot=secrets.token_hex(8),
        )  # fmt: skip
        store.record_heartbeat(hb, now - age, replay_window_s=3600)
    if primary_age_s is not None:  # the tick after the primary's first heartbeat armed the watchdog
        client.update_item(
            TableName=table,
            Key={"pk": {"S": "CONTROL"}, "sk": {"S": "STATE"}},
            UpdateExpression="SET armed_at = :t",
            ExpressionAttributeValues={":t": {"N": repr(now - primary_age_s)}},
        )


def run_checks(outputs: dict[str, Any], only: list[str] | None = None, **kw: Any) -> dict[str, doctor.Finding]:
    """The doctor with the user's environment (boto3 pointed at the emulator by `aws_env`)."""
    session = boto3.session.Session(region_name=outputs["watchdog"]["region"])
    wanted = None if only is None else ["aws-access", *only]
    findings = doctor.Doctor(outputs, session, **{"probe": False, **kw}).run(wanted)
    for f in findings:  # whatever the verdict, no secret value in what the user sees
        assert not {KEYRING, TAILSCALE_KEY, WEBHOOK} & {*f.line().split(), f.reason, f.fix}
        assert KEYRING not in f.line() and TAILSCALE_KEY not in f.line() and WEBHOOK not in f.line()
    return {f.check: f for f in findings}


def verdict(outputs: dict[str, Any], check: str, **kw: Any) -> doctor.Finding:
    return run_checks(outputs, [check], **kw)[check]


def canned(client: Any, operation: str, response: dict[str, Any]) -> Any:
    """Answer one operation of `client` with `response` (validated against AWS's API model, as
    botocore's Stubber does); every other call still goes to the emulator."""
    from botocore.validate import validate_parameters

    validate_parameters(response, client.meta.service_model.operation_model(operation).output_shape)
    http = SimpleNamespace(status_code=200, headers={})
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(event, lambda **_: (http, response))
    return client


def with_out(outputs: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of the outputs with `group.key` (or top-level) values changed."""
    copy = json.loads(json.dumps(outputs))
    for dotted, value in changes.items():
        group, _, key = dotted.partition("__")
        if key:
            copy[group][key] = value
        else:
            copy[group] = value
    return copy


ACCOUNT_SETTINGS = {
    "AccountLimit": {
        "TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10,
    },
    "AccountUsage": {"TotalCodeSize": 4000000, "FunctionCount": 2},
}  # fmt: skip


# --- the healthy deployment ---------------------------------------------------------------------


def test_every_check_passes_on_a_healthy_deployment(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer, health_port: int, tmp_path: Path
) -> None:
    """The stack as applied, state of a running watchdog, the real laptop answering the probe: all
    PASS (the concurrency quota answered as a new account's, which moto cannot)."""
    from testsupport.laptop import idle_laptop

    lam = canned(boto3.session.Session().client("lambda"), "GetAccountSettings", ACCOUNT_SETTINGS)
    with idle_laptop(tmp_path, KEYRING, funnel_port=health_port) as (url, ca_bundle):
        assert url == outputs["watchdog"]["health_url"]
        findings = run_checks(outputs, probe=True, ca_bundle=str(ca_bundle), clients={"lambda": lam})
    assert [c for c, _ in doctor.CHECKS] == list(findings)  # every check ran, in order
    not_passed = {f.line() for f in findings.values() if f.status is not doctor.Status.PASS}
    assert not_passed == set()
    assert "signed pass" in findings["health-probe"].reason
    assert "quota 10, unreserved 10" in findings["lambda-concurrency"].reason
    assert "3 bootstrap manifests" in findings["standby-config"].reason
    assert "published for linux/arm64, linux/amd64" in findings["image-platforms"].reason


def test_cli_reads_the_terraform_root_and_prints_json(
    healthy: None, stack: Stack, tfenv: TerraformEnv, aws_env: MotoServer
) -> None:
    """`hfo doctor --terraform-dir` runs `terraform output -json` itself; the installed entry point,
    as a child process: exit 0 with no FAIL (moto's missing quota is a WARN), JSON for machines."""
    env = {**os.environ, "PATH": f"{Path(tfenv.binary).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "hfo_watchdog.cli", "doctor", "--terraform-dir", str(stack.directory), "--json",
         "--no-probe"], capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    statuses = {c["check"]: c["status"] for c in doc["checks"]}
    assert statuses["lambda-concurrency"] == "WARN"  # moto has no GetAccountSettings
    assert statuses["health-probe"] == "SKIP"
    assert {s for c, s in statuses.items() if c not in ("lambda-concurrency", "health-probe")} == {"PASS"}
    assert doc["summary"]["fail"] == 0 and doc["exit_code"] == 0
    assert KEYRING not in result.stdout and TAILSCALE_KEY not in result.stdout and WEBHOOK not in result.stdout


def test_cli_exits_1_on_a_failure_with_the_fix(
    healthy: None, outputs_file: Path, outputs: dict[str, Any], aws_env: MotoServer
) -> None:
    scheduler = boto3.session.Session().client("scheduler")
    schedule = scheduler.get_schedule(Name=outputs["watchdog"]["schedule_name"])
    keep = {k: schedule[k] for k in ("Name", "ScheduleExpression", "FlexibleTimeWindow", "Target")}
    scheduler.update_schedule(**keep, State="DISABLED")
    try:
        out = io.StringIO()
        code = cli.main(["doctor", "--outputs", str(outputs_file), "--no-probe"], out=out)
    finally:
        scheduler.update_schedule(**keep, State="ENABLED")
    assert code == 1
    line = next(x for x in out.getvalue().splitlines() if " schedule " in x)
    assert line.startswith("FAIL") and "DISABLED" in line and "Fix:" in line
    assert out.getvalue().splitlines()[-1].endswith("failed, 1 skipped") and ", 1 failed," in out.getvalue()


# --- each check failing -------------------------------------------------------------------------


def test_aws_access_fails_without_credentials_and_the_rest_is_skipped(
    outputs: dict[str, Any], aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    findings = run_checks(outputs)
    assert findings["aws-access"].status is doctor.Status.FAIL
    assert "NoCredentialsError" in findings["aws-access"].reason
    assert findings["schedule"].status is doctor.Status.SKIP and "needs AWS access" in findings["schedule"].reason


def test_aws_access_fails_on_another_account(outputs: dict[str, Any], aws_env: MotoServer) -> None:
    other = with_out(outputs, alert_topic_arn="arn:aws:sns:us-east-1:210987654321:hfo-alerts")
    findings = run_checks(other, ["schedule"])
    assert findings["aws-access"].status is doctor.Status.FAIL
    assert "account 123456789012" in findings["aws-access"].reason and "210987654321" in findings["aws-access"].fix
    assert findings["schedule"].status is doctor.Status.SKIP


def test_standby_instance(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    missing = verdict(with_out(outputs, instance_id="i-0123456789abcdef0"), "standby-instance")
    assert missing.status is doctor.Status.FAIL and "does not exist" in missing.reason
    ec2 = boto3.session.Session().client("ec2")
    ec2.start_instances(InstanceIds=[outputs["instance_id"]])
    try:
        running = verdict(outputs, "standby-instance")
    finally:
        ec2.stop_instances(InstanceIds=[outputs["instance_id"]])
    assert running.status is doctor.Status.WARN and "costs by the hour" in running.reason
    assert verdict(outputs, "standby-instance").status is doctor.Status.PASS


def test_networks_overlap_with_a_vpc_block_added_later(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer
) -> None:
    ec2 = boto3.session.Session().client("ec2")
    vpc = ec2.describe_instances(InstanceIds=[outputs["instance_id"]])["Reservations"][0]["Instances"][0]["VpcId"]
    association = ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.42.8.0/24")["CidrBlockAssociation"]
    try:
        found = verdict(outputs, "networks")
    finally:
        ec2.disassociate_vpc_cidr_block(AssociationId=association["AssociationId"])
    assert found.status is doctor.Status.FAIL
    assert "10.42.8.0/24" in found.reason and "pod network 10.42.0.0/16" in found.reason
    assert verdict(outputs, "networks").status is doctor.Status.PASS


def test_networks_read_the_k3s_config_the_node_boots_with(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer
) -> None:
    """K3s's networks come from the node's k3s-config.yaml in SSM, not from what the outputs claim."""
    lying = with_out(outputs, standby__networks={**outputs["standby"]["networks"], "cluster_cidr": "10.200.0.0/16"})
    assert verdict(lying, "networks").status is doctor.Status.PASS


def test_standby_architecture(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    amd64_only = verdict(with_out(outputs, standby__image_platforms=["linux/amd64"]), "standby-architecture")
    assert amd64_only.status is doctor.Status.FAIL
    assert "arm64" in amd64_only.reason and "exec format error" in amd64_only.reason and "make images" in amd64_only.fix
    ec2 = boto3.session.Session().client("ec2")
    ec2.modify_instance_attribute(InstanceId=outputs["instance_id"], InstanceType={"Value": "t3.small"})
    try:
        wrong_type = verdict(outputs, "standby-architecture")
    finally:
        ec2.modify_instance_attribute(InstanceId=outputs["instance_id"], InstanceType={"Value": "t4g.small"})
    assert wrong_type.status is doctor.Status.FAIL and "t3.small runs only x86_64" in wrong_type.reason


def test_image_platforms(healthy: None, outputs: dict[str, Any], aws_env: MotoServer, registry: Registry) -> None:
    """Read from the registry: an image pushed by a plain `docker build` on an x86 machine (one
    platform) would fail with "exec format error" on the arm64 standby; a tag never pushed cannot be
    pulled at all; a registry out of reach is only a warning."""
    registry.publish("you/hfo-bot", "0.1.0", ["linux/amd64"], index=False)
    try:
        single = verdict(outputs, "image-platforms")
    finally:
        registry.publish("you/hfo-bot", "0.1.0", ["linux/amd64", "linux/arm64"])
    assert single.status is doctor.Status.FAIL and "make images" in single.fix
    assert f"{registry.host}/you/hfo-bot:0.1.0 has linux/amd64, not linux/arm64" in single.reason
    never_pushed = [f"{registry.host}/you/hfo-bot:0.2.0"]
    missing = verdict(with_out(outputs, standby__workload_images=never_pushed), "image-platforms")
    assert missing.status is doctor.Status.FAIL and "you/hfo-bot:0.2.0 is not in" in missing.reason
    unreachable = [f"127.0.0.1:{free_port()}/you/hfo-bot:0.1.0"]
    offline = verdict(with_out(outputs, standby__workload_images=unreachable), "image-platforms")
    assert offline.status is doctor.Status.WARN and "not reachable" in offline.reason
    assert verdict(outputs, "image-platforms", registry=False).status is doctor.Status.SKIP
    assert verdict(outputs, "image-platforms").status is doctor.Status.PASS
    assert "/token" in registry.requests  # the anonymous pull token, as from ghcr.io


def _set_tick_env(outputs: dict[str, Any], **changes: str | None) -> dict[str, str]:
    lam = boto3.session.Session().client("lambda")
    name = outputs["function_names"]["tick"]
    env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    new = {k: v for k, v in {**env, **changes}.items() if v is not None}
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": new})
    return dict(env)


def _restore_tick_env(outputs: dict[str, Any], env: dict[str, str]) -> None:
    lam = boto3.session.Session().client("lambda")
    lam.update_function_configuration(FunctionName=outputs["function_names"]["tick"], Environment={"Variables": env})


@pytest.mark.parametrize(
    ("types", "status", "words"),
    [
        ("t4g.medium,c7g.large", doctor.Status.PASS, "t4g.medium, c7g.large are all arm64"),
        ("t4g.medium,t3.small", doctor.Status.FAIL, "t3.small (x86_64, not arm64)"),
        ("t4g.micro", doctor.Status.FAIL, "t4g.micro (1024 MiB"),
        ("t4g.nosuch", doctor.Status.FAIL, "t4g.nosuch ("),
    ],
)
def test_fallback_types(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer, types: str, status: doctor.Status, words: str
) -> None:
    env = _set_tick_env(outputs, HFO_FALLBACK_INSTANCE_TYPES=types)
    try:
        found = verdict(outputs, "fallback-types")
    finally:
        _restore_tick_env(outputs, env)
    assert found.status is status and words in found.reason, found.line()


def test_kms_key(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    kms = boto3.session.Session().client("kms")
    key = kms.describe_key(KeyId=outputs["standby"]["ebs_kms_key_arn"])["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)  # by id: moto's DisableKey does not resolve an ARN
    try:
        disabled = verdict(outputs, "kms-key")
    finally:
        kms.enable_key(KeyId=key)
    assert disabled.status is doctor.Status.FAIL and "Disabled" in disabled.reason and "enable-key" in disabled.fix
    # The volume is encrypted with a customer managed key the stack was not told about (an account's
    # EBS default): StartInstances needs kms:CreateGrant, which the watchdog then lacks.
    unknown = verdict(with_out(outputs, standby__ebs_kms_key_arn=None), "kms-key")
    assert unknown.status is doctor.Status.FAIL and "kms:CreateGrant" in unknown.reason
    assert verdict(outputs, "kms-key").status is doctor.Status.PASS


def test_lambda_concurrency(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    lam = boto3.session.Session().client("lambda")
    tick = outputs["function_names"]["tick"]
    lam.put_function_concurrency(FunctionName=tick, ReservedConcurrentExecutions=0)
    try:
        zero = verdict(outputs, "lambda-concurrency")
        drift = verdict(
            with_out(outputs, watchdog__reserved_concurrency={"tick": 1, "heartbeat": -1}), "lambda-concurrency"
        )
    finally:
        lam.delete_function_concurrency(FunctionName=tick)
    assert zero.status is doctor.Status.FAIL and "never runs" in zero.reason and tick in zero.reason
    assert drift.status is doctor.Status.FAIL
    starved = dict(
        ACCOUNT_SETTINGS, AccountLimit={**ACCOUNT_SETTINGS["AccountLimit"], "UnreservedConcurrentExecutions": 5}
    )
    client = canned(boto3.session.Session().client("lambda"), "GetAccountSettings", starved)
    low = verdict(outputs, "lambda-concurrency", clients={"lambda": client})
    assert low.status is doctor.Status.FAIL and "unreserved concurrency is 5" in low.reason


def test_heartbeat_url(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    lam = boto3.session.Session().client("lambda")
    heartbeat = outputs["function_names"]["heartbeat"]
    lam.remove_permission(FunctionName=heartbeat, StatementId="FunctionUrlInvoke")
    try:
        closed = verdict(outputs, "heartbeat-url")
    finally:
        lam.add_permission(
            FunctionName=heartbeat, StatementId="FunctionUrlInvoke", Action="lambda:InvokeFunction", Principal="*"
        )
    assert closed.status is doctor.Status.FAIL and "lambda:InvokeFunction" in closed.reason and "403" in closed.reason
    stale = verdict(with_out(outputs, heartbeat_url="https://0123.lambda-url.us-east-1.on.aws/"), "heartbeat-url")
    assert stale.status is doctor.Status.FAIL and "HFO_HEARTBEAT_URL" in stale.fix
    assert verdict(outputs, "heartbeat-url").status is doctor.Status.PASS


def test_watchdog_config(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    env = _set_tick_env(outputs, HFO_INSTANCE_ID="i-0123456789abcdef0")
    try:
        other = verdict(outputs, "watchdog-config")
    finally:
        _restore_tick_env(outputs, env)
    assert other.status is doctor.Status.FAIL and "HFO_INSTANCE_ID is i-0123456789abcdef0" in other.reason
    env = _set_tick_env(outputs, HFO_DOWN_PROBES="0")
    try:
        refused = verdict(outputs, "watchdog-config")
    finally:
        _restore_tick_env(outputs, env)
    assert refused.status is doctor.Status.FAIL and "HFO_DOWN_PROBES" in refused.reason


def _put_secret(name: str, value: str) -> None:
    """As a user does: the secrets module's parameters are SSM SecureStrings (docs/security.md)."""
    ssm = boto3.session.Session().client("ssm")
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("PLACEHOLDER: put the keyring", "still holds a placeholder"),
        ("too-short", "not a valid keyring"),
        ('{"active": "k2", "keys": {"k1": "' + "x" * 40 + '"}}', "not a valid keyring"),
    ],
)
def test_hmac_keyring_refused(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer, value: str, words: str
) -> None:
    name = outputs["secret_names"]["hmac_keyring"]
    _put_secret(name, value)
    try:
        found = verdict(outputs, "hmac-keyring")
    finally:
        _put_secret(name, KEYRING)
    assert found.status is doctor.Status.FAIL and words in found.reason and "aws ssm put-parameter" in found.fix
    assert value not in found.line()


def test_secrets_without_a_value(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """A secret as Terraform creates it when the user puts the values by hand: no version yet."""
    sm = boto3.session.Session().client("secretsmanager")
    sm.create_secret(Name="hfo-empty/hmac-keyring")
    sm.create_secret(Name="hfo-empty/tailscale-auth-key")
    try:
        empty = with_out(outputs, secret_names={
            "hmac_keyring": "hfo-empty/hmac-keyring", "tailscale_auth_key": "hfo-empty/tailscale-auth-key",
            "discord_webhook": None,
        })  # fmt: skip
        findings = run_checks(
            empty, ["hmac-keyring", "tailscale-auth-key", "discord-webhook", "health-probe"], probe=True
        )
    finally:
        for name in ("hfo-empty/hmac-keyring", "hfo-empty/tailscale-auth-key"):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert findings["hmac-keyring"].status is doctor.Status.FAIL and "has no value" in findings["hmac-keyring"].reason
    # The standby has heartbeated (healthy state): it keeps its tailnet identity without the key.
    assert findings["tailscale-auth-key"].status is doctor.Status.WARN
    assert findings["discord-webhook"].status is doctor.Status.PASS and "off" in findings["discord-webhook"].reason
    assert findings["health-probe"].status is doctor.Status.SKIP


def test_secrets_held_in_ssm_parameters(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """The same checks on SecureString parameters (what the secrets module may name instead)."""
    ssm = boto3.session.Session().client("ssm")
    ssm.put_parameter(Name="/hfo-ssm/hmac-keyring", Type="SecureString", Value=KEYRING)
    ssm.put_parameter(Name="/hfo-ssm/tailscale-auth-key", Type="SecureString", Value="placeholder")
    try:
        in_ssm = with_out(outputs, secret_names={
            "hmac_keyring": "/hfo-ssm/hmac-keyring", "tailscale_auth_key": "/hfo-ssm/tailscale-auth-key",
            "discord_webhook": None,
        })  # fmt: skip
        _write_state(boto3.session.Session(), aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=False)
        findings = run_checks(in_ssm, ["hmac-keyring", "tailscale-auth-key"])
    finally:
        ssm.delete_parameters(Names=["/hfo-ssm/hmac-keyring", "/hfo-ssm/tailscale-auth-key"])
        _write_state(boto3.session.Session(), aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=True)
    assert findings["hmac-keyring"].status is doctor.Status.PASS
    assert "SSM parameter /hfo-ssm/hmac-keyring" in findings["hmac-keyring"].reason
    # No standby has ever joined: without a key, the next boot cannot join the tailnet.
    tailscale = findings["tailscale-auth-key"]
    assert tailscale.status is doctor.Status.FAIL and "cannot join the tailnet" in tailscale.reason
    assert "aws ssm put-parameter" in tailscale.fix
    missing = verdict(with_out(outputs, secret_names={**outputs["secret_names"], "hmac_keyring": "/hfo-ssm/none"}),
                      "hmac-keyring")  # fmt: skip
    assert missing.status is doctor.Status.FAIL and "no secret or SSM parameter named /hfo-ssm/none" in missing.reason


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [
        ("consumed: hfo-standby joined the tailnet at 2026-12-03T04:00:00Z", doctor.Status.PASS, "was consumed"),
        ("my-key-123", doctor.Status.FAIL, "holds no Tailscale auth key"),
    ],
)
def test_tailscale_auth_key(
    healthy: None, outputs: dict[str, Any], aws_env: MotoServer, value: str, status: doctor.Status, words: str
) -> None:
    name = outputs["secret_names"]["tailscale_auth_key"]
    _put_secret(name, value)
    try:
        found = verdict(outputs, "tailscale-auth-key")
    finally:
        _put_secret(name, TAILSCALE_KEY)
    assert found.status is status and words in found.reason


def test_discord_webhook_not_a_webhook(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    name = outputs["secret_names"]["discord_webhook"]
    _put_secret(name, "https://example.com/hook")
    try:
        found = verdict(outputs, "discord-webhook")
    finally:
        _put_secret(name, WEBHOOK)
    assert found.status is doctor.Status.FAIL and "no Discord webhook URL" in found.reason


def test_schedule_missing(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    found = verdict(with_out(outputs, watchdog__schedule_name="hfo-nosuch"), "schedule")
    assert found.status is doctor.Status.FAIL and "does not exist" in found.reason


def test_alert_subscription(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    topic = outputs["alert_topic_arn"]
    pending = {"Subscriptions": [{
        "SubscriptionArn": "PendingConfirmation", "Owner": "123456789012", "Protocol": "email",
        "Endpoint": "ops@example.com", "TopicArn": topic,
    }]}  # fmt: skip
    sns = canned(boto3.session.Session().client("sns"), "ListSubscriptionsByTopic", pending)
    found = verdict(outputs, "alert-subscription", clients={"sns": sns})
    assert (
        found.status is doctor.Status.FAIL and "PendingConfirmation" in found.reason and "confirm" in found.fix.lower()
    )
    nobody = canned(boto3.session.Session().client("sns"), "ListSubscriptionsByTopic", {"Subscriptions": []})
    no_discord = with_out(outputs, secret_names={**outputs["secret_names"], "discord_webhook": None})
    found = verdict(no_discord, "alert-subscription", clients={"sns": nobody})
    assert found.status is doctor.Status.WARN and "reach nobody" in found.reason


def _state(aws_env: MotoServer, outputs: dict[str, Any], **kw: Any) -> None:
    _write_state(boto3.session.Session(), aws_env, outputs, **kw)


def test_state_of_a_new_deployment(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """Right after `terraform apply`, paused as the walkthrough says, before the laptop exists."""
    _state(aws_env, outputs, tick_age_s=None, primary_age_s=None, standby=False, mode=Mode.PAUSED)
    try:
        findings = run_checks(outputs, ["mode", "armed", "primary-heartbeat", "last-tick", "standby-boot"])
    finally:
        _state(aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=True)
    assert findings["mode"].status is doctor.Status.WARN and "hfo resume" in findings["mode"].fix
    assert findings["armed"].status is doctor.Status.WARN and "not armed" in findings["armed"].reason
    assert findings["primary-heartbeat"].status is doctor.Status.WARN
    assert findings["last-tick"].status is doctor.Status.FAIL and "never ticked" in findings["last-tick"].reason
    assert findings["standby-boot"].status is doctor.Status.WARN and "step 7" in findings["standby-boot"].fix


def test_state_gone_stale(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """The laptop stopped heartbeating and the schedule stopped ticking 10 minutes ago."""
    _state(aws_env, outputs, tick_age_s=600, primary_age_s=600, standby=True)
    try:
        findings = run_checks(outputs, ["armed", "primary-heartbeat", "last-tick"])
    finally:
        _state(aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=True)
    assert findings["armed"].status is doctor.Status.PASS
    assert findings["primary-heartbeat"].status is doctor.Status.FAIL and "HFO_DOWN_HEARTBEAT_S" in findings[
        "primary-heartbeat"].reason  # fmt: skip
    assert findings["last-tick"].status is doctor.Status.FAIL and "10 min ago" in findings["last-tick"].reason


def test_armed_at_recorded_by_the_engine(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """When the control item records when the watchdog armed, that is what the doctor reports."""
    _state(aws_env, outputs, tick_age_s=5, primary_age_s=None, standby=False)
    ddb = boto3.session.Session().client("dynamodb")
    ddb.update_item(
        TableName=outputs["table_name"],
        Key={"pk": {"S": "CONTROL"}, "sk": {"S": "STATE"}},
        UpdateExpression="SET armed_at = :t",
        ExpressionAttributeValues={":t": {"N": "1780000000"}},
    )
    try:
        found = verdict(outputs, "armed")
    finally:
        _state(aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=True)
    assert found.status is doctor.Status.PASS and "armed" in found.reason and "2026-05-28" in found.reason


def test_armed_at_not_yet_set_by_the_engine(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """The primary heartbeated, but no tick has armed the watchdog yet (`armed_at` still null)."""
    ddb = boto3.session.Session().client("dynamodb")
    ddb.update_item(
        TableName=outputs["table_name"],
        Key={"pk": {"S": "CONTROL"}, "sk": {"S": "STATE"}},
        UpdateExpression="SET armed_at = :t",
        ExpressionAttributeValues={":t": {"NULL": True}},
    )
    try:
        found = verdict(outputs, "armed")
    finally:
        _state(aws_env, outputs, tick_age_s=5, primary_age_s=3, standby=True)
    assert found.status is doctor.Status.WARN and "the next tick arms it" in found.reason


def test_alarms(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    cloudwatch = boto3.session.Session().client("cloudwatch")
    silent = next(n for n in outputs["watchdog"]["alarm_names"] if n.endswith("-tick-failing"))
    cloudwatch.set_alarm_state(AlarmName=silent, StateValue="ALARM", StateReason="Threshold Crossed: no invocation")
    try:
        firing = verdict(outputs, "alarms")
    finally:
        cloudwatch.set_alarm_state(AlarmName=silent, StateValue="OK", StateReason="back")
    assert firing.status is doctor.Status.WARN and silent in firing.reason and "no invocation" in firing.reason
    gone = verdict(with_out(outputs, watchdog__alarm_names=[*outputs["watchdog"]["alarm_names"], "hfo-gone"]), "alarms")
    assert gone.status is doctor.Status.WARN and "missing: hfo-gone" in gone.reason
    assert verdict(outputs, "alarms").status is doctor.Status.PASS


def _node_parameters(outputs: dict[str, Any]) -> dict[str, str]:
    ssm = boto3.session.Session().client("ssm")
    values: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=outputs["standby"]["parameter_path"], Recursive=True
    ):
        values.update({p["Name"]: p["Value"] for p in page["Parameters"]})
    return values


def test_standby_config(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    ssm = boto3.session.Session().client("ssm")
    params = _node_parameters(outputs)
    path = outputs["standby"]["parameter_path"]
    manifests = sorted(n for n in params if n.startswith(f"{path}/manifests/"))
    first = manifests[0]
    ssm.delete_parameter(Name=first)
    try:
        missing = verdict(outputs, "standby-config")
    finally:
        ssm.put_parameter(Name=first, Value=params[first], Type="String", Overwrite=True)
    assert missing.status is doctor.Status.FAIL and "missing manifests/" in missing.reason
    changed = params[f"{path}/images/00"]
    import gzip

    ssm.put_parameter(Name=f"{path}/images/00", Type="String", Overwrite=True,
                      Value=base64.b64encode(gzip.compress(b"ghcr.io/evil/bot:1\n")).decode())  # fmt: skip
    try:
        edited = verdict(outputs, "standby-config")
    finally:
        ssm.put_parameter(Name=f"{path}/images/00", Value=changed, Type="String", Overwrite=True)
    assert edited.status is doctor.Status.FAIL and "not what Terraform wrote: images" in edited.reason
    for name in manifests:
        ssm.delete_parameter(Name=name)
    no_manifests = {k: v for k, v in outputs["standby"]["parameter_files"].items() if not k.startswith("manifests/")}
    try:
        none = verdict(with_out(outputs, standby__parameter_files=no_manifests), "standby-config")
    finally:
        for name in manifests:
            ssm.put_parameter(Name=name, Value=params[name], Type="String", Overwrite=True)
    assert none.status is doctor.Status.FAIL and "without Argo CD" in none.reason
    assert verdict(outputs, "standby-config").status is doctor.Status.PASS


def test_standby_loader(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    ec2 = boto3.session.Session().client("ec2")
    instance_id = outputs["instance_id"]
    original = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    text = base64.b64decode(original).decode()
    try:
        for user_data, words in [
            (text.replace("/hfo/standby", "/other/standby"), "does not read /hfo/standby"),
            ("#cloud-config\nruncmd: [[echo, hello]]\n", "no hfo-bootstrap loader"),
        ]:
            # moto decodes this Value once more than AWS (whose SDKs encode it for you): give it base64.
            ec2.modify_instance_attribute(
                InstanceId=instance_id, UserData={"Value": base64.b64encode(user_data.encode())}
            )
            found = verdict(outputs, "standby-loader")
            assert found.status is doctor.Status.FAIL and words in found.reason, found.line()
    finally:
        ec2.modify_instance_attribute(InstanceId=instance_id, UserData={"Value": original.encode()})
    assert verdict(outputs, "standby-loader").status is doctor.Status.PASS


def test_health_probe_fails_with_its_class(healthy: None, outputs: dict[str, Any], aws_env: MotoServer) -> None:
    """Nothing listens on the health URL's port (the laptop's Funnel is down): the probe's class."""
    found = verdict(outputs, "health-probe", probe=True)
    assert found.status is doctor.Status.FAIL and "connect_refused" in found.reason
    assert "hfo probe" in found.fix


# --- bad input -----------------------------------------------------------------------------------


def _doctor_cli(args: list[str]) -> tuple[int, str, str]:
    result = subprocess.run([sys.executable, "-m", "hfo_watchdog.cli", "doctor", *args], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: [], "one of the arguments --terraform-dir --outputs is required"),
        (lambda d: ["--outputs", str(d / "o.json"), "--terraform-dir", str(d)], "not allowed with argument"),
        (lambda d: ["--outputs", str(d / "missing.json")], "cannot read"),
        (lambda d: ["--outputs", str(d / "not-json.txt")], "is not JSON"),
        (lambda d: ["--outputs", str(d / "empty.json")], "no outputs at all"),
        (lambda d: ["--outputs", str(d / "other.json")], "missing output(s)"),
        (lambda d: ["--outputs", str(d / "wrong-type.json")], "must be an object"),
        (lambda d: ["--terraform-dir", str(d / "nowhere")], "is not a directory"),
        (lambda d: ["--terraform-dir", str(d), "--terraform", str(d / "no-terraform")], "terraform not found"),
        (lambda d: ["--outputs", str(d / "o.json"), "--ca-bundle", str(d / "no-ca.pem")], "--ca-bundle"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, outputs: dict[str, Any], make: Any, words: str) -> None:
    (tmp_path / "o.json").write_text(json.dumps({k: {"value": v} for k, v in outputs.items()}), encoding="utf-8")
    (tmp_path / "not-json.txt").write_text("table_name = hfo-state\n", encoding="utf-8")
    (tmp_path / "empty.json").write_text("{}", encoding="utf-8")
    (tmp_path / "other.json").write_text(json.dumps({"vpc_id": {"value": "vpc-1"}}), encoding="utf-8")
    (tmp_path / "wrong-type.json").write_text(json.dumps({**outputs, "standby": "x"}), encoding="utf-8")
    code, out, err = _doctor_cli(make(tmp_path))
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err and out == ""


def test_an_empty_terraform_root_exits_2(tmp_path: Path, tfenv: TerraformEnv) -> None:
    """A directory where `terraform apply` never ran: `terraform output -json` prints {}."""
    env = {**os.environ, "PATH": f"{Path(tfenv.binary).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "hfo_watchdog.cli", "doctor", "--terraform-dir", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2 and "no outputs at all" in result.stderr and "Traceback" not in result.stderr
