"""Fixtures for the documentation tests: an emulated deployment on the moto server, shaped and named
like the one `terraform apply` creates (terraform/examples/complete, `name = "hfo"`), and the shell
variables docs/runbook.md#before-you-start sets from `terraform output`."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from hfo_drill.aws_setup import directly
from hfo_drill.moto_server import MotoServer
from testsupport.docs import AWSCLI_BIN, DOC_VARIABLES, VENV_BIN
from testsupport.tools import require_tool

NAME = "hfo"  # the Terraform variable `name`


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


@pytest.fixture
def deployment(aws: MotoServer) -> Deployment:
    """The drill's direct path (state table, stopped standby, HMAC secret, both functions, alert
    topic, named as Terraform names them), the two other secrets of the secrets module, and the
    shell environment the runbook's variables describe."""
    session = boto3.session.Session(region_name=aws.region)
    hmac_value = secrets.token_urlsafe(36)  # a plain keyring, as the walkthrough creates it
    side = directly(session, hmac_value, "https://laptop.example.ts.net/healthz", "tests/docs")
    ssm = session.client("ssm")
    ssm.put_parameter(
        Name=f"/{NAME}/discord-webhook", Value="https://discord.example/api/webhooks/1/x", Type="SecureString"
    )
    ssm.put_parameter(Name=f"/{NAME}/tailscale-auth-key", Value="tskey-auth-sample", Type="SecureString")
    functions = (side.functions["tick"], side.functions["heartbeat"])

    env = {
        "PATH": os.pathsep.join([str(awscli_bin()), str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        **aws.env(),
        # docs/runbook.md#before-you-start
        "HFO_TABLE_NAME": side.table,
        "HFO_INSTANCE_ID": side.instance_id,
        "HMAC_SECRET": f"/{NAME}/hmac-keyring",
        "DISCORD_SECRET": f"/{NAME}/discord-webhook",
        "TAILSCALE_SECRET": f"/{NAME}/tailscale-auth-key",
        "TICK_FUNCTION": functions[0],
        "HEARTBEAT_FUNCTION": functions[1],
        "ALERT_TOPIC": side.topic_arn,
    }
    assert set(DOC_VARIABLES) <= set(env)
    return Deployment(env, side.table, side.instance_id, f"/{NAME}/hmac-keyring", hmac_value, functions)
