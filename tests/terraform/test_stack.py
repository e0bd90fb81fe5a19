"""The complete example, applied for real against the AWS emulator once for this module, then
checked through boto3 the way a user's account would be: what runs, what is locked down, what
the watchdog is given. The standby node boots from what was applied (the real loader and bootstrap
script, the real AWS CLI), and an edited bootstrap manifest reaches it without replacing it. Then a
second plan must be empty and destroy must leave nothing.

Emulator gaps met here and how they are handled (docs/terraform.md lists them all):
- moto reports every instance's CPU credit mode as "standard" whatever was asked, so this stack
  asks for "standard" (the module's default is "unlimited"), or the second plan would never be
  empty;
- moto loads AWS's managed IAM policies only on request, and enforces a Lambda concurrency
  quota only when told to (conftest: tf_moto: 10, as on a new account).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.config import Settings
from hfo_watchdog.core.model import Policy
from testsupport.net import free_port
from testsupport.standby_node import StandbyNode, decode_parameters, rendered_user_data, user_data_files
from testsupport.terraform import Stack, TerraformEnv, make_stack, resource_changes, working_copy
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.moto, pytest.mark.slow]

USER_DATA_LIMIT = 16384
# The watchdog's thresholds scaled down (as `make demo` does), set through Terraform's variables:
# within every documented range and cross-field rule, so the end-to-end test can fail over and
# back in seconds with the very configuration Terraform gives the functions.
FAST_POLICY = {
    "heartbeat_interval_s": 1,
    "lease_ttl_s": 5,
    "stop_grace_s": 2,
    "down_heartbeat_s": 10,
    "down_probes": 2,
    "recovery_probes": 3,
    "recovery_steady_s": 4,
    "start_cooldown_s": 60,
    "min_state_s": 2,
}
# The fast-failover settings, each set away from its default to check that it reaches the
# functions through the root and modules/hybrid-failover. None changes the end-to-end run below:
# the laptop's heartbeats are silent for down_heartbeat_s (10) before prewarm_silence_s (20), so
# the failover comes first; the agents already heartbeat every second (the handover pace is never
# above heartbeat_interval_s); renewal over the probe path waits for heartbeats 25 s old.
FAST_FAILOVER = {
    "prewarm_silence_s": 20,
    "prewarm_hold_s": 300,
    "prewarm_max_per_hour": 2,
    "probe_lease_ttl_s": 80,
    "probe_renew_after_s": 25,
    "handover_heartbeat_interval_s": 1,
}


def documented_settings() -> set[str]:
    """Every environment variable docs/configuration.md defines."""
    text = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, flags=re.MULTILINE))


class Secrets:
    """Throwaway secret values, written by Terraform through write-only arguments."""

    def __init__(self) -> None:
        self.hmac_keyring = secrets.token_urlsafe(48)
        self.tailscale_auth_key = "tskey-auth-" + secrets.token_hex(24)
        self.discord_webhook_url = (
            f"https://discord.com/api/webhooks/{secrets.randbelow(10**18)}/{secrets.token_urlsafe(40)}"
        )

    def values(self) -> list[str]:
        return [self.hmac_keyring, self.tailscale_auth_key, self.discord_webhook_url]

    def env(self) -> dict[str, str]:
        return {
            "TF_VAR_hmac_keyring": self.hmac_keyring,
            "TF_VAR_tailscale_auth_key": self.tailscale_auth_key,
            "TF_VAR_discord_webhook_url": self.discord_webhook_url,
        }


@pytest.fixture(scope="module")
def secret_values() -> Secrets:
    return Secrets()


@pytest.fixture(scope="module")
def health_port() -> int:
    """The port the end-to-end test's health server will listen on; the stack's health_url points there."""
    return free_port()


@pytest.fixture(scope="module")
def volume_key(tf_moto: MotoServer) -> str:
    """A customer managed KMS key, as some accounts make their EBS default (docs/terraform.md)."""
    kms = boto3.client(
        "kms", endpoint_url=tf_moto.endpoint, region_name=tf_moto.region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    return str(kms.create_key(Description="customer managed EBS key")["KeyMetadata"]["Arn"])


@pytest.fixture(scope="module")
def stack(
    tfenv: TerraformEnv,
    tf_moto: MotoServer,
    lambda_zip: Path,
    secret_values: Secrets,
    health_port: int,
    volume_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tree = working_copy(tmp_path_factory.mktemp("stack"))
    variables = {
        "aws_emulator": True,
        "region": tf_moto.region,
        "health_url": f"https://127.0.0.1:{health_port}/healthz",
        "lambda_zip_path": str(lambda_zip),
        "alert_email": "ops@example.com",
        "secret_values_version": 1,
        # So the test can tear everything down and find nothing left (the default protects
        # the table).
        "table_deletion_protection": False,
        "standby_runtime_alarm": True,  # opt-in (0.10 USD a month): created here to be checked
        "cpu_credits": "standard",  # moto gap, see the module docstring
        "ebs_kms_key_arn": volume_key,
        **FAST_POLICY,
        **FAST_FAILOVER,
    }
    result = make_stack(tfenv, tree / "examples" / "complete", variables, tf_moto.env(), secret_values.env())
    result.apply()
    yield result
    if not result.destroyed:
        result.destroy()


@pytest.fixture(scope="module")
def aws(tf_moto: MotoServer) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=tf_moto.region
    )
    return {
        name: session.client(name, endpoint_url=tf_moto.endpoint)
        for name in (
            "ec2", "iam", "lambda", "scheduler", "dynamodb", "sns",
            "logs", "cloudwatch", "ssm", "kms",
        )
    }  # fmt: skip


@pytest.fixture(scope="module")
def instance(stack: Stack, aws: dict[str, Any]) -> dict[str, Any]:
    reservations = aws["ec2"].describe_instances(InstanceIds=[stack.outputs["instance_id"]])["Reservations"]
    return reservations[0]["Instances"][0]


def role_policy(aws: dict[str, Any], role_name: str) -> dict[str, Any]:
    iam = aws["iam"]
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert len(names) == 1, names
    return iam.get_role_policy(RoleName=role_name, PolicyName=names[0])["PolicyDocument"]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        result.append({**statement, "Action": sorted(actions), "Resource": sorted(resources)})
    return result


def function_role(aws: dict[str, Any], function_name: str) -> str:
    arn = aws["lambda"].get_function_configuration(FunctionName=function_name)["Role"]
    return arn.rsplit("/", 1)[-1]


# --- the standby node --------------------------------------------------------------------


def test_standby_is_left_stopped(instance: dict[str, Any]) -> None:
    assert instance["State"]["Name"] == "stopped"


def test_standby_requires_imdsv2_with_one_hop(instance: dict[str, Any]) -> None:
    options = instance["MetadataOptions"]
    assert options["HttpTokens"] == "required"
    assert options["HttpEndpoint"] == "enabled"
    assert options["HttpPutResponseHopLimit"] == 1  # pods cannot reach the node's credentials


def test_standby_root_volume_is_encrypted_gp3_of_explicit_size(
    instance: dict[str, Any], aws: dict[str, Any], volume_key: str
) -> None:
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    volumes = aws["ec2"].describe_volumes(VolumeIds=volume_ids)["Volumes"]
    assert len(volumes) == 1
    assert volumes[0]["Encrypted"] is True
    assert volumes[0]["VolumeType"] == "gp3"
    assert volumes[0]["Size"] == 8  # the AMI snapshot's size, the smallest EC2 accepts (docs/cost.md)
    assert volumes[0]["KmsKeyId"] == volume_key  # ebs_kms_key_arn


def test_standby_is_arm64_amazon_linux_on_a_2_gib_type(instance: dict[str, Any], aws: dict[str, Any]) -> None:
    assert instance["InstanceType"] == "t4g.small"
    image = aws["ec2"].describe_images(ImageIds=[instance["ImageId"]])["Images"][0]
    assert image["Architecture"] == "arm64"
    assert image["Name"].startswith("al2023-ami-2023.")
    assert image["OwnerId"] == "137112412989"  # Amazon


def test_no_elastic_ip(stack: Stack, aws: dict[str, Any]) -> None:
    assert aws["ec2"].describe_addresses()["Addresses"] == []


def test_security_group_has_no_inbound_rule(instance: dict[str, Any], aws: dict[str, Any]) -> None:
    group_ids = [g["GroupId"] for g in instance["SecurityGroups"]]
    assert len(group_ids) == 1
    group = aws["ec2"].describe_security_groups(GroupIds=group_ids)["SecurityGroups"][0]
    assert group["IpPermissions"] == []
    # Egress is limited too: no "all protocols" rule.
    assert group["IpPermissionsEgress"], "the node needs some egress"
    assert all(rule["IpProtocol"] in ("tcp", "udp") for rule in group["IpPermissionsEgress"])
    default = aws["ec2"].describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [group["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []


def test_node_role_reads_its_configuration_and_the_current_tailscale_key_only(
    instance: dict[str, Any], aws: dict[str, Any], stack: Stack
) -> None:
    profile_arn = instance["IamInstanceProfile"]["Arn"]
    profile = aws["iam"].get_instance_profile(InstanceProfileName=profile_arn.rsplit("/", 1)[-1])["InstanceProfile"]
    role = profile["Roles"][0]["RoleName"]
    attached = [p["PolicyName"] for p in aws["iam"].list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    assert attached == ["AmazonSSMManagedInstanceCore"]
    document = {tuple(st["Action"]): st for st in statements(role_policy(aws, role))}
    # The keyring and heartbeat URL reach the standby's agent from Git, sealed: the node itself
    # needs its configuration and its Tailscale auth key, no other secret.
    assert set(document) == {
        ("ssm:GetParametersByPath",),
        (
            "ssm:AddTagsToResource",
            "ssm:DeleteParameter",
            "ssm:GetParameter",
            "ssm:ListTagsForResource",
            "ssm:PutParameter",
        ),
    }
    path = stack.outputs["standby"]["parameter_path"]
    assert document[("ssm:GetParametersByPath",)]["Resource"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter{path}"]
    # Read, then delete and recreate (the key's versions go with it): on the Tailscale key only,
    # which lies outside the configuration path the node reads by path.
    key = stack.outputs["secret_names"]["tailscale_auth_key"]
    key_statement = next(st for actions, st in document.items() if "ssm:DeleteParameter" in actions)
    assert key_statement["Resource"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter{key}"]
    assert not key.startswith(path + "/")


def test_user_data_is_only_the_loader(
    instance: dict[str, Any], aws: dict[str, Any], secret_values: Secrets, stack: Stack
) -> None:
    attribute = aws["ec2"].describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    raw = base64.b64decode(attribute["UserData"]["Value"])
    assert len(raw) < USER_DATA_LIMIT
    assert len(raw) == stack.outputs["user_data_bytes"]
    text = raw.decode()
    for value in secret_values.values():
        assert value not in text
    # exactly the files the boot tests run (tests/terraform/test_bootstrap_script.py)
    path = stack.outputs["standby"]["parameter_path"]
    assert user_data_files(text) == user_data_files(rendered_user_data("us-east-1", path))


def node_parameters(aws: dict[str, Any], path: str) -> list[dict[str, Any]]:
    pages = aws["ssm"].get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    return [p for page in pages for p in page["Parameters"]]


def test_node_configuration_is_in_free_standard_parameters(stack: Stack, aws: dict[str, Any]) -> None:
    path = stack.outputs["standby"]["parameter_path"]
    assert path == "/hfo/standby"
    parameters = node_parameters(aws, path)
    assert {p["Type"] for p in parameters} == {"String"}
    described = aws["ssm"].describe_parameters()["Parameters"]
    assert {d["Tier"] for d in described if d["Name"].startswith(path)} == {"Standard"}
    assert max(len(p["Value"]) for p in parameters) <= 4096  # Standard tier's limit; moto does not enforce it
    files = decode_parameters({p["Name"]: p["Value"] for p in parameters}, path)
    shipped = stack.directory.parents[2] / "argocd" / "bootstrap"
    assert {f: b.decode() for f, b in files.items() if f.startswith("manifests/")} == {
        f"manifests/{m.name}": m.read_text() for m in shipped.glob("*.yaml")
    }
    k3s = yaml.safe_load(files["k3s-config.yaml"])
    assert k3s["node-name"] == "hfo-standby"
    assert (k3s["cluster-cidr"], k3s["service-cidr"], k3s["cluster-dns"]) == (
        "10.42.0.0/16",
        "10.43.0.0/16",
        "10.43.0.10",
    )
    env = files["bootstrap.env"].decode()
    assert "HFO_K3S_VERSION='v1." in env and "HFO_TS_HOSTNAME='hfo-standby'" in env and "HFO_TS_SSH='true'" in env
    # what `terraform output` says the node checks, it checks
    assert {f: hashlib.sha256(b).hexdigest() for f, b in files.items()} == stack.outputs["standby"]["parameter_files"]


# --- the watchdog ------------------------------------------------------------------------


def test_tick_role_starts_stops_and_modifies_only_the_standby(stack: Stack, aws: dict[str, Any]) -> None:
    tick = stack.outputs["function_names"]["tick"]
    document = statements(role_policy(aws, function_role(aws, tick)))
    instance_arn = next(s for s in document if "ec2:StartInstances" in s["Action"])
    assert instance_arn["Action"] == ["ec2:ModifyInstanceAttribute", "ec2:StartInstances", "ec2:StopInstances"]
    assert instance_arn["Resource"] == [
        f"arn:aws:ec2:{aws['ec2'].meta.region_name}:123456789012:instance/{stack.outputs['instance_id']}"
    ]
    # "*" only where AWS allows nothing narrower: EC2's describe calls.
    for statement in document:
        if "*" in statement["Resource"]:
            assert all(a.startswith("ec2:Describe") for a in statement["Action"]), statement
    table = next(s for s in document if any(a.startswith("dynamodb:") for a in s["Action"]))
    assert table["Resource"] == [f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.outputs['table_name']}"]
    # UpdateItem: the fence a lease-taking write sets on the site's item, inside the transaction.
    assert table["Action"] == [
        f"dynamodb:{a}" for a in ("BatchGetItem", "ConditionCheckItem", "GetItem", "PutItem", "UpdateItem")
    ]
    topic = next(s for s in document if "sns:Publish" in s["Action"])
    assert topic["Resource"] == [stack.outputs["alert_topic_arn"]]


def test_tick_role_may_grant_ec2_the_volume_key_only_for_aws_resources(
    stack: Stack, aws: dict[str, Any], volume_key: str
) -> None:
    """StartInstances on a volume under a customer managed key needs kms:CreateGrant."""
    tick = stack.outputs["function_names"]["tick"]
    document = statements(role_policy(aws, function_role(aws, tick)))
    kms = [st for st in document if any(a.startswith("kms:") for a in st["Action"])]
    assert kms == [
        {**kms[0], "Action": ["kms:CreateGrant"], "Resource": [volume_key],
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
    ]  # fmt: skip
    heartbeat = stack.outputs["function_names"]["heartbeat"]
    assert not any(
        a.startswith("kms:") for st in statements(role_policy(aws, function_role(aws, heartbeat))) for a in st["Action"]
    )


def test_heartbeat_role_may_only_stop_the_standby(stack: Stack, aws: dict[str, Any]) -> None:
    """It completes handbacks (stop the standby, alert); it never starts or modifies it."""
    heartbeat = stack.outputs["function_names"]["heartbeat"]
    document = statements(role_policy(aws, function_role(aws, heartbeat)))
    ec2_actions = {a for s in document for a in s["Action"] if a.startswith("ec2:")}
    assert ec2_actions == {"ec2:StopInstances", "ec2:DescribeInstances"}
    stop = next(s for s in document if "ec2:StopInstances" in s["Action"])
    assert stop["Resource"] == [
        f"arn:aws:ec2:{aws['ec2'].meta.region_name}:123456789012:instance/{stack.outputs['instance_id']}"
    ]
    for statement in document:
        if "*" in statement["Resource"]:
            assert statement["Action"] == ["ec2:DescribeInstances"], statement
    secret = next(s for s in document if "ssm:GetParameter" in s["Action"])
    assert secret["Action"] == ["ssm:GetParameter"]
    names = stack.outputs["secret_names"]
    assert len(secret["Resource"]) == 2
    assert all(any(names[k] in arn for arn in secret["Resource"]) for k in ("hmac_keyring", "discord_webhook"))


def test_schedule_runs_the_tick_every_minute_without_retries(stack: Stack, aws: dict[str, Any]) -> None:
    schedule = aws["scheduler"].get_schedule(Name="hfo-tick")
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["State"] == "ENABLED"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"].endswith(":function:" + stack.outputs["function_names"]["tick"])
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def test_no_concurrency_is_reserved_by_default(stack: Stack, aws: dict[str, Any]) -> None:
    """The defaults apply where the quota is 10 (a new account): no function reserves any."""
    for name in stack.outputs["function_names"].values():
        assert "ReservedConcurrentExecutions" not in aws["lambda"].get_function_concurrency(FunctionName=name)
    assert stack.outputs["watchdog"]["reserved_concurrency"] == {"tick": -1, "heartbeat": -1}


def test_functions_run_the_package_with_the_documented_environment(
    stack: Stack, aws: dict[str, Any], lambda_zip: Path, secret_values: Secrets
) -> None:
    documented = documented_settings()
    assert "HFO_TABLE_NAME" in documented  # the doc parsed
    expected_hash = base64.b64encode(__import__("hashlib").sha256(lambda_zip.read_bytes()).digest()).decode()
    environments = []
    for kind, handler in (("tick", "hfo_watchdog.handlers.tick"), ("heartbeat", "hfo_watchdog.handlers.heartbeat")):
        config = aws["lambda"].get_function_configuration(FunctionName=stack.outputs["function_names"][kind])
        assert config["Runtime"] == "python3.12"
        assert config["Handler"] == handler
        assert config["Architectures"] == ["arm64"]
        assert config["CodeSha256"] == expected_hash
        env = config["Environment"]["Variables"]
        assert set(env) <= documented, set(env) - documented
        environments.append(env)
    tick_env, heartbeat_env = environments
    assert tick_env == heartbeat_env  # both handlers read the same settings
    assert tick_env["HFO_INSTANCE_ID"] == stack.outputs["instance_id"]
    assert tick_env["HFO_TABLE_NAME"] == stack.outputs["table_name"]
    assert tick_env["HFO_SNS_TOPIC_ARN"] == stack.outputs["alert_topic_arn"]
    assert tick_env["HFO_TICK_INTERVAL_S"] == "60"
    assert tick_env["HFO_HEALTH_URL"].startswith("https://")
    assert tick_env["POWERTOOLS_METRICS_DISABLED"] == "true"  # no custom metric unless custom_metrics
    # The watchdog runs the thresholds set on the root: the ones set here, the defaults elsewhere.
    policy = Settings.from_env(tick_env).policy
    assert policy == dataclasses.replace(Policy(), **FAST_POLICY, **FAST_FAILOVER)
    # Secrets by reference only.
    assert tick_env["HFO_HMAC_SECRET_ARN"].startswith("arn:aws:ssm:")
    assert tick_env["HFO_DISCORD_WEBHOOK_SECRET_ARN"].startswith("arn:aws:ssm:")
    flat = json.dumps(tick_env)
    for value in secret_values.values():
        assert value not in flat


def test_heartbeat_url_is_public_with_both_permissions(stack: Stack, aws: dict[str, Any]) -> None:
    name = stack.outputs["function_names"]["heartbeat"]
    url = aws["lambda"].get_function_url_config(FunctionName=name)
    assert url["AuthType"] == "NONE"
    assert url["FunctionUrl"].rstrip("/") == stack.outputs["heartbeat_url"].rstrip("/")
    policy = json.loads(aws["lambda"].get_policy(FunctionName=name)["Policy"])
    # Since October 2025 AWS wants both actions allowed for a public URL. The URL statement is
    # added by the provider itself along with the URL (FunctionURLAllowPublicAccess).
    by_action = {s["Action"]: s for s in policy["Statement"]}
    assert sorted(s["Action"] for s in policy["Statement"]) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"


def test_state_table_on_demand_with_ttl_and_pitr(stack: Stack, aws: dict[str, Any]) -> None:
    ddb = aws["dynamodb"]
    table = ddb.describe_table(TableName=stack.outputs["table_name"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    ttl = ddb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = ddb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_alerts_topic_logs_and_alarms(stack: Stack, aws: dict[str, Any], instance: dict[str, Any]) -> None:
    topic = stack.outputs["alert_topic_arn"]
    subscriptions = aws["sns"].list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@example.com")]
    for name in stack.outputs["function_names"].values():
        groups = aws["logs"].describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        assert [g["retentionInDays"] for g in groups] == [14]
    alarms = {a["AlarmName"]: a for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {"hfo-tick-failing", "hfo-heartbeat-errors", "hfo-standby-running-too-long"}
    assert all(a["AlarmActions"] == [topic] for a in alarms.values())
    runtime = alarms["hfo-standby-running-too-long"]
    assert runtime["Namespace"] == "AWS/EC2"
    assert runtime["Dimensions"] == [{"Name": "InstanceId", "Value": instance["InstanceId"]}]
    assert runtime["Period"] * runtime["EvaluationPeriods"] == 86400  # HFO_STANDBY_MAX_RUNTIME_S default
    assert runtime["TreatMissingData"] == "notBreaching"  # a stopped instance sends nothing: fine
    # One alarm for a tick that fails and for one that does not run: Lambda sends Errors (0 or 1)
    # for every invocation, so no datapoint means no tick, and that must alarm.
    tick = alarms["hfo-tick-failing"]
    assert (tick["Namespace"], tick["MetricName"], tick["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert tick["Dimensions"] == [{"Name": "FunctionName", "Value": stack.outputs["function_names"]["tick"]}]
    assert tick["TreatMissingData"] == "breaching"
    assert (tick["EvaluationPeriods"], tick["DatapointsToAlarm"], tick["Period"]) == (2, 2, 300)
    heartbeat = alarms["hfo-heartbeat-errors"]
    assert heartbeat["Dimensions"] == [{"Name": "FunctionName", "Value": stack.outputs["function_names"]["heartbeat"]}]
    assert heartbeat["TreatMissingData"] == "notBreaching"  # no laptop, no heartbeats: fine


def test_secret_values_reach_securestring_parameters_but_never_the_state(
    stack: Stack, aws: dict[str, Any], secret_values: Secrets
) -> None:
    names = stack.outputs["secret_names"]

    def read(name: str) -> str:
        return str(aws["ssm"].get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

    assert read(names["hmac_keyring"]) == secret_values.hmac_keyring
    assert read(names["tailscale_auth_key"]) == secret_values.tailscale_auth_key
    assert read(names["discord_webhook"]) == secret_values.discord_webhook_url
    described = aws["ssm"].describe_parameters(ParameterFilters=[{"Key": "Name", "Values": list(names.values())}])[
        "Parameters"
    ]
    # Standard tier: free at rest (docs/cost.md); the AWS managed key: no monthly fee.
    assert sorted((p["Name"], p["Type"], p["Tier"]) for p in described) == sorted(
        (n, "SecureString", "Standard") for n in names.values()
    )
    # A value put by hand (rotation, docs/security.md) is never read back into the state either.
    rotated = secret_values.hmac_keyring + "-rotated"
    aws["ssm"].put_parameter(Name=names["hmac_keyring"], Value=rotated, Type="SecureString", Overwrite=True)
    stack.tf.execute_command("apply", "-refresh-only", "-auto-approve", "-no-color", "-input=false")
    aws["ssm"].put_parameter(
        Name=names["hmac_keyring"], Value=secret_values.hmac_keyring, Type="SecureString", Overwrite=True
    )
    state = stack.tf.execute_command("state", "pull").out
    assert rotated not in state
    outputs = json.dumps(stack.outputs)
    for value in secret_values.values():
        assert value not in state
        assert value not in outputs
    assert stack.outputs["secret_names"]["hmac_keyring"] in state  # the state was read at all


def test_outputs_tell_the_next_steps(stack: Stack) -> None:
    assert stack.outputs["heartbeat_url"].startswith("https://")
    assert re.fullmatch(r"i-[0-9a-f]{17}", stack.outputs["instance_id"])
    assert stack.outputs["instance_id"] in stack.outputs["argocd_ui"]
    assert "port-forward svc/argocd-server 8080:80" in stack.outputs["argocd_ui"]
    assert stack.outputs["hmac_secret_name"] == stack.outputs["secret_names"]["hmac_keyring"]
    assert stack.outputs["heartbeat_url"] in stack.outputs["next_steps"]
    for name in stack.outputs["secret_names"].values():
        assert f"--name {name} --value file://" in stack.outputs["next_steps"]
    standby, watchdog = stack.outputs["standby"], stack.outputs["watchdog"]
    assert standby["instance_id"] == stack.outputs["instance_id"]
    assert (standby["architecture"], standby["platform"]) == ("arm64", "linux/arm64")
    assert standby["platform"] in standby["image_platforms"]
    assert standby["networks"]["host"] == {"VPC (vpc_cidr)": "10.200.0.0/24", "subnet (subnet_cidr)": "10.200.0.0/26"}
    assert standby["networks"]["tailnet"] == "100.64.0.0/10"
    assert watchdog["schedule_name"] == "hfo-tick" and watchdog["region"] == "us-east-1"


# --- the standby node boots from what was applied --------------------------------------------------


@pytest.fixture(scope="module")
def node(
    stack: Stack,
    aws: dict[str, Any],
    tf_moto: MotoServer,
    instance: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> StandbyNode:
    attribute = aws["ec2"].describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    user_data = base64.b64decode(attribute["UserData"]["Value"]).decode()
    return StandbyNode.create(tmp_path_factory.mktemp("standby-node"), tf_moto, user_data)


def test_the_node_boots_from_the_applied_stack(
    node: StandbyNode, stack: Stack, aws: dict[str, Any], secret_values: Secrets
) -> None:
    (node.state / "expected-key").write_text(secret_values.tailscale_auth_key)
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node.state / "authkey-file").read_text().strip() == "match"  # the key Terraform wrote
    secret = stack.outputs["secret_names"]["tailscale_auth_key"]
    current = aws["ssm"].get_parameter(Name=secret, WithDecryption=True)["Parameter"]["Value"]
    assert current.startswith("consumed: hfo-standby joined the tailnet")
    history = aws["ssm"].get_parameter_history(Name=secret, WithDecryption=True)["Parameters"]
    assert all(secret_values.tailscale_auth_key not in v["Value"] for v in history)
    assert sorted(p.name for p in node.manifests.iterdir()) == [
        "argo-cd.yaml",
        "project-bootstrap.yaml",
        "root-aws.yaml",
    ]
    assert node.pulled() == stack.outputs["standby"]["workload_images"]


def test_an_edited_manifest_reaches_the_node_without_replacing_it(
    node: StandbyNode, stack: Stack, aws: dict[str, Any]
) -> None:
    """A chart bump in argocd/bootstrap: parameters updated in place, the same instance, the new
    file on the node at its next boot."""
    manifest = stack.directory.parents[2] / "argocd" / "bootstrap" / "argo-cd.yaml"
    text = manifest.read_text()
    bumped = re.sub(r"(?m)^(\s*version:\s*)\S+", r"\g<1>9.9.9", text, count=1)
    assert bumped != text
    manifest.write_text(bumped)
    changes = resource_changes(stack.plan())
    assert changes and all(
        address.startswith("module.hfo.module.standby.aws_ssm_parameter.node[") and actions == ["update"]
        for address, actions in changes
    ), changes
    instance_id = stack.outputs["instance_id"]
    stack.apply()
    assert stack.outputs["instance_id"] == instance_id
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node.manifests / "argo-cd.yaml").read_text() == bumped
    assert "bootstrap manifests: 3 listed, 1 written, 0 removed" in result.stdout


# --- end to end: the real handlers on the Terraform-made stack ------------------------------


def test_end_to_end_failover_to_the_terraform_instance_and_back(
    stack: Stack,
    aws: dict[str, Any],
    tf_moto: MotoServer,
    health_port: int,
    secret_values: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The real tick and heartbeat handlers, in-process, with the environment Terraform gave the
    functions (read back from the emulator), and the real site processes (the laptop's health
    service and agent, the standby's agent while its instance runs, heartbeating over HTTPS to
    the heartbeat handler behind the drill's Function URL server): the watchdog fails over to the
    Terraform-made instance when the laptop dies and stops it when the laptop comes back."""
    from hfo_drill.aws_setup import instance_state
    from hfo_drill.function_url import FunctionUrlServer
    from hfo_drill.inbox import AlertInbox
    from hfo_drill.lambda_runtime import LambdaContext
    from hfo_drill.ledger import LedgerTail, read, summarize
    from hfo_watchdog.handlers import entry_points
    from hfo_watchdog.runtime import Container
    from testsupport.https import TestCA
    from testsupport.laptop import BOT_PERIOD_S, real_sites

    names = stack.outputs["function_names"]
    configs = {k: aws["lambda"].get_function_configuration(FunctionName=names[k]) for k in ("tick", "heartbeat")}
    env = configs["tick"]["Environment"]["Variables"]
    assert env == configs["heartbeat"]["Environment"]["Variables"]
    instance_id = env["HFO_INSTANCE_ID"]
    assert instance_id == stack.outputs["instance_id"]
    # Two additions, both because this runs on a test machine: the throwaway CA of the loopback
    # Funnel stand-in, and no Discord alerts (the webhook would be on the internet; the alerts are
    # checked on the SNS topic instead).
    ca = TestCA(tmp_path)
    env = {**env, "HFO_PROBE_CA_BUNDLE": str(ca.bundle)}
    env.pop("HFO_DISCORD_WEBHOOK_SECRET_ARN")
    for key in [k for k in os.environ if k.startswith(("HFO_", "POWERTOOLS_"))]:
        monkeypatch.delenv(key)
    for key, value in {**env, **tf_moto.env()}.items():
        monkeypatch.setenv(key, value)
    assert env["HFO_HEALTH_URL"] == f"https://127.0.0.1:{health_port}/healthz"

    session = boto3.session.Session()
    alerts = AlertInbox(env["HFO_SNS_TOPIC_ARN"], "e2e-alerts", session=session)
    handlers = entry_points(Container())  # configured from the environment set above, as Lambda's are
    url = FunctionUrlServer(
        handlers.heartbeat,
        lambda: LambdaContext.for_function(configs["heartbeat"]),
        ca.server_context(),
        url_id="e2e",
        region=tf_moto.region,
    ).start()
    report: dict[str, Any] = {}

    def state() -> str:
        return instance_state(instance_id, session=session)

    try:
        with real_sites(
            tmp_path / "sites",
            secret_values.hmac_keyring,  # the value Terraform wrote
            ca,
            url.url,
            heartbeat_interval_s=FAST_POLICY["heartbeat_interval_s"],
            stop_grace_s=FAST_POLICY["stop_grace_s"],
            funnel_port=health_port,  # the stack's health_url points there
        ) as sites:
            ledger = LedgerTail(str(sites.files.ledger))

            def bots() -> list[str]:
                ledger.poll()
                return ledger.running(time.time(), BOT_PERIOD_S)

            def tick() -> None:
                report.update(handlers.tick({"source": "aws.scheduler"}, LambdaContext.for_function(configs["tick"])))
                # The standby's agent runs while its instance runs (cloud-init starts K3s and the agent).
                running = state() == "running"
                if running and not sites.standby.up:
                    sites.standby.start()
                elif not running and sites.standby.up:
                    sites.standby.shutdown(5.0)

            def until(what: str, done: Callable[[], bool], timeout_s: float) -> None:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    tick()
                    if done():
                        return
                    time.sleep(1.0)
                raise AssertionError(f"not reached within {timeout_s:.0f} s: {what}; last tick: {report}")

            until(
                "the laptop holds the lease and runs the bot",
                lambda: report["phase"] == "healthy" and bots() == ["primary"],
                60,
            )
            assert state() == "stopped"
            epoch = report["lease_epoch"]

            sites.primary.kill()  # the laptop dies: health service, agent and bot at once
            failed_over = lambda: report["lease_site"] == "standby" and state() == "running"  # noqa: E731
            until("failover to the Terraform instance", failed_over, 90)
            assert report["lease_epoch"] > epoch
            until("the standby runs the bot", lambda: bots() == ["standby"], 60)
            epoch = report["lease_epoch"]

            sites.primary.start()  # the laptop is back: fresh processes that remember nothing
            until("handback", lambda: report["lease_site"] == "primary" and report["lease_epoch"] > epoch, 90)
            until("the Terraform instance is stopped again", lambda: state() == "stopped", 60)
            until("the laptop runs the bot again", lambda: bots() == ["primary"], 60)

            assert summarize(read(str(sites.files.ledger)), period_s=BOT_PERIOD_S).overlaps == ()  # never two bots
            assert set(url.counters.by_status) == {200}  # no heartbeat refused
            assert len(alerts.messages()) >= 2  # failover and handback were announced on the topic
    finally:
        url.stop()
        alerts.close()


