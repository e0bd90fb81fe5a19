"""The two Lambda entry points, called as the Lambda runtime calls them: configuration from the
environment, secrets from Secrets Manager, AWS in the moto server, the probe against the real
site processes (hfo-site health behind the drill's Funnel stand-in, with a throwaway CA)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hfo_drill.aws_setup import create_standby_instance, instance_state
from hfo_drill.inbox import AlertInbox
from hfo_drill.lambda_runtime import LambdaContext, function_url_event
from hfo_drill.moto_server import MotoServer
from hfo_protocol.heartbeat import parse_lease_answer, verify_lease_answer
from hfo_watchdog import handlers
from hfo_watchdog.config import SecretError, SettingsError
from hfo_watchdog.core.model import Policy
from hfo_watchdog.handlers import entry_points
from hfo_watchdog.runtime import Container, Runtime, from_environment
from hfo_watchdog.store import StoreUnavailable
from testsupport.net import free_port
from testsupport.watchdog import (
    KEYRING,
    TABLE,
    create_secret,
    create_table,
    heartbeat,
    signed_heartbeat_event,
)

pytestmark = pytest.mark.moto
SCHEDULE_EVENT = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture
def deployed(aws: MotoServer, monkeypatch: pytest.MonkeyPatch, laptop: tuple[str, Path]) -> dict[str, str]:
    """What Terraform deploys: resources in AWS and the function's environment."""
    create_table()
    health_url, ca_path = laptop
    env = {
        "HFO_TABLE_NAME": TABLE,
        "HFO_INSTANCE_ID": create_standby_instance(),
        "HFO_HEALTH_URL": health_url,
        "HFO_HMAC_SECRET_ARN": create_secret(),
        "HFO_SNS_TOPIC_ARN": boto3.client("sns").create_topic(Name="hfo-alerts")["TopicArn"],
        "HFO_PROBE_CA_BUNDLE": str(ca_path),
        "HFO_TICK_INTERVAL_S": "10",
        "HFO_PROBE_CONNECT_TIMEOUT_S": "1",
        "HFO_PROBE_READ_TIMEOUT_S": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


class Lambda:
    """The real entry points on a container of their own, configured from the environment as
    Lambda's are; `built` holds every Runtime the container built."""

    def __init__(self) -> None:
        self.built: list[Runtime] = []

        def build() -> Runtime:
            self.built.append(from_environment())
            return self.built[-1]

        points = entry_points(Container(build))
        self.tick = points.tick
        self.heartbeat = points.heartbeat


@pytest.fixture
def fn(deployed: dict[str, str]) -> Lambda:
    return Lambda()


class Output:
    """The function's stdout as CloudWatch would see it: the Powertools log lines (its handler
    kept the stream it found at import) and the EMF metric documents (printed at flush)."""

    def __init__(self, logs: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
        self._logs = logs
        self._capsys = capsys
        self.text = ""

    def lines(self) -> list[dict[str, Any]]:
        self.text += self._logs.getvalue() + self._capsys.readouterr().out
        self._logs.seek(0)
        self._logs.truncate()
        return _json_lines(self.text)


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    handler = handlers.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    logs = io.StringIO()
    previous = handler.setStream(logs)
    yield Output(logs, capsys)
    handler.setStream(previous)


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_tick_handler_probes_decides_saves_logs_and_emits_metrics(deployed: dict[str, str], output: Output) -> None:
    # The module's own entry points, as Lambda calls them (the one test that uses them: their
    # container keeps the Runtime built here for the rest of the session, as a warm Lambda does).
    context = LambdaContext(function_name="hfo-tick")
    report = handlers.tick(SCHEDULE_EVENT, context)
    assert report["outcome"] == "saved" and report["version"] == 1
    assert report["probe_ok"] is True and report["instance"] == "stopped"
    assert (report["lease_site"], report["lease_epoch"]) == ("primary", 1)
    json.dumps(report)  # the Lambda runtime serialises the return value
    lines = output.lines()
    [decision] = [r for r in lines if r.get("message") == "decision"]
    assert decision["function_name"] == "hfo-tick" and decision["function_request_id"] == context.aws_request_id
    assert decision["trigger"] == "tick" and decision["reasons"] and decision["probe_ok"] is True
    [emf] = [r for r in lines if "_aws" in r]
    names = {m["Name"] for d in emf["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {"ProbeFailed", "StandbyRunning", "ActionFailed"}
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "HybridFailover"
    assert (emf["ProbeFailed"], emf["StandbyRunning"], emf["ActionFailed"]) == ([0.0], [0.0], [0.0])


def test_a_dead_health_endpoint_is_a_classified_probe_failure(
    deployed: dict[str, str], fn: Lambda, monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    monkeypatch.setenv("HFO_HEALTH_URL", f"https://127.0.0.1:{free_port()}/healthz")
    report = fn.tick(SCHEDULE_EVENT, LambdaContext())
    assert report["probe_ok"] is False and report["probe_failure"] == "connect_refused"
    [emf] = [r for r in output.lines() if "_aws" in r]
    assert emf["ProbeFailed"] == [1.0]


def test_the_container_builds_once_and_keeps_its_secrets(deployed: dict[str, str], fn: Lambda) -> None:
    fn.tick(SCHEDULE_EVENT, LambdaContext())
    # The secret is fetched at cold start only: deleting it does not break a warm container.
    boto3.client("secretsmanager").delete_secret(
        SecretId=deployed["HFO_HMAC_SECRET_ARN"], ForceDeleteWithoutRecovery=True
    )
    report = fn.tick(SCHEDULE_EVENT, LambdaContext())
    assert report["version"] == 2 and report["probe_ok"] is True
    answer = fn.heartbeat(signed_heartbeat_event(heartbeat()), LambdaContext())
    assert answer["statusCode"] == 200
    assert len(fn.built) == 1


def test_heartbeat_handler_answers_with_the_signed_lease(deployed: dict[str, str], fn: Lambda) -> None:
    hb = heartbeat("primary", workload="running")
    answer = fn.heartbeat(signed_heartbeat_event(hb), LambdaContext(function_name="hfo-heartbeat"))
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is False
    verify_lease_answer(KEYRING, answer["headers"]["x-hfo-signature"], answer["body"].encode())
    lease = parse_lease_answer(answer["body"].encode())
    assert (lease.nonce, lease.site, lease.epoch, lease.ttl_s, lease.heartbeat_interval_s) == (
        hb.nonce,
        "primary",
        1,
        Policy().lease_ttl_s,
        Policy().heartbeat_interval_s,
    )
    refused = fn.heartbeat(function_url_event(b"{}", method="GET"), LambdaContext())
    assert refused["statusCode"] == 405 and json.loads(refused["body"])["error"] == "method_not_allowed"


def test_a_bad_configuration_fails_loudly_every_time_until_fixed(
    deployed: dict[str, str], fn: Lambda, monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    monkeypatch.setenv("HFO_LEASE_TTL_S", "4")
    for _ in range(2):
        with pytest.raises(SettingsError, match=r"^HFO_LEASE_TTL_S: must be an integer from 5 to 3600"):
            fn.tick(SCHEDULE_EVENT, LambdaContext())
        with pytest.raises(SettingsError):
            fn.heartbeat(signed_heartbeat_event(heartbeat()), LambdaContext())
    logged = [r for r in output.lines() if r.get("message") == "bad_configuration"]
    assert logged and all(r["variable"] == "HFO_LEASE_TTL_S" for r in logged)
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []
    monkeypatch.setenv("HFO_LEASE_TTL_S", "30")
    assert fn.tick(SCHEDULE_EVENT, LambdaContext())["outcome"] == "saved"


def test_the_hmac_secret_never_appears_in_the_output(deployed: dict[str, str], fn: Lambda, output: Output) -> None:
    from testsupport.watchdog import SECRET_TEXT

    fn.tick(SCHEDULE_EVENT, LambdaContext())
    fn.heartbeat(signed_heartbeat_event(heartbeat()), LambdaContext())
    fn.heartbeat(function_url_event(b"{}"), LambdaContext())
    output.lines()
    assert SECRET_TEXT not in output.text
    assert SECRET_TEXT not in repr(fn.built[0].secrets)


def _imported_after(code_env: dict[str, str]) -> set[str]:
    probe = (
        "import sys, json; import hfo_watchdog.handlers; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'requests', 'aws_xray_sdk', 'hfo_watchdog'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HFO_")}
    env.update(code_env)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout))


def test_importing_the_handlers_loads_no_aws_sdk_and_no_tracer() -> None:
    loaded = _imported_after({"HFO_TRACING": "false"})
    # Powertools touches the bare `botocore` package (its version); the SDK itself stays unloaded.
    assert loaded - {"botocore"} == {
        "hfo_watchdog",
        "hfo_watchdog.handlers",
        "hfo_watchdog.observability",
        "hfo_watchdog.runtime",
    }


def test_tracing_is_opt_in() -> None:
    loaded = _imported_after({"HFO_TRACING": "true", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert "aws_xray_sdk" in {m.split(".")[0] for m in loaded}


def test_an_unreadable_keyring_refuses_heartbeats_with_503_and_fails_ticks(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    boto3.client("secretsmanager").create_secret(Name="too-short", SecretString="short")
    for secret, why in [("no-such-secret", "ResourceNotFoundException"), ("too-short", "at least 32")]:
        monkeypatch.setenv("HFO_HMAC_SECRET_ARN", secret)
        fn = Lambda()  # a new container: the secret is read at its cold start
        answer = fn.heartbeat(signed_heartbeat_event(heartbeat()), LambdaContext())
        assert answer["statusCode"] == 503 and json.loads(answer["body"])["error"] == "unavailable"
        with pytest.raises(SecretError, match=f"^HFO_HMAC_SECRET_ARN: .*{why}"):
            fn.tick(SCHEDULE_EVENT, LambdaContext())
        logged = [r for r in output.lines() if r.get("message") == "keyring_unavailable"]
        assert logged and "HFO_HMAC_SECRET_ARN" in logged[-1]["why"]
    assert "short" not in " ".join(r.get("why", "") for r in output.lines()).replace("too-short", "")
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


def test_an_unreachable_table_fails_the_tick_loudly(
    deployed: dict[str, str], fn: Lambda, monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    monkeypatch.setenv("HFO_TABLE_NAME", "missing-table")
    monkeypatch.setenv("HFO_AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreUnavailable, match="ResourceNotFoundException"):
        fn.tick(SCHEDULE_EVENT, LambdaContext())
    lines = output.lines()
    [logged] = [r for r in lines if r.get("message") == "store_unavailable"]
    assert "batch_get_item" in logged["why"]
    assert not [r for r in lines if "_aws" in r]  # nothing was measured, nothing is published
    assert instance_state(deployed["HFO_INSTANCE_ID"]) == "stopped"


def test_a_discord_secret_without_a_value_degrades_alerts_to_sns_and_never_blocks_a_tick(
    deployed: dict[str, str], fn: Lambda, monkeypatch: pytest.MonkeyPatch, output: Output
) -> None:
    # Terraform creates the webhook secret; until the user puts a value in, it has none.
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="hfo/discord-webhook")["ARN"]
    monkeypatch.setenv("HFO_DISCORD_WEBHOOK_SECRET_ARN", arn)
    inbox = AlertInbox(deployed["HFO_SNS_TOPIC_ARN"], "alerts")
    report = fn.tick(SCHEDULE_EVENT, LambdaContext())
    assert report["outcome"] == "saved"
    [error] = [r for r in output.lines() if r.get("message") == "discord_alerts_unavailable"]
    assert error["level"] == "ERROR" and error["secret"] == arn
    # The first tick's transition alert still went out, through SNS.
    assert inbox.messages(), "alerts reached SNS although Discord was unavailable"
    # Once the user puts the value in, the next tick picks Discord up without a cold start.
    sm.put_secret_value(SecretId=arn, SecretString="https://discord.com/api/webhooks/1/abcdef")
    fn.tick(SCHEDULE_EVENT, LambdaContext())
    [runtime] = fn.built
    assert runtime.notifier() is runtime.notifier()  # complete now, so kept for the container's life
