"""Notifiers and secrets: SNS and Secrets Manager through the moto server (an SQS queue
subscribed to the topic reads the message back), Discord against a real HTTPS stand-in on
127.0.0.1 that records what it was sent."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hfo_drill.inbox import AlertInbox
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.core.model import Notification, Severity
from hfo_watchdog.notify import (
    DISCORD_COLOURS,
    DiscordWebhookNotifier,
    FanoutNotifier,
    SecretError,
    SnsNotifier,
    is_parameter,
    load_parameter_string,
    load_secret_string,
)
from testsupport.https import Exchange, HttpsServer, Recorder, TestCA
from testsupport.net import free_port
from testsupport.tools import REPO_ROOT
from testsupport.watchdog import secrets_client, sns_client

TOKEN = "hfoTok3n-abcdefghijklmnopqrstuvwxyz0123456789_SECRET"
WEBHOOK_PATH = f"/api/webhooks/112233445566778899/{TOKEN}"


def note(**overrides: Any) -> Notification:
    base: dict[str, Any] = {
        "key": "transition:suspect->failing_over",
        "severity": Severity.CRITICAL,
        "title": "Failing over to the standby",
        "body": "The primary missed 3 probes and has sent no heartbeat for 185 s.",
        "fields": {"lease": "standby @ epoch 8", "probe": "connect_timeout", "instance": "i-0123456789abcdef0"},
    }
    base.update(overrides)
    return Notification(**base)


# --- SNS -----------------------------------------------------------------------------------


@pytest.fixture
def topic(aws: MotoServer) -> AlertInbox:
    """An SNS topic with an SQS queue subscribed to it (standard envelope, not raw)."""
    return AlertInbox.on_new_topic("hfo-alerts")


@pytest.mark.moto
def test_sns_message_reaches_a_subscriber(topic: AlertInbox) -> None:
    notifier = SnsNotifier(sns_client(max_attempts=2), topic.topic_arn)
    assert notifier.notify(note()) is True
    [alert] = topic.drain()
    assert alert.subject == "HFO CRITICAL: Failing over to the standby"
    message = alert.message
    assert message.startswith("[CRITICAL] Failing over to the standby")
    assert "missed 3 probes" in message
    assert "lease: standby @ epoch 8" in message and "probe: connect_timeout" in message
    assert "key: transition:suspect->failing_over" in message
    assert alert.severity == "critical"  # the message attributes subscribers can filter on
    assert alert.key == "transition:suspect->failing_over"


@pytest.mark.moto
def test_sns_subject_is_short_single_line_ascii(topic: AlertInbox) -> None:
    title = "Bascule vers l\u2019instance de secours \u2014 \u00e9chec \U0001f525\nligne deux " + "tr\u00e8s long " * 20
    notifier = SnsNotifier(sns_client(max_attempts=1), topic.topic_arn)
    assert notifier.notify(note(title=title, severity=Severity.WARNING))
    [alert] = topic.drain()
    subject = alert.subject
    assert len(subject) < 100
    assert subject.isascii() and all(32 <= ord(c) < 127 for c in subject)
    assert subject.startswith("HFO WARNING: Bascule vers linstance de secours echec ligne deux tres long")
    assert subject.endswith("...")
    assert "\u00e9chec" in alert.message, "the message body keeps the original text"


@pytest.mark.moto
def test_sns_failure_returns_false_and_logs(aws: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    with caplog.at_level(logging.WARNING, logger="hfo_watchdog.notify"):
        assert SnsNotifier(sns_client(max_attempts=1), missing).notify(note()) is False
    assert any("NotFound" in r.getMessage() for r in caplog.records)


def test_sns_unreachable_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    notifier = SnsNotifier(sns_client(max_attempts=1), "arn:aws:sns:us-east-1:123456789012:hfo")
    assert notifier.notify(note()) is False


def test_sns_topic_arn_is_validated() -> None:
    with pytest.raises(ValueError, match="SNS topic ARN"):
        SnsNotifier(object(), "hfo-alerts")


# --- Secrets Manager -----------------------------------------------------------------------


@pytest.mark.moto
def test_load_secret_string_reads_the_current_value(aws: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    sm = secrets_client(max_attempts=2)
    with caplog.at_level(logging.WARNING):  # botocore logs the test's own create call in full at DEBUG
        sm.create_secret(Name="hfo/discord-webhook", SecretString=f"https://discord.com{WEBHOOK_PATH}")
    assert load_secret_string(sm, "hfo/discord-webhook") == f"https://discord.com{WEBHOOK_PATH}"
    with caplog.at_level(logging.WARNING):
        sm.put_secret_value(SecretId="hfo/discord-webhook", SecretString="rotated-value-0123456789")
    assert load_secret_string(sm, "hfo/discord-webhook") == "rotated-value-0123456789"


@pytest.mark.moto
def test_secret_value_never_reaches_the_debug_log(aws: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    sm = secrets_client(max_attempts=1)
    with caplog.at_level(logging.WARNING):
        sm.create_secret(Name="hfo/hmac", SecretString=TOKEN)
    caplog.clear()
    assert load_secret_string(sm, "hfo/hmac") == TOKEN
    # DEBUG was on for every logger (autouse fixture): botocore's wire log, which prints whole
    # response bodies, is silenced during the read; the fixture checks no record holds TOKEN.
    assert any(r.name.startswith("urllib3") for r in caplog.records), "debug logging was really on"


@pytest.mark.moto
def test_missing_secret_error_names_the_id(aws: MotoServer) -> None:
    with pytest.raises(SecretError, match=r"secret 'hfo/nope' does not exist") as info:
        load_secret_string(secrets_client(max_attempts=1), "hfo/nope")
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.moto
def test_binary_or_empty_secret_errors_never_show_the_value(aws: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    sm = secrets_client(max_attempts=1)
    with caplog.at_level(logging.WARNING):
        sm.create_secret(Name="hfo/binary", SecretBinary=TOKEN.encode())
    with pytest.raises(SecretError, match="binary") as info:
        load_secret_string(sm, "hfo/binary")
    assert TOKEN not in str(info.value)
    sm.create_secret(Name="hfo/blank", SecretString="   ")
    with pytest.raises(SecretError, match="'hfo/blank' is empty"):
        load_secret_string(sm, "hfo/blank")
    with pytest.raises(SecretError, match="secret id is empty"):
        load_secret_string(sm, "")


# --- SSM Parameter Store (SecureString): where Terraform keeps the secrets ------------------


def _ssm(max_attempts: int = 1) -> Any:
    import boto3
    from hfo_watchdog.aws import client_config

    return boto3.client("ssm", config=client_config(max_attempts))


@pytest.mark.moto
def test_load_parameter_string_reads_the_decrypted_current_value(
    aws: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    ssm = _ssm()
    with caplog.at_level(logging.WARNING):  # the test's own put would log the value at DEBUG
        ssm.put_parameter(Name="/hfo/hmac-keyring", Value=TOKEN, Type="SecureString")
    caplog.clear()
    assert load_parameter_string(ssm, "/hfo/hmac-keyring") == TOKEN
    assert any(r.name.startswith("urllib3") for r in caplog.records), "debug logging was really on"
    with caplog.at_level(logging.WARNING):  # rotation: the next cold start reads the new value
        ssm.put_parameter(Name="/hfo/hmac-keyring", Value="rotated-" + TOKEN, Type="SecureString", Overwrite=True)
        arn = ssm.get_parameter(Name="/hfo/hmac-keyring")["Parameter"]["ARN"]
    assert load_parameter_string(ssm, arn) == "rotated-" + TOKEN


@pytest.mark.moto
def test_a_plain_missing_or_blank_parameter_is_refused_without_its_value(
    aws: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    ssm = _ssm()
    with caplog.at_level(logging.WARNING):
        ssm.put_parameter(Name="/hfo/plain", Value=TOKEN, Type="String")
        ssm.put_parameter(Name="/hfo/blank", Value="   ", Type="SecureString")
    with pytest.raises(SecretError, match=r"'/hfo/plain' is a String, not a SecureString") as info:
        load_parameter_string(ssm, "/hfo/plain")
    assert TOKEN not in str(info.value)
    with pytest.raises(SecretError, match=r"parameter '/hfo/nope' does not exist \(ParameterNotFound\)"):
        load_parameter_string(ssm, "/hfo/nope")
    with pytest.raises(SecretError, match="'/hfo/blank' is empty"):
        load_parameter_string(ssm, "/hfo/blank")
    # What Terraform writes until the user puts the value is public text: never used as a secret.
    placeholder = (REPO_ROOT / "terraform" / "modules" / "secrets" / "main.tf").read_text()
    text = re.search(r'placeholder = "(placeholder: [^"]+)"', placeholder)
    assert text is not None and len(text.group(1)) >= 32  # long enough to pass as a plain HMAC secret
    with caplog.at_level(logging.WARNING):
        ssm.put_parameter(Name="/hfo/unset", Value=text.group(1), Type="SecureString")
    with pytest.raises(SecretError, match=r"'/hfo/unset' still holds Terraform's placeholder: put the value"):
        load_parameter_string(ssm, "/hfo/unset")


def test_parameter_names_and_arns_are_told_from_secret_ids() -> None:
    assert is_parameter("/hfo/hmac-keyring")
    assert is_parameter("arn:aws:ssm:us-east-1:123456789012:parameter/hfo/hmac-keyring")
    assert not is_parameter("hfo/hmac-keyring")
    assert not is_parameter("arn:aws:secretsmanager:us-east-1:123456789012:secret:hfo/hmac-AbCdEf")


# --- Discord -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def discord(ca: TestCA) -> Iterator[HttpsServer]:
    with HttpsServer(ca.server_context(), Recorder(status=204)) as srv:
        yield srv


@pytest.fixture
def session(ca: TestCA) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment would override `verify`
    s.verify = str(ca.bundle)
    return s


@pytest.fixture
def webhook(discord: HttpsServer, session: requests.Session) -> DiscordWebhookNotifier:
    return DiscordWebhookNotifier(discord.url(WEBHOOK_PATH), session=session, timeout=1.0)


@pytest.fixture(autouse=True)
def _no_token_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here runs with DEBUG logging everywhere (urllib3 prints request paths at
    DEBUG), and no record may contain the webhook token."""
    caplog.set_level(logging.DEBUG)
    # Named too: other libraries in this process (the kubernetes client's Configuration) set the
    # urllib3 logger to WARNING for good; caplog restores its level after each test.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    yield
    for record in caplog.get_records("setup") + caplog.get_records("call"):
        assert TOKEN not in record.getMessage(), record
        assert TOKEN not in str(record.exc_text or ""), record


