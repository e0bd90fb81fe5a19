"""The state containers' client of their own site agent (STATE_CONTRACT, docs/state-handoff.md#credentials).

The init container (``hfo-site state restore``) and the sidecar (``hfo-site state sync``) hold no
AWS key. They ask the agent's lease server for short-lived S3 credentials, issued by the watchdog
to the lease holder only, and tell it what they did:

- ``GET  <base>/v1/state/credentials`` (bearer token) -> 200 credentials of the current lease
  epoch, 409 ``{"error": "no_lease" | "no_credentials" | "state_disabled"}`` otherwise;
- ``POST <base>/v1/state/report`` (bearer token) -> 204.

Nothing here ever puts a credential, the session token or the bearer token into a log line, an
exception or a ``repr``: errors name the URL (which carries no secret: checked at start), the HTTP
status and the agent's error code only.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hfo_site.state.manifest import check_epoch, check_site
from hfo_site.state.store import S3StateStore

log = logging.getLogger("hfo_site.state.client")

CREDENTIALS_PATH_SUFFIX = "/v1/state/credentials"
REPORT_NAME = "report"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_BYTES = 4096
MAX_ANSWER_BYTES = 64 * 1024
EVENTS = ("restored", "uploaded", "final", "fenced", "failed")
MAX_DETAIL = 200


class StateConfigError(ValueError):
    """A setting of the state containers is missing or wrong (exit 2). Names the setting, never a secret."""


class AgentUnavailable(Exception):
    """No usable answer from the agent (network, 5xx, 401, malformed body). Retry within the bounds."""


class NoCredentials(Exception):
    """The agent answered 409: this site holds no fresh lease, no credentials yet, or state is off."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(f"the agent has no state credentials for this pod ({code}): {detail}"[:300])


@dataclass(frozen=True)
class Credentials:
    """One set of session credentials for one lease epoch. The secret fields are kept out of
    ``repr`` and ``str`` (a traceback or a debug log of this object shows none of them)."""

    epoch: int
    site: str
    bucket: str
    region: str | None
    endpoint_url: str | None
    expires_at: float
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) < seconds

    @classmethod
    def from_answer(cls, document: Any) -> Credentials:
        """Validate the agent's 200 answer; AgentUnavailable naming the field (never its value)."""
        if not isinstance(document, dict):
            raise AgentUnavailable("the credentials answer is not a JSON object")

        def text(name: str, *, optional: bool = False) -> str | None:
            value = document.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, str) or not value or len(value) > 4096:
                raise AgentUnavailable(f"the credentials answer lacks or mistypes {name!r}")
            return value

        epoch, expires = document.get("epoch"), document.get("expires_at")
        try:
            check_epoch(epoch)  # type: ignore[arg-type]
            check_site(document.get("site"))  # type: ignore[arg-type]
        except ValueError as exc:
            raise AgentUnavailable(f"the credentials answer is invalid: {exc}") from None
        if isinstance(expires, bool) or not isinstance(expires, (int, float)):
            raise AgentUnavailable("the credentials answer lacks or mistypes 'expires_at'")
        endpoint = text("endpoint_url", optional=True)
        if endpoint is not None and urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
            raise AgentUnavailable("the credentials answer's 'endpoint_url' is not an http(s) URL")
        return cls(
            epoch=int(epoch),  # type: ignore[arg-type]
            site=str(document["site"]),
            bucket=str(text("bucket")),
            region=text("region", optional=True),
            endpoint_url=endpoint,
            expires_at=float(expires),
            access_key_id=str(text("access_key_id")),
            secret_access_key=str(text("secret_access_key")),
            session_token=str(text("session_token")),
        )

    def store(self, *, connect_timeout_s: float = 3.0, read_timeout_s: float = 10.0) -> S3StateStore:
        """The state store on this epoch's bucket, signed with these credentials only (never the
        process environment's: the pod has no AWS key, and a stray one must not be used)."""
        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=self.region or "us-east-1",
        )
        config = Config(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
        )
        client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        return S3StateStore(self.bucket, client=client)


def read_token(path: Path) -> str:
    """The bearer token file (a mounted Secret): StateConfigError naming the file, never its content."""
    try:
        data = path.read_bytes()[: MAX_TOKEN_BYTES + 1]
    except OSError as exc:
        raise StateConfigError(f"HFO_STATE_TOKEN_FILE: {path} cannot be read ({exc.strerror})") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise StateConfigError(f"HFO_STATE_TOKEN_FILE: {path} is longer than {MAX_TOKEN_BYTES} bytes")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise StateConfigError(f"HFO_STATE_TOKEN_FILE: {path} is not UTF-8 text") from None
    if len(token) < MIN_TOKEN_CHARS or any(ch.isspace() for ch in token):
        raise StateConfigError(
            f"HFO_STATE_TOKEN_FILE: {path} must hold one token of at least {MIN_TOKEN_CHARS} characters, no spaces"
        )
    return token


