"""The demo's AWS: a moto server child process on a free loopback port, and the resources
Terraform would create for the watchdog (state table, stopped standby instance, alert topic,
HMAC secret), created in it through boto3 exactly as against real AWS.

Needs the development dependencies (moto[server]); the Lambda package never imports this.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfo_drill.aws_setup import ensure_table
from hfo_drill.demo_laptop import free_loopback_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


class MotoProcess:
    """`python -m moto.server` on 127.0.0.1:<free port>; stopped (and waited for) by `stop()`."""

    def __init__(self, start_timeout_s: float = 60.0, extra_env: Mapping[str, str] | None = None) -> None:
        self.port = free_loopback_port()
        self._extra_env = dict(extra_env or {})
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._timeout = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **CREDENTIALS, **self._extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the caller, which stops the server in its order
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"moto server did not answer within {self._timeout:.0f}s")

    def reset(self) -> None:
        """Forget every resource (moto's own reset API), e.g. after a failed terraform apply."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback only
            resp.read()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class DemoResources:
    table: str
    instance_id: str
    topic_arn: str
    queue_url: str  # subscribed to the topic, so the demo can show the alerts it sent
    secret_arn: str
    secret_text: str


def provision(session: Any, *, table: str = "hfo-demo-state") -> DemoResources:
    ddb = session.client("dynamodb")
    ensure_table(ddb, table)
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "hfo-standby"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    sns = session.client("sns")
    topic = sns.create_topic(Name="hfo-demo-alerts")["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="hfo-demo-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    secret_text = secrets.token_urlsafe(36)
    secret_arn = session.client("secretsmanager").create_secret(Name="hfo-demo/hmac", SecretString=secret_text)["ARN"]
    return DemoResources(table, instance, topic, queue_url, secret_arn, secret_text)


def instance_state(session: Any, instance_id: str) -> str:
    answer = session.client("ec2").describe_instances(InstanceIds=[instance_id])
    return str(answer["Reservations"][0]["Instances"][0]["State"]["Name"])


def drain_alerts(session: Any, queue_url: str) -> list[str]:
    """Subjects (or first lines) of the alerts delivered to the topic since the last call."""
    sqs = session.client("sqs")
    out: list[str] = []
    for _ in range(10):  # bounded: at most 100 messages per call
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for m in messages:
            out.append(_alert_text(m.get("Body", "")))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _alert_text(body: str) -> str:
    try:
        envelope: Mapping[str, Any] = json.loads(body)
    except json.JSONDecodeError:
        return body.splitlines()[0] if body else ""
    subject = envelope.get("Subject")
    if subject:
        return str(subject)
    message = str(envelope.get("Message", ""))
    return message.splitlines()[0] if message else ""
