"""The drill's AWS side, on the moto server: what Terraform creates, and the watchdog's
configuration as Terraform gave it to the functions, read back from the emulator.

Two ways to the same account:

- `with_terraform()`: the repository's complete example (terraform/examples/complete), applied
  to moto with the offline provider mirror (`hfo_drill.terraform`);
- `directly()`: when Terraform cannot be used here, the same resources under the same names,
  created with boto3: state table, stopped standby instance, alert topic, HMAC secret, an IAM
  role and the two functions with what the Terraform modules give them by default (their
  environment, timeouts, memory and architecture, read from the modules' files by
  `hfo_drill.module_defaults`), and the heartbeat function's URL. The caller says so in its
  output.

Either way the drill then reads the functions' configuration back with
`lambda:GetFunctionConfiguration` (`read_functions`): the watchdog runs on what the function in
the account holds, not on what the drill meant to give it (`hfo_drill.timescale` then scales its
timings down). The builders the direct path uses (`ensure_table`, `create_standby_instance`) and
`instance_state` are the tests' too.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from hfo_drill.module_defaults import watchdog_defaults
from hfo_drill.proc import Child
from hfo_drill.terraform import Terraform, apply_example, find_repo_root, lambda_package

REGION = "us-east-1"

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
    state_bucket: str = ""  # the bots' state bucket (docs/state-handoff.md), "" when state handoff is off
    state_note: str = ""  # what the drill changed on it for the emulator, and why
    state_role_arn: str = ""  # the role the heartbeat handler hands the holder's credentials from

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
        "state_bucket_enabled": True,  # the bots' state bucket and the role of the holder's credentials
    }
    secrets = {
        "TF_VAR_hmac_keyring": keyring_text,
        # The standby never runs Tailscale here; the module still wants a key to store.
        "TF_VAR_tailscale_auth_key": "tskey-auth-drill-" + "0" * 24,
    }
    applied = apply_example(tf, variables, aws_env, secrets, register)
    o = applied.outputs
    bucket = str(o["state_bucket_name"])
    return AwsSide(
        how="terraform",
        note=f"terraform apply of terraform/examples/complete (checkout {tf.repo}); Lambda code: {zip_note}",
        table=str(o["table_name"]),
        instance_id=str(o["instance_id"]),
        topic_arn=str(o["alert_topic_arn"]),
        secret_arn=_parameter_arn(session, str(o["hmac_secret_name"])),
        functions={"tick": str(o["function_names"]["tick"]), "heartbeat": str(o["function_names"]["heartbeat"])},
        function_url=str(o["heartbeat_url"]),
        seconds=applied.seconds,
        detail=applied.resources,
        state_bucket=bucket,
        state_role_arn=str(o["state_access_role_arn"]),
        state_note=relax_state_bucket_policy(session, bucket),
    )


def relax_state_bucket_policy(session: Any, bucket: str) -> str:
    """Remove the bucket policy Terraform gave the state bucket: on the emulator it refuses every
    request (its TLS-only statement refuses moto's plain HTTP, and moto does not know the
    s3:if-match / s3:if-none-match keys of the conditional-write statements, so it treats them as
    absent: docs/state-handoff.md#bucket). The fencing never relied on it: the manifest's
    conditional write is the store's own."""
    session.client("s3").delete_bucket_policy(Bucket=bucket)
    return (
        f"state bucket {bucket}: its bucket policy removed for the emulator (TLS-only and conditional-write "
        "statements moto cannot evaluate); fencing is the manifest's conditional write"
    )


def _parameter_arn(session: Any, name: str) -> str:
    return str(session.client("ssm").get_parameter(Name=name)["Parameter"]["ARN"])


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


def create_standby_instance(
    session: Any = None, *, instance_type: str = "t3.small", architecture: str | None = None, name: str = ""
) -> str:
    """A stopped instance, as Terraform leaves the standby: an Amazon image of `architecture`
    (any, if the emulator has none of it), tagged Name=`name` when given. Returns its id."""
    ec2 = (session if session is not None else boto3.session.Session()).client("ec2")
    filters = [{"Name": "architecture", "Values": [architecture]}] if architecture else []
    images = ec2.describe_images(Owners=["amazon"], Filters=filters)["Images"]
    image = (images or ec2.describe_images(Owners=["amazon"])["Images"])[0]["ImageId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}] if name else []
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type, TagSpecifications=tags
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    return str(instance)


def instance_state(instance_id: str, *, session: Any = None) -> str:
    """The instance's state name as EC2 reports it (pending, running, stopping, stopped...)."""
    ec2 = (session if session is not None else boto3.session.Session()).client("ec2")
    answer = ec2.describe_instances(InstanceIds=[instance_id])
    return str(answer["Reservations"][0]["Instances"][0]["State"]["Name"])


def directly(session: Any, keyring_text: str, health_url: str, why: str, *, repo: Path | None = None) -> AwsSide:
    """The resources of terraform/examples/complete, created with boto3, named as Terraform names
    them, the functions configured with the modules' defaults (read from `repo`'s terraform/)."""
    started = time.monotonic()
    module = watchdog_defaults(repo or find_repo_root())
    name = module.name
    table = f"{name}-state"
    ensure_table(session.client("dynamodb"), table)
    instance = create_standby_instance(
        session,
        instance_type=module.standby_instance_type,
        architecture=module.standby_architecture,
        name=f"{name}-standby",
    )
    topic = session.client("sns").create_topic(Name=f"{name}-alerts")["TopicArn"]
    # Where the secrets module keeps it: an SSM SecureString parameter of the Standard tier.
    ssm = session.client("ssm")
    ssm.put_parameter(Name=f"/{name}/hmac-keyring", Value=keyring_text, Type="SecureString", Tier="Standard")
    secret_arn = _parameter_arn(session, f"/{name}/hmac-keyring")
    role = session.client("iam").create_role(
        RoleName=f"{name}-watchdog", AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST)
    )["Role"]["Arn"]
    # The state bucket and the role the heartbeat handler hands the holder's credentials from
    # (modules/state-bucket, modules/watchdog/state_access.tf): versioned, no policy (as the
    # Terraform path leaves it on the emulator), the role trusting the functions' role.
    bucket = f"{name}-state-drill"
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    iam = session.client("iam")
    state_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"}],
    }
    state_role = iam.create_role(
        RoleName=f"{name}-state-drill", AssumeRolePolicyDocument=json.dumps(state_trust), MaxSessionDuration=3600
    )["Role"]["Arn"]
    state_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/state/*",
            },
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            # the replaced snapshot is tagged for the lifecycle, as the Terraform role allows
            {"Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": f"arn:aws:s3:::{bucket}/state/*/epochs/*"},
        ],
    }
    iam.put_role_policy(RoleName=f"{name}-state-drill", PolicyName="state", PolicyDocument=json.dumps(state_policy))
    env = {
        **module.environment,
        "HFO_STATE_BUCKET": bucket,
        "HFO_STATE_ROLE_ARN": state_role,
        "HFO_STATE_CREDENTIALS_TTL_S": "900",
        "HFO_TABLE_NAME": table,
        "HFO_INSTANCE_ID": instance,
        "HFO_HEALTH_URL": health_url,
        "HFO_HMAC_SECRET_ARN": secret_arn,
        "HFO_SNS_TOPIC_ARN": topic,
    }
    lam = session.client("lambda")
    code = _source_zip()
    functions = {}
    for which, timeout in (("tick", module.tick_timeout_s), ("heartbeat", module.heartbeat_timeout_s)):
        function_name = f"{name}-{which}"
        lam.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=role,
            Handler=f"hfo_watchdog.handlers.{which}",
            Code={"ZipFile": code},
            Timeout=timeout,
            MemorySize=module.memory_mb,
            Architectures=[module.lambda_architecture],
            Environment={"Variables": env},
        )
        functions[which] = function_name
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
        state_bucket=bucket,
        state_role_arn=state_role,
        state_note=f"state bucket {bucket} (versioned, no bucket policy, as the Terraform path leaves it here)",
    )