def posted(server: HttpsServer) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests if r.method == "POST"]


@pytest.mark.network
def test_discord_posts_one_embed_to_the_webhook(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    assert webhook.notify(note()) is True
    [request] = discord.requests
    assert request.path == WEBHOOK_PATH and request.headers["content-type"] == "application/json"
    [payload] = posted(discord)
    assert payload["allowed_mentions"] == {"parse": []}, "an alert never pings @everyone"
    [embed] = payload["embeds"]
    assert embed["title"] == "CRITICAL: Failing over to the standby"
    assert embed["description"].startswith("The primary missed 3 probes")
    assert embed["color"] == DISCORD_COLOURS[Severity.CRITICAL]
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "lease": "standby @ epoch 8",
        "probe": "connect_timeout",
        "instance": "i-0123456789abcdef0",
    }
    assert "transition:suspect->failing_over" in embed["footer"]["text"]
    assert embed["timestamp"].endswith("Z")


@pytest.mark.network
def test_urllib3_request_log_shows_no_token(
    discord: HttpsServer, webhook: DiscordWebhookNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    assert webhook.notify(note())
    lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool" and "POST" in r.getMessage()]
    assert lines, "urllib3 logged the request line at DEBUG"
    assert all("[redacted]" in line for line in lines), lines


@pytest.mark.network
@pytest.mark.parametrize("severity", list(Severity))
def test_discord_colour_follows_severity(
    discord: HttpsServer, webhook: DiscordWebhookNotifier, severity: Severity
) -> None:
    assert webhook.notify(note(severity=severity))
    assert posted(discord)[0]["embeds"][0]["color"] == DISCORD_COLOURS[severity]
    assert len(set(DISCORD_COLOURS.values())) == 3


@pytest.mark.network
def test_discord_limits_are_respected(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    huge = note(
        title="T" * 1000,
        body="B" * 10000,
        fields={f"field-{i:02d}-" + "n" * 300: "v" * 2000 for i in range(40)},
        key="k" * 3000,
    )
    assert webhook.notify(huge)
    [embed] = posted(discord)[0]["embeds"]
    assert len(embed["title"]) <= 256 and embed["title"].endswith("\u2026")
    assert len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 and f["value"] for f in embed["fields"])
    assert len(embed["footer"]["text"]) <= 2048
    total = (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000
    assert len(embed["description"]) >= 200, "the description survives, shortened"


@pytest.mark.network
def test_discord_too_many_fields_are_summarised(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    assert webhook.notify(note(fields={f"f{i}": str(i) for i in range(30)}))
    fields = posted(discord)[0]["embeds"][0]["fields"]
    assert len(fields) == 25
    assert [f["name"] for f in fields[:24]] == [f"f{i}" for i in range(24)]
    assert fields[24]["value"] == "6 more fields not shown"


@pytest.mark.network
def test_discord_429_with_short_retry_after_is_retried_once(
    discord: HttpsServer, webhook: DiscordWebhookNotifier
) -> None:
    calls: list[int] = []

    def behave(ex: Exchange) -> None:
        calls.append(1)
        if len(calls) == 1:
            body = b'{"message":"You are being rate limited.","retry_after":0.2,"global":false}'
            ex.reply(429, body, {"Retry-After": "0.2"})
        else:
            ex.reply(204, b"", content_type=None)

    discord.behaviour = behave
    started = time.monotonic()
    assert webhook.notify(note()) is True
    assert len(discord.requests) == 2
    assert time.monotonic() - started >= 0.2, "it waited as told before retrying"


@pytest.mark.network
def test_discord_429_retry_after_in_body_only(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    calls: list[int] = []

    def behave(ex: Exchange) -> None:
        calls.append(1)
        if len(calls) == 1:
            ex.reply(429, b'{"message":"You are being rate limited.","retry_after":0.1,"global":false}')
        else:
            ex.reply(204, b"", content_type=None)

    discord.behaviour = behave
    assert webhook.notify(note()) is True and len(calls) == 2


@pytest.mark.network
def test_discord_429_with_long_retry_after_gives_up_at_once(
    discord: HttpsServer, webhook: DiscordWebhookNotifier
) -> None:
    discord.behaviour = Recorder(status=429, body=b'{"retry_after":30.0,"global":true}', headers={"Retry-After": "30"})
    started = time.monotonic()
    assert webhook.notify(note()) is False
    assert len(discord.requests) == 1
    assert time.monotonic() - started < 5, "no 30 s wait"


@pytest.mark.network
def test_discord_second_429_is_not_retried_again(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    discord.behaviour = Recorder(status=429, body=b'{"retry_after":0.05}', headers={"Retry-After": "0.05"})
    assert webhook.notify(note()) is False
    assert len(discord.requests) == 2


@pytest.mark.network
@pytest.mark.parametrize("status", [500, 400, 404, 302])
def test_discord_error_status_returns_false(
    discord: HttpsServer, webhook: DiscordWebhookNotifier, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    discord.behaviour = Recorder(status=status, body=b'{"message":"nope"}', headers={"Location": "/elsewhere"})
    assert webhook.notify(note()) is False
    assert len(discord.requests) == 1, "no retry, no redirect followed"
    assert any(f"HTTP {status}" in r.getMessage() for r in caplog.records if r.name == "hfo_watchdog.notify")


@pytest.mark.network
def test_discord_hang_times_out_quickly(discord: HttpsServer, session: requests.Session) -> None:
    discord.behaviour = lambda ex: ex.wait(30)
    webhook = DiscordWebhookNotifier(discord.url(WEBHOOK_PATH), session=session, timeout=0.3)
    started = time.monotonic()
    assert webhook.notify(note()) is False
    assert time.monotonic() - started < 0.3 + 2.0


@pytest.mark.network
def test_discord_refused_connection_returns_false(session: requests.Session) -> None:
    webhook = DiscordWebhookNotifier(f"https://127.0.0.1:{free_port()}{WEBHOOK_PATH}", session=session, timeout=0.5)
    assert webhook.notify(note()) is False


@pytest.mark.network
def test_discord_rejects_an_untrusted_certificate(discord: HttpsServer) -> None:
    # A default session trusts the system CAs only: the stand-in's private CA is refused.
    assert DiscordWebhookNotifier(discord.url(WEBHOOK_PATH), timeout=1.0).notify(note()) is False
    assert discord.requests == []


def test_discord_url_is_never_shown() -> None:
    webhook = DiscordWebhookNotifier(f"https://discord.com{WEBHOOK_PATH}")
    assert TOKEN not in repr(webhook) and TOKEN not in str(webhook)
    for bad in (f"http://discord.com{WEBHOOK_PATH}", f"discord.com{WEBHOOK_PATH}", "https://discord.com"):
        with pytest.raises(ValueError, match="https") as info:
            DiscordWebhookNotifier(bad)
        assert TOKEN not in str(info.value)
    with pytest.raises(ValueError, match="timeout"):
        DiscordWebhookNotifier(f"https://discord.com{WEBHOOK_PATH}", timeout=0)


# --- Fan-out -------------------------------------------------------------------------------


class _Raising:
    def notify(self, notification: Notification) -> bool:
        raise RuntimeError(f"boom while posting to https://discord.com{WEBHOOK_PATH}")


@pytest.mark.moto
@pytest.mark.network
def test_fanout_delivers_to_the_rest_when_one_fails(
    topic: AlertInbox, discord: HttpsServer, webhook: DiscordWebhookNotifier
) -> None:
    discord.behaviour = Recorder(status=500)
    fanout = FanoutNotifier([_Raising(), webhook, SnsNotifier(sns_client(max_attempts=1), topic.topic_arn)])
    assert fanout.notify(note()) is True, "SNS delivered it"
    assert len(discord.requests) == 1
    assert len(topic.drain()) == 1


@pytest.mark.network
def test_fanout_is_false_when_nobody_delivered(discord: HttpsServer, webhook: DiscordWebhookNotifier) -> None:
    discord.behaviour = Recorder(status=500)
    assert FanoutNotifier([webhook, _Raising()]).notify(note()) is False
    assert FanoutNotifier([]).notify(note()) is False
    assert TOKEN not in repr(FanoutNotifier([webhook]))