def test_second_plan_is_empty(stack: Stack) -> None:
    """Also after the watchdog started and stopped the instance: Terraform does not fight it."""
    assert resource_changes(stack.plan()) == []


# Keep last: it tears the shared stack down.
def test_destroy_leaves_nothing(stack: Stack, aws: dict[str, Any]) -> None:
    vpc_id = aws["ec2"].describe_instances(InstanceIds=[stack.outputs["instance_id"]])["Reservations"][0]["Instances"][
        0
    ]["VpcId"]
    stack.destroy()
    ec2 = aws["ec2"]
    states = {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states <= {"terminated"}
    assert ec2.describe_volumes()["Volumes"] == []
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"] == []
    assert aws["lambda"].list_functions()["Functions"] == []
    assert aws["ssm"].describe_parameters()["Parameters"] == []
    assert aws["iam"].list_roles()["Roles"] == []
    assert aws["iam"].list_instance_profiles()["InstanceProfiles"] == []
    assert aws["scheduler"].list_schedules()["Schedules"] == []
    assert aws["dynamodb"].list_tables()["TableNames"] == []
    assert aws["sns"].list_topics()["Topics"] == []
    assert aws["sns"].list_subscriptions()["Subscriptions"] == []
    assert aws["logs"].describe_log_groups()["logGroups"] == []
    assert aws["cloudwatch"].describe_alarms()["MetricAlarms"] == []
    assert aws["ssm"].describe_parameters()["Parameters"] == []
