"""Builders shared by the watchdog runtime's tests: AWS resources in the moto server, signed
heartbeats and Lambda Function URL events shaped like the ones AWS delivers."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import boto3
from hfo_drill.aws_setup import ensure_table
from hfo_protocol.heartbeat import Heartbeat, build_heartbeat, sign_heartbeat
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import new_nonce
from hfo_watchdog.aws import client_config

TABLE = "hfo-state"
SECRET_TEXT = "test-shared-secret-0123456789-abcdefghij"
KEYRING = Keyring.from_secret_string(SECRET_TEXT)


def sns_client(max_attempts: int, region: str | None = None) -> Any:
    """A boto3 SNS client with the watchdog's retry policy (the endpoint from AWS_ENDPOINT_URL)."""
    return boto3.client("sns", region_name=region, config=client_config(max_attempts))


def secrets_client(max_attempts: int, region: str | None = None) -> Any:
    """A boto3 Secrets Manager client with the watchdog's retry policy."""
    return boto3.client("secretsmanager", region_name=region, config=client_config(max_attempts))


def scan_all(client: Any, name: str) -> Sequence[dict[str, Any]]:
    """Every item of the table, sorted by key: tests compare whole tables with it."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def create_table(name: str = TABLE) -> Any:
    client = boto3.client("dynamodb")
    ensure_table(client, name)
    return client


def create_standby_instance(instance_type: str = "t3.small") -> str:
    """A stopped instance, as Terraform leaves the standby."""
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type)["Instances"][0][
        "InstanceId"
    ]
    ec2.stop_instances(InstanceIds=[instance_id])
    return str(instance_id)


def instance_state(instance_id: str) -> str:
    ec2 = boto3.client("ec2")
    return str(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"])


def create_secret(text: str = SECRET_TEXT, name: str = "hfo/hmac") -> str:
    return str(boto3.client("secretsmanager").create_secret(Name=name, SecretString=text)["ARN"])


def heartbeat(site: str = "primary", sent_at: float | None = None, **overrides: Any) -> Heartbeat:
    fields: dict[str, Any] = {
        "site": site,
        "sent_at": time.time() if sent_at is None else sent_at,
        "nonce": new_nonce(),
        "seq": 1,
        "workload": "running",
        "epoch_seen": 1,
        "ready": True,
        "agent": "hfo-agent/test",
    }
    fields.update(overrides)
    return Heartbeat(**fields)


def function_url_event(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    as_base64: bool = False,
) -> dict[str, Any]:
    """A Lambda Function URL (payload format 2.0) event: lower-cased header names."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": "00000000-0000-0000-0000-000000000000",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode("ascii") if as_base64 else body.decode("utf-8", "replace"),
        "isBase64Encoded": as_base64,
    }


def signed_heartbeat_event(hb: Heartbeat, keyring: Keyring = KEYRING, *, as_base64: bool = False) -> dict[str, Any]:
    body = build_heartbeat(hb)
    headers = {"Content-Type": "application/json", "X-HFO-Signature": sign_heartbeat(keyring, body)}
    return function_url_event(body, headers, as_base64=as_base64)


class JsonLog:
    """A real Powertools Logger writing to memory; `records()` parses its JSON lines."""

    def __init__(self, level: str = "DEBUG") -> None:
        import io
        import uuid

        from aws_lambda_powertools import Logger

        self.stream = io.StringIO()
        self.logger = Logger(service=f"test-{uuid.uuid4().hex[:8]}", level=level, stream=self.stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)

    def records(self, message: str | None = None) -> list[dict[str, Any]]:
        import json

        lines = [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]
        return [r for r in lines if message is None or r["message"] == message]


class AlertInbox:
    """A real SNS topic with an SQS queue subscribed: what the watchdog published, as delivered."""

    def __init__(self, name: str = "hfo-alerts") -> None:
        sns = boto3.client("sns")
        self.sqs = boto3.client("sqs")
        self.topic_arn = str(sns.create_topic(Name=name)["TopicArn"])
        self.queue_url = self.sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn)
        self.received: list[dict[str, str]] = []

    def messages(self) -> list[dict[str, str]]:
        """Every message so far: subject, severity and key (the SNS message attributes)."""
        import json

        for _ in range(20):  # bounded
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not batch.get("Messages"):
                break
            for m in batch["Messages"]:
                envelope = json.loads(m["Body"])
                attrs = envelope.get("MessageAttributes", {})
                self.received.append(
                    {
                        "subject": envelope.get("Subject", ""),
                        "severity": attrs.get("severity", {}).get("Value", ""),
                        "key": attrs.get("key", {}).get("Value", ""),
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return list(self.received)
