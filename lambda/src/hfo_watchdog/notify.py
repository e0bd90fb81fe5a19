"""Notifications: Amazon SNS, a Discord webhook, and a fan-out to several; plus reading a string
secret (the webhook URL, the HMAC keyring) from AWS Secrets Manager.

Every notifier implements ports.Notifier: it never raises and returns True only when the
message was accepted. Failures are logged by class, never with the webhook URL, which holds a
token: the URL is kept out of reprs, log records and exception texts, and the urllib3 debug log
(which prints request paths) is scrubbed of it. docs/adapters.md shows the message formats.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError

from hfo_watchdog.core.model import Notification, Severity
from hfo_watchdog.ports import Notifier

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Keeping secrets out of logs
# --------------------------------------------------------------------------------------------


class _Redactor(logging.Filter):
    """Replaces registered secret strings in log records with a placeholder. Installed on the
    urllib3 logger, whose debug records contain request paths (a webhook's token)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 8:
            with self._lock:
                self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        redacted = text
        for secret in secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _Redactor()
for _name in ("urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_REDACTOR)


class _QuietWhileReadingSecrets(logging.Filter):
    """botocore logs whole response bodies at DEBUG (botocore.parsers), which for
    GetSecretValue is the secret itself. While this thread reads a secret, those wire-level
    records are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(self.local, "quiet", False) and record.levelno <= logging.DEBUG)


_QUIET = _QuietWhileReadingSecrets()
for _name in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.httpsession", "botocore.awsrequest"):
    logging.getLogger(_name).addFilter(_QUIET)


@contextlib.contextmanager
def _quiet_wire_logs() -> Iterator[None]:
    previous = getattr(_QUIET.local, "quiet", False)
    _QUIET.local.quiet = True
    try:
        yield
    finally:
        _QUIET.local.quiet = previous


class SecretError(RuntimeError):
    """A secret could not be read. The message names the secret id, never its value."""


_SECRET_HINTS = {
    "ResourceNotFoundException": "does not exist (or has no current version)",
    "AccessDeniedException": "access denied: the role lacks secretsmanager:GetSecretValue on it",
    "DecryptionFailure": "cannot be decrypted: the role lacks kms:Decrypt on its key",
    "InvalidRequestException": "cannot be read now (is it scheduled for deletion?)",
}


def load_secret_string(client: Any, secret_id: str) -> str:
    """The current string value of a Secrets Manager secret. Raises SecretError naming the
    secret id and why (never the value)."""
    if not isinstance(secret_id, str) or not secret_id.strip():
        raise SecretError("secret id is empty: set the secret's ARN or name")
    try:
        with _quiet_wire_logs():
            resp = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "Unknown")
        hint = _SECRET_HINTS.get(code, "could not be read")
        raise SecretError(f"secret {secret_id!r} {hint} ({code})") from None
    except BotoCoreError as exc:
        raise SecretError(
            f"secret {secret_id!r}: Secrets Manager could not be reached ({type(exc).__name__})"
        ) from None
    value = resp.get("SecretString")
    if value is None:
        raise SecretError(f"secret {secret_id!r} holds binary data; a string value is expected")
    if not isinstance(value, str) or not value.strip():
        raise SecretError(f"secret {secret_id!r} is empty")
    return value


_PARAMETER_HINTS = {
    "ParameterNotFound": "does not exist",
    "ParameterVersionNotFound": "has no such version",
    "AccessDeniedException": "access denied: the role lacks ssm:GetParameter on it (or kms:Decrypt on its key)",
    "InvalidKeyId": "cannot be decrypted: its KMS key is disabled, deleted or not usable by the role",
}


PLACEHOLDER_PREFIX = "placeholder"  # terraform/modules/secrets writes "placeholder: put the value ..."


def is_parameter(secret_id: str) -> bool:
    """True for an SSM Parameter Store name (/a/b) or ARN, where the project keeps its secrets
    (SecureString, docs/security.md); anything else names a Secrets Manager secret."""
    return secret_id.startswith("/") or secret_id.split(":")[2:3] == ["ssm"]


def load_parameter_string(client: Any, name: str) -> str:
    """The decrypted value of an SSM SecureString parameter. Raises SecretError naming the
    parameter and why (never the value)."""
    if not isinstance(name, str) or not name.strip():
        raise SecretError("parameter name is empty: set the parameter's ARN or name")
    try:
        with _quiet_wire_logs():
            resp = client.get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "Unknown")
        hint = _PARAMETER_HINTS.get(code, "could not be read")
        raise SecretError(f"parameter {name!r} {hint} ({code})") from None
    except BotoCoreError as exc:
        raise SecretError(f"parameter {name!r}: Parameter Store could not be reached ({type(exc).__name__})") from None
    parameter = resp.get("Parameter") or {}
    if parameter.get("Type") != "SecureString":
        kind = parameter.get("Type")
        raise SecretError(f"parameter {name!r} is a {kind}, not a SecureString: secrets are stored encrypted")
    value = parameter.get("Value")
    if not isinstance(value, str) or not value.strip():
        raise SecretError(f"parameter {name!r} is empty")
    if value.lstrip().lower().startswith(PLACEHOLDER_PREFIX):
        # What the secrets module writes until the user puts the value: public, never a secret.
        raise SecretError(
            f"parameter {name!r} still holds Terraform's placeholder: put the value"
            " (docs/terraform.md#secrets-putting-the-values-in)"
        )
    return value


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

SNS_SUBJECT_MAX = 99  # SNS: "less than 100 characters"
SNS_MESSAGE_MAX_BYTES = 256 * 1024


def _ascii(text: str) -> str:
    """Printable ASCII on one line: accents folded, other characters dropped, spaces collapsed."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    printable = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in folded)
    return " ".join(printable.split())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + "\u2026"


def sns_subject(n: Notification) -> str:
    """``HFO CRITICAL: <title>`` in printable ASCII, under SNS's 100-character limit."""
    subject = _ascii(f"HFO {n.severity.value.upper()}: {n.title}")
    if len(subject) > SNS_SUBJECT_MAX:
        subject = subject[: SNS_SUBJECT_MAX - 3].rstrip() + "..."
    return subject


def render_text(n: Notification) -> str:
    """The plain-text body used by SNS (e-mail, SMS, SQS subscribers)."""
    lines = [f"[{n.severity.value.upper()}] {n.title}", "", n.body.strip()]
    if n.fields:
        lines.append("")
        lines.extend(f"{name}: {value}" for name, value in n.fields.items())
    lines += ["", f"key: {n.key}"]
    text = "\n".join(lines)
    if len(text.encode("utf-8")) > SNS_MESSAGE_MAX_BYTES:
        text = text.encode("utf-8")[: SNS_MESSAGE_MAX_BYTES - 64].decode("utf-8", "ignore") + "\n[truncated]"
    return text


# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_EMBED_TOTAL_MAX = 6000
DISCORD_COLOURS = {Severity.INFO: 0x3498DB, Severity.WARNING: 0xF1C40F, Severity.CRITICAL: 0xE74C3C}


def discord_payload(n: Notification, now: float | None = None, username: str = "hfo-watchdog") -> dict[str, Any]:
    """A webhook body with one embed, within every Discord limit (text is cut with an ellipsis,
    extra fields are summarised in the last one). Mentions are disabled."""
    title = _cut(f"{n.severity.value.upper()}: {n.title}".strip(), DISCORD_TITLE_MAX)
    footer = _cut(f"hfo \u2022 {n.key}", DISCORD_FOOTER_MAX)
    items = [(str(k).strip() or "-", str(v).strip() or "-") for k, v in n.fields.items()]
    if len(items) > DISCORD_FIELDS_MAX:
        extra = len(items) - (DISCORD_FIELDS_MAX - 1)
        items = [*items[: DISCORD_FIELDS_MAX - 1], ("\u2026", f"{extra} more fields not shown")]
    fields = [
        {"name": _cut(k, DISCORD_FIELD_NAME_MAX), "value": _cut(v, DISCORD_FIELD_VALUE_MAX), "inline": len(v) <= 40}
        for k, v in items
    ]
    description = n.body.strip() or "-"

    def used(fs: Sequence[Mapping[str, Any]]) -> int:
        return len(title) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fs)

    # Keep at least a short description; drop fields from the end if they alone break the total.
    while fields and used(fields) > DISCORD_EMBED_TOTAL_MAX - 200:
        fields.pop()
    description = _cut(description, min(DISCORD_DESCRIPTION_MAX, DISCORD_EMBED_TOTAL_MAX - used(fields)))
    when = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    embed: dict[str, Any] = {
        "title": title,
        "description": description,
        "color": DISCORD_COLOURS.get(n.severity, DISCORD_COLOURS[Severity.INFO]),
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return {"username": username, "embeds": [embed], "allowed_mentions": {"parse": []}}


# --------------------------------------------------------------------------------------------
# Notifiers
# --------------------------------------------------------------------------------------------


class SnsNotifier:
    """Publishes to an SNS topic: ASCII subject, plain-text message, `severity` and `key` as
    message attributes (for subscription filter policies)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        if not isinstance(topic_arn, str) or not topic_arn.startswith("arn:") or ":sns:" not in topic_arn:
            raise ValueError(
                f"topic_arn must be an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:hfo, got {topic_arn!r}"
            )
        self._client = client
        self.topic_arn = topic_arn

    def __repr__(self) -> str:
        return f"SnsNotifier(topic_arn={self.topic_arn!r})"

    def notify(self, notification: Notification) -> bool:
        try:
            self._client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(notification),
                Message=render_text(notification),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": notification.severity.value},
                    "key": {"DataType": "String", "StringValue": notification.key or "-"},
                },
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            log.warning("SNS publish to %s failed: %s", self.topic_arn, code)
            return False
        except BotoCoreError as exc:
            log.warning("SNS publish to %s failed: %s", self.topic_arn, type(exc).__name__)
            return False
        except Exception as exc:
            log.warning("SNS publish to %s failed unexpectedly: %s", self.topic_arn, type(exc).__name__)
            return False
        return True


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds to wait from a 429: the Retry-After header, else Discord's JSON `retry_after`."""
    header = resp.headers.get("Retry-After")
    candidates: list[Any] = [header]
    try:
        body = resp.json()
        if isinstance(body, dict):
            candidates.append(body.get("retry_after"))
    except ValueError:
        pass
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


class DiscordWebhookNotifier:
    """Posts one embed to a Discord webhook. A 429 whose Retry-After is at most
    ``max_retry_after_s`` is retried once; anything else that is not 2xx is a failure.
    The URL (it holds the webhook's token) never appears in a repr, a log or an error."""

    def __init__(
        self,
        webhook_url: str,
        session: requests.Session | None = None,
        timeout: float = 3.0,
        *,
        max_retry_after_s: float = 2.0,
        username: str = "hfo-watchdog",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = webhook_url.strip() if isinstance(webhook_url, str) else ""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or len(parts.path) < 2:
            # Never echo the value: it is a credential.
            raise ValueError("Discord webhook URL must be an https:// URL with a path (value not shown)")
        if not (0 < timeout <= 30):
            raise ValueError(f"timeout must be in (0, 30] seconds, got {timeout!r}")
        if not (0 <= max_retry_after_s <= 30):
            raise ValueError(f"max_retry_after_s must be in [0, 30] seconds, got {max_retry_after_s!r}")
        self._url = url
        self._timeout = float(timeout)
        self._max_retry_after_s = float(max_retry_after_s)
        self._username = username
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            session.trust_env = False
        self._session = session
        _REDACTOR.add(parts.path)  # holds /api/webhooks/<id>/<token>
        if parts.query:
            _REDACTOR.add(parts.query)

    def __repr__(self) -> str:
        return "DiscordWebhookNotifier(url=<redacted>)"

    def notify(self, notification: Notification) -> bool:
        try:
            payload = discord_payload(notification, username=self._username)
        except Exception as exc:
            log.warning("Discord notification could not be rendered: %s", type(exc).__name__)
            return False
        for attempt in (1, 2):
            try:
                resp = self._session.post(self._url, json=payload, timeout=self._timeout, allow_redirects=False)
            except requests.Timeout:
                log.warning("Discord webhook: no answer within %.1fs", self._timeout)
                return False
            except requests.ConnectionError:
                log.warning("Discord webhook: connection failed")
                return False
            except Exception as exc:
                log.warning("Discord webhook: request failed (%s)", type(exc).__name__)
                return False
            try:
                if 200 <= resp.status_code < 300:
                    return True
                if resp.status_code == 429 and attempt == 1:
                    wait = _retry_after(resp)
                    if wait is not None and wait <= self._max_retry_after_s:
                        log.info("Discord webhook rate-limited; retrying once in %.2fs", wait)
                        self._sleep(wait)
                        continue
                    log.warning(
                        "Discord webhook rate-limited for %s s; giving up", "?" if wait is None else f"{wait:g}"
                    )
                    return False
                log.warning("Discord webhook answered HTTP %d", resp.status_code)
                return False
            finally:
                resp.close()
        return False


class FanoutNotifier:
    """Delivers to every notifier, whatever the others do. True when at least one delivered
    (the user heard about it somewhere); False when none did, or there are none."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self._notifiers = tuple(notifiers)

    def __repr__(self) -> str:
        return f"FanoutNotifier({', '.join(type(n).__name__ for n in self._notifiers)})"

    def __len__(self) -> int:
        return len(self._notifiers)

    def notify(self, notification: Notification) -> bool:
        delivered = 0
        for notifier in self._notifiers:
            try:
                ok = bool(notifier.notify(notification))
            except Exception as exc:  # a notifier broke its contract; its message may hold a secret
                log.warning("%s raised %s; continuing with the others", type(notifier).__name__, type(exc).__name__)
                ok = False
            if ok:
                delivered += 1
            else:
                log.warning("%s did not deliver %s", type(notifier).__name__, notification.key)
        return delivered > 0
