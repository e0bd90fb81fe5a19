"""Builders shared by the watchdog runtime's tests: AWS clients and resources in the moto server
(the rest of the account comes from the drill's own builders, hfo_drill.aws_setup), signed
heartbeats in Lambda Function URL events, and a Powertools logger whose JSON lines tests read."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import boto3
from hfo_drill.aws_setup import ensure_table
from hfo_drill.lambda_runtime import function_url_event
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


def signed_heartbeat_event(
    hb: Heartbeat, keyring: Keyring = KEYRING, *, base64_body: bool | None = None
) -> dict[str, Any]:
    body = build_heartbeat(hb)
    headers = {"Content-Type": "application/json", "X-HFO-Signature": sign_heartbeat(keyring, body)}
    return function_url_event(body, headers, base64_body=base64_body)


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
