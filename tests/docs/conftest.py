"""Fixtures for the documentation tests: an emulated deployment on the moto server, shaped and named
like the one `terraform apply` creates (terraform/examples/complete, `name = "hfo"`), and the shell
variables docs/runbook.md#before-you-start sets from `terraform output`."""

from __future__ import annotations

import io
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from testsupport.docs import AWSCLI_BIN, DOC_VARIABLES, VENV_BIN
from testsupport.moto import MotoServer
from testsupport.tools import require_tool

NAME = "hfo"  # the Terraform variable `name`
MOTO_AMI = "ami-12c6146b"


@dataclass(frozen=True)
class Deployment:
    """What the docs' variables point at, in the emulator."""

    env: dict[str, str]  # the complete environment for a shell that runs documented commands
    table: str
    instance_id: str
    hmac_secret: str
    hmac_value: str
    functions: tuple[str, str]

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=self.env["AWS_DEFAULT_REGION"])


def awscli_bin() -> Path:
    """The AWS CLI of `make awscli-venv` (skips loudly, or fails under CI, when it is missing)."""
    require_tool("aws (the AWS CLI of tests/docs)", str(AWSCLI_BIN / "aws"), "run `make awscli-venv`")
    return AWSCLI_BIN


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


@pytest.fixture
def deployment(aws: MotoServer) -> Deployment:
    """State table, stopped standby, the three secrets, both functions and the alert topic, named as
    Terraform names them, and the shell environment the runbook's variables describe."""
    from hfo_drill.aws_setup import ensure_table

    session = boto3.session.Session(region_name=aws.region)
    table = f"{NAME}-state"
    ensure_table(session.client("dynamodb"), table)

    ec2 = session.client("ec2")
    # One of moto's built-in AMIs: naming it directly spares describe_images, which costs most of a second
    instance = ec2.run_instances(ImageId=MOTO_AMI, MinCount=1, MaxCount=1, InstanceType="t4g.small")["Instances"][0]
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])

    sm = session.client("secretsmanager")
    hmac_value = secrets.token_urlsafe(36)  # a plain keyring, as the walkthrough creates it
    sm.create_secret(Name=f"{NAME}/hmac-keyring", SecretString=hmac_value)
    sm.create_secret(Name=f"{NAME}/discord-webhook", SecretString="https://discord.example/api/webhooks/1/x")
    sm.create_secret(Name=f"{NAME}/tailscale-auth-key", SecretString="tskey-auth-sample")

    role = session.client("iam").create_role(RoleName=f"{NAME}-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = session.client("lambda")
    functions = (f"{NAME}-tick", f"{NAME}-heartbeat")
    for fn in functions:
        lam.create_function(
            FunctionName=fn,
            Runtime="python3.12",
            Role=role,
            Handler=f"hfo_watchdog.handlers.{fn.rsplit('-', 1)[1]}",
            Code={"ZipFile": _zip()},
            Description=f"hybrid-failover watchdog: {fn.rsplit('-', 1)[1]} handler",
        )
    topic = session.client("sns").create_topic(Name=f"{NAME}-alerts")["TopicArn"]

    env = {
        "PATH": os.pathsep.join([str(awscli_bin()), str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        **aws.env(),
        # docs/runbook.md#before-you-start
        "HFO_TABLE_NAME": table,
        "HFO_INSTANCE_ID": instance["InstanceId"],
        "HMAC_SECRET": f"{NAME}/hmac-keyring",
        "DISCORD_SECRET": f"{NAME}/discord-webhook",
        "TAILSCALE_SECRET": f"{NAME}/tailscale-auth-key",
        "TICK_FUNCTION": functions[0],
        "HEARTBEAT_FUNCTION": functions[1],
        "ALERT_TOPIC": topic,
    }
    assert set(DOC_VARIABLES) <= set(env)
    return Deployment(env, table, instance["InstanceId"], f"{NAME}/hmac-keyring", hmac_value, functions)