def check_credentials_url(url: str) -> str:
    """``http(s)://host[:port]/.../v1/state/credentials``, without user info, query or fragment
    (a URL is logged; it must never carry a secret)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StateConfigError(f"HFO_STATE_CREDENTIALS_URL: {url!r} is not an http(s) URL with a host")
    if parts.username or parts.password or "@" in parts.netloc:
        raise StateConfigError("HFO_STATE_CREDENTIALS_URL: must not carry user information")
    if parts.query or parts.fragment:
        raise StateConfigError(f"HFO_STATE_CREDENTIALS_URL: {url!r} must not have a query or a fragment")
    if not parts.path.endswith(CREDENTIALS_PATH_SUFFIX):
        raise StateConfigError(f"HFO_STATE_CREDENTIALS_URL: {url!r} must end with {CREDENTIALS_PATH_SUFFIX}")
    return url


class AgentClient:
    """Blocking client of the agent's state API, every request bounded by ``timeout_s``. The token
    file is re-read on each request, so a rotated Secret is picked up without a restart."""

    def __init__(self, credentials_url: str, token_file: Path, *, timeout_s: float = 3.0) -> None:
        self.credentials_url = check_credentials_url(credentials_url)
        self.report_url = urllib.parse.urljoin(credentials_url, REPORT_NAME)
        self.token_file = token_file
        self.timeout_s = timeout_s
        read_token(token_file)  # refuse a missing or malformed file at start

    def __repr__(self) -> str:
        return f"AgentClient(credentials_url={self.credentials_url!r})"

    def _request(self, url: str, *, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        try:
            token = read_token(self.token_file)
        except StateConfigError as exc:
            raise AgentUnavailable(str(exc)) from None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, headers=headers, method="GET" if body is None else "POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - checked scheme
                return int(response.status), response.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as answer:
            with answer:
                return answer.code, answer.read(MAX_ANSWER_BYTES)
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets; never the request's headers
            reason = getattr(exc, "reason", exc)
            raise AgentUnavailable(f"{url}: {type(reason).__name__}") from None

    def credentials(self) -> Credentials:
        """The current epoch's credentials. NoCredentials on 409, AgentUnavailable otherwise."""
        status, body = self._request(self.credentials_url, body=None, timeout_s=self.timeout_s)
        if status == 401:
            raise AgentUnavailable(f"{self.credentials_url}: 401, the agent refused the token of HFO_STATE_TOKEN_FILE")
        if status == 409:
            try:
                answer = json.loads(body)
                code, detail = str(answer.get("error", "unknown")), str(answer.get("detail", ""))
            except (ValueError, AttributeError):
                code, detail = "unknown", "unreadable 409 answer"
            raise NoCredentials(code[:40], detail[:200])
        if status != 200:
            raise AgentUnavailable(f"{self.credentials_url}: HTTP {status}")
        try:
            document = json.loads(body)
        except ValueError:
            raise AgentUnavailable(f"{self.credentials_url}: the answer is not JSON") from None
        return Credentials.from_answer(document)

    def report(
        self,
        workload: str,
        event: str,
        epoch: int,
        *,
        snapshot_key: str | None = None,
        restored_epoch: int | None = None,
        detail: str = "",
        timeout_s: float | None = None,
    ) -> bool:
        """Tell the agent what happened (best effort, bounded): True when it took it (204). A lost
        report never changes what the container does; it is logged."""
        if event not in EVENTS:
            raise ValueError(f"unknown state event {event!r}")
        document = {
            "workload": workload,
            "event": event,
            "epoch": epoch,
            "snapshot_key": snapshot_key,
            "restored_epoch": restored_epoch,
            "at": int(time.time()),
            "detail": detail[:MAX_DETAIL],
        }
        try:
            status, _ = self._request(
                self.report_url, body=json.dumps(document).encode(), timeout_s=timeout_s or self.timeout_s
            )
        except AgentUnavailable as exc:
            log.warning("state report not delivered", extra={"event": event, "error": str(exc)})
            return False
        if status != 204:
            log.warning("state report refused by the agent", extra={"event": event, "status": status})
            return False
        return True
