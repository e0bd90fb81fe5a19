"""The probe: one signed HTTPS GET to the primary's health service, classified.

``HttpsProber.probe()`` asks ``<url>?nonce=<fresh nonce>`` and returns a ``ProbeResult`` that is
good only for a fresh, signed ``pass`` answer from the expected site to *this* nonce; anything
else gets exactly one ``ProbeFailure`` class, checked in the order of docs/protocol.md#probe.
docs/adapters.md lists what each class means here.

Time bounds: the connect timeout bounds the TCP connection; the read timeout bounds each wait
for bytes; and a total deadline of connect + read timeout bounds the whole exchange. requests
cannot enforce that total (its read timeout is per recv), so a timer shuts the probe's socket
down at the deadline: a server that drips its headers or body cannot hold the probe longer.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import json
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import urllib3
from hfo_protocol.errors import ProtocolError, SignatureError
from hfo_protocol.health import CONTENT_TYPE, NONCE_PARAM, HealthDocument, parse_health_body, verify_health
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import check_nonce, new_nonce
from hfo_protocol.renewal import CONTENT_TYPE as RENEWAL_CONTENT_TYPE
from hfo_protocol.renewal import LeaseRenewal, build_renewal, parse_renewal, sign_renewal
from hfo_protocol.signing import SIGNATURE_HEADER
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from hfo_watchdog.core.model import ProbeFailure, ProbeResult, Renewal, RenewOutcome

SITES = ("primary", "standby")
_CHUNK = 16384
_DETAIL_MAX = 300


# --------------------------------------------------------------------------------------------
# The total deadline: a timer that shuts down the probe's socket.
# --------------------------------------------------------------------------------------------


class _Deadline:
    """Watches the sockets a probe opens; at expiry, shuts them down so every blocked read ends."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self.expired = False
        self.tcp_connected = False
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: shutdown() acts on the connection, whatever object (plain or
        # TLS-wrapped) uses the original descriptor by then.
        dup = sock.dup()
        with self._lock:
            self.tcp_connected = True
            self._watched.append(dup)
            if self.expired:
                self._shutdown(dup)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._watched:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # already closed by the peer or by us
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()


_CURRENT_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("hfo_probe_deadline", default=None)


class _WatchedHTTPSConnection(HTTPSConnection):
    """An HTTPS connection that hands its TCP socket to the current probe's deadline."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        deadline = _CURRENT_DEADLINE.get()
        if deadline is not None:
            deadline.watch(sock)
        return sock


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests adapter whose HTTPS pools use the watched connection class."""

    def __init__(self) -> None:
        super().__init__(max_retries=0, pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": _WatchedHTTPSConnectionPool,
        }


# --------------------------------------------------------------------------------------------
# Classification helpers
# --------------------------------------------------------------------------------------------


class _Failed(Exception):
    """Internal: one classified failure, raised to leave the pipeline early."""

    def __init__(self, failure: ProbeFailure, detail: str, http_status: int | None = None) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.http_status = http_status


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (``__cause__``/``__context__`` and urllib3's
    ``reason``), bounded so a cyclic chain cannot loop."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 20:
        cur = todo.pop(0)
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo.extend([cur.__cause__, cur.__context__])
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        for arg in cur.args:
            if isinstance(arg, BaseException):
                todo.append(arg)
    return seen


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


def _classify_exception(exc: BaseException, deadline: _Deadline, total_s: float) -> tuple[ProbeFailure, str]:
    chain = _causes(exc)
    name = type(exc).__name__
    if deadline.expired:
        return ProbeFailure.TIMEOUT, f"no complete answer within the total deadline of {total_s:g}s"
    if any(isinstance(c, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for c in chain):
        return ProbeFailure.DNS, "the host name does not resolve"
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in chain):
        reason = next((c for c in chain if isinstance(c, ssl.SSLError)), exc)
        return ProbeFailure.TLS, _short(f"TLS handshake or certificate verification failed: {reason}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        if deadline.tcp_connected:
            return ProbeFailure.TIMEOUT, "connected, but the TLS handshake did not finish in time"
        return ProbeFailure.CONNECT_TIMEOUT, "no TCP connection within the connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout) or any(isinstance(c, TimeoutError) for c in chain):
        return ProbeFailure.TIMEOUT, "connected, but no answer within the read timeout"
    if any(isinstance(c, (ConnectionRefusedError, ConnectionResetError)) for c in chain):
        what = "refused" if any(isinstance(c, ConnectionRefusedError) for c in chain) else "reset"
        return ProbeFailure.CONNECT_REFUSED, f"TCP connection {what}"
    oversized = next((c for c in chain if _head_over_limits(c)), None)
    if oversized is not None:
        return ProbeFailure.TOO_LARGE, _short(f"the answer's head is over the client's limits ({oversized})")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)) or any(
        isinstance(c, (urllib3.exceptions.ProtocolError, urllib3.exceptions.IncompleteRead)) for c in chain
    ):
        return ProbeFailure.TIMEOUT, "the connection closed before a complete answer"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ProbeFailure.CONNECT_REFUSED, _short(f"connection failed ({name})")
    return ProbeFailure.ERROR, _short(f"unexpected {name} during the probe")


def _head_over_limits(exc: BaseException) -> bool:
    """http.client's refusal of an answer head it will not read: more than 100 header lines, or a
    status or header line over 64 KiB (issue 10: these were classed `timeout`)."""
    if isinstance(exc, http.client.LineTooLong):
        return True
    return type(exc) is http.client.HTTPException and str(exc).startswith("got more than")


def _content_type_ok(value: str | None) -> bool:
    if not value:
        return False
    return value.split(";", 1)[0].strip().lower() == CONTENT_TYPE


def _with_nonce(url: str, nonce: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != NONCE_PARAM]
    query.append((NONCE_PARAM, nonce))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def _positive(name: str, value: float, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper:g} seconds, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# The prober
# --------------------------------------------------------------------------------------------


class HttpsProber:
    """ports.Prober over HTTPS with the signed health protocol (docs/protocol.md#probe)."""

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        max_body_bytes: int = 65536,
        ca_bundle: str | Path | None = None,
        max_skew_s: float = 30.0,
        expected_site: str = "primary",
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = new_nonce,
    ) -> None:
        if not isinstance(url, str):
            raise ValueError("probe url must be a string")
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise ValueError(f"probe url must use https:// (got scheme {parts.scheme or 'none'!r})")
        if not parts.hostname:
            raise ValueError("probe url must name a host, like https://laptop.example.ts.net/healthz")
        if parts.username or parts.password:
            raise ValueError("probe url must not carry credentials")
        if not isinstance(keyring, Keyring):
            raise ValueError("keyring must be an hfo_protocol.Keyring")
        self.connect_timeout = _positive("connect_timeout", connect_timeout, 60.0)
        self.read_timeout = _positive("read_timeout", read_timeout, 60.0)
        if (
            isinstance(max_body_bytes, bool)
            or not isinstance(max_body_bytes, int)
            or not 1 <= max_body_bytes <= 16 << 20
        ):
            raise ValueError(f"max_body_bytes must be an integer from 1 to {16 << 20}, got {max_body_bytes!r}")
        self.max_body_bytes = max_body_bytes
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise ValueError(f"ca_bundle {str(ca_bundle)!r} is not a readable file")
        self.ca_bundle = None if ca_bundle is None else str(ca_bundle)
        self.max_skew_s = _positive("max_skew_s", max_skew_s)
        if expected_site not in SITES:
            raise ValueError(f"expected_site must be one of {SITES}, got {expected_site!r}")
        self.expected_site = expected_site
        self.url = url
        self._keyring = keyring
        self._clock = clock
        self._nonce_factory = nonce_factory
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies, netrc or CA bundle from the environment
        # Our adapter enforces the total deadline; mounted for this URL's origin only.
        session.mount(f"https://{parts.netloc}", _DeadlineAdapter())
        self._session = session

    def __repr__(self) -> str:
        return f"HttpsProber(url={self.url!r}, expected_site={self.expected_site!r})"

    @property
    def total_deadline_s(self) -> float:
        return self.connect_timeout + self.read_timeout

    def probe(self) -> ProbeResult:
        at = self._clock()
        started = time.monotonic()
        status: int | None = None
        nonce: str | None = None
        try:
            nonce = self._new_nonce()
            status, detail = self._probe_once(nonce)
            failure: ProbeFailure | None = None
        except _Failed as failed:
            failure, detail, status = failed.failure, failed.detail, failed.http_status
        except Exception as exc:  # never raise: an unforeseen error is a failed probe
            failure, detail = ProbeFailure.ERROR, _short(f"unexpected {type(exc).__name__} in the prober")
        latency_ms = round((time.monotonic() - started) * 1000.0, 3)
        return ProbeResult(
            ok=failure is None,
            at=at,
            failure=failure,
            detail=detail,
            http_status=status,
            latency_ms=latency_ms,
            nonce=nonce,  # set whether the probe passed or not: a renewal names it (docs/protocol.md#renewal)
        )

    def renew(self, renewal: Renewal) -> RenewOutcome:
        """POST a signed renewal for the probe that carried ``renewal.nonce`` to the probe's URL
        (docs/protocol.md#renewal), with the probe's TLS settings, total deadline and size cap.
        Never raises. ``error``: timeout | refused | http_status | error."""
        try:
            return self._renew_once(renewal)
        except _Failed as failed:
            return RenewOutcome(ok=False, error=_RENEW_ERRORS.get(failed.failure, "error"), detail=failed.detail)
        except Exception as exc:  # never raise: an unforeseen error is a failed renewal
            return RenewOutcome(ok=False, error="error", detail=_short(f"unexpected {type(exc).__name__} in renew"))

    def _renew_once(self, renewal: Renewal) -> RenewOutcome:
        try:
            message = LeaseRenewal(
                site=self.expected_site,
                epoch=renewal.epoch,
                nonce=check_nonce(renewal.nonce),
                ttl_s=float(renewal.ttl_s),
                issued_at=self._clock(),
            )
            body = build_renewal(message)
            parse_renewal(body)  # what the site will check: refuse here rather than send it
        except ProtocolError as exc:
            return RenewOutcome(ok=False, error="error", detail=_short(f"not sent: {exc.message}"))
        deadline = _Deadline(self.total_deadline_s)
        token = _CURRENT_DEADLINE.set(deadline)
        deadline.start()
        try:
            try:
                resp = self._session.post(
                    _without_nonce(self.url),
                    data=body,
                    timeout=(self.connect_timeout, self.read_timeout),
                    verify=self.ca_bundle if self.ca_bundle is not None else True,
                    allow_redirects=False,
                    stream=True,
                    headers={
                        "Content-Type": RENEWAL_CONTENT_TYPE,
                        "Accept": RENEWAL_CONTENT_TYPE,
                        "Accept-Encoding": "identity",
                        SIGNATURE_HEADER: sign_renewal(self._keyring, body),
                        "Connection": "close",
                    },
                )
            except Exception as exc:
                failure, detail = _classify_exception(exc, deadline, self.total_deadline_s)
                raise _Failed(failure, detail) from None
            try:
                status = resp.status_code
                answer = self._read_capped(resp, deadline, status)
            finally:
                resp.close()
        finally:
            _CURRENT_DEADLINE.reset(token)
            deadline.close()
        if status == 200:
            return RenewOutcome(ok=True, detail=_short(f"accepted: {_answer_text(answer)}"))
        return RenewOutcome(ok=False, error="http_status", detail=_short(f"HTTP {status}: {_answer_text(answer)}"))

    # The pipeline: each step raises _Failed with the first failing class.
    def _new_nonce(self) -> str:
        try:
            return check_nonce(self._nonce_factory())
        except ProtocolError as exc:
            raise _Failed(ProbeFailure.ERROR, f"nonce factory gave an invalid nonce ({exc.message})") from None

    def _probe_once(self, nonce: str) -> tuple[int, str]:
        deadline = _Deadline(self.total_deadline_s)
        token = _CURRENT_DEADLINE.set(deadline)
        deadline.start()
        try:
            status, headers, body = self._fetch(nonce, deadline)
        finally:
            _CURRENT_DEADLINE.reset(token)
            deadline.close()
        try:
            return status, self._judge(nonce, status, headers, body)
        except _Failed as failed:
            failed.http_status = status
            raise

    def _fetch(
        self, nonce: str, deadline: _Deadline
    ) -> tuple[int, requests.structures.CaseInsensitiveDict[str], bytes]:
        total = self.total_deadline_s
        try:
            resp = self._session.get(
                _with_nonce(self.url, nonce),
                timeout=(self.connect_timeout, self.read_timeout),
                verify=self.ca_bundle if self.ca_bundle is not None else True,
                allow_redirects=False,
                stream=True,
                headers={
                    "Accept": CONTENT_TYPE,
                    "Accept-Encoding": "identity",
                    "Cache-Control": "no-cache",
                    # A fresh connection per probe: every socket is watched by the deadline,
                    # and each probe proves a full TCP+TLS path, not a warm keep-alive.
                    "Connection": "close",
                },
            )
        except Exception as exc:
            failure, detail = _classify_exception(exc, deadline, total)
            raise _Failed(failure, detail) from None
        try:
            status = resp.status_code
            if 300 <= status < 400:
                raise _Failed(ProbeFailure.REDIRECT, f"HTTP {status} redirect (not followed)", status)
            if status not in (200, 503):  # only these can carry a document worth reading
                raise _Failed(ProbeFailure.HTTP_STATUS, f"HTTP {status}", status)
            body = self._read_capped(resp, deadline, status)
            return status, resp.headers, body
        finally:
            resp.close()

    def _read_capped(self, resp: requests.Response, deadline: _Deadline, status: int) -> bytes:
        cap = self.max_body_bytes

        def fail(failure: ProbeFailure, detail: str) -> _Failed:
            return _Failed(failure, detail, status)

        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise fail(ProbeFailure.TOO_LARGE, f"Content-Length {int(declared)} is over the {cap}-byte cap")
        buf = bytearray()
        try:
            while len(buf) <= cap:
                if deadline.expired:
                    raise fail(
                        ProbeFailure.TIMEOUT,
                        f"no complete answer within the total deadline of {self.total_deadline_s:g}s",
                    )
                chunk = resp.raw.read(min(_CHUNK, cap + 1 - len(buf)), decode_content=True)
                if not chunk:
                    break
                buf += chunk
        except _Failed:
            raise
        except Exception as exc:
            failure, detail = _classify_exception(exc, deadline, self.total_deadline_s)
            raise fail(failure, detail) from None
        if deadline.expired:
            # The timer fired while the last read was returning: the answer may be cut short.
            raise fail(
                ProbeFailure.TIMEOUT, f"no complete answer within the total deadline of {self.total_deadline_s:g}s"
            )
        if len(buf) > cap:
            raise fail(ProbeFailure.TOO_LARGE, f"body is over the {cap}-byte cap (read no further)")
        return bytes(buf)

    def _judge(
        self, nonce: str, status: int, headers: requests.structures.CaseInsensitiveDict[str], body: bytes
    ) -> str:
        if status == 200:
            doc = self._document(nonce, headers, body)
            self._check_origin(doc)
            summary = _summary(doc)
            if doc.status != "pass":
                raise _Failed(ProbeFailure.NOT_PASS, summary)
            return summary
        if status == 503:
            # A 503 is not_pass only when it carries a valid, signed, fresh `fail` answer.
            try:
                doc = self._document(nonce, headers, body)
                self._check_origin(doc)
            except _Failed as inner:
                raise _Failed(
                    ProbeFailure.HTTP_STATUS,
                    _short(f"HTTP 503 without a valid signed answer ({inner.failure.value}: {inner.detail})"),
                ) from None
            if doc.status == "fail":
                raise _Failed(ProbeFailure.NOT_PASS, _summary(doc))
            raise _Failed(ProbeFailure.HTTP_STATUS, f"HTTP 503 with a signed answer that says {doc.status}")
        raise _Failed(ProbeFailure.HTTP_STATUS, f"HTTP {status}")

    def _document(
        self, nonce: str, headers: requests.structures.CaseInsensitiveDict[str], body: bytes
    ) -> HealthDocument:
        ctype = headers.get("Content-Type")
        if not _content_type_ok(ctype):
            raise _Failed(
                ProbeFailure.NOT_HEALTH_DOCUMENT,
                _short(f"content type {ctype or 'missing'!r}, expected {CONTENT_TYPE}"),
            )
        try:
            doc = parse_health_body(body)
        except ProtocolError as exc:
            raise _Failed(ProbeFailure.NOT_HEALTH_DOCUMENT, _short(exc.message)) from None
        if doc.status == "pass" and doc.basis == "none":
            raise _Failed(ProbeFailure.NOT_HEALTH_DOCUMENT, "status pass with basis none contradicts the protocol")
        header = headers.get(SIGNATURE_HEADER)
        if header is None or header.strip() == "":
            raise _Failed(ProbeFailure.MISSING_SIGNATURE, f"no {SIGNATURE_HEADER} header")
        try:
            verify_health(self._keyring, header, nonce, body)
        except SignatureError as exc:
            if exc.code == "mismatch" and doc.nonce is not None and doc.nonce != nonce:
                try:
                    verify_health(self._keyring, header, doc.nonce, body)
                except SignatureError:
                    pass
                else:
                    raise _Failed(
                        ProbeFailure.REPLAY, "a valid answer signed for another nonce (cached or replayed)"
                    ) from None
            raise _Failed(
                ProbeFailure.BAD_SIGNATURE, _short(f"signature rejected ({exc.code}): {exc.message}")
            ) from None
        if doc.nonce != nonce:
            raise _Failed(ProbeFailure.REPLAY, "signed for this nonce, but the body's hfo.nonce differs")
        return doc

    def _check_origin(self, doc: HealthDocument) -> None:
        if doc.site != self.expected_site:
            raise _Failed(
                ProbeFailure.WRONG_SITE, _short(f"answer from site {doc.site!r}, expected {self.expected_site!r}")
            )
        skew = doc.time - self._clock()
        if abs(skew) > self.max_skew_s:
            where = "behind" if skew < 0 else "ahead of"
            raise _Failed(
                ProbeFailure.STALE,
                f"hfo.time is {abs(skew):.1f}s {where} the watchdog's clock (allowed {self.max_skew_s:g}s)",
            )


# How a renewal's transport failures are classed (RenewOutcome.error).
_RENEW_ERRORS = {
    ProbeFailure.TIMEOUT: "timeout",
    ProbeFailure.CONNECT_TIMEOUT: "timeout",
    ProbeFailure.CONNECT_REFUSED: "refused",
    ProbeFailure.DNS: "refused",
}


def _without_nonce(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != NONCE_PARAM]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def _answer_text(body: bytes) -> str:
    """The refusal code (or the ack) of the health service's answer, for the log: never a secret."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return f"{len(body)} bytes, not JSON"
    if isinstance(doc, dict):
        if isinstance(doc.get("error"), str):
            return f"{doc['error'][:40]}: {str(doc.get('message', ''))[:160]}"
        if doc.get("accepted") is True:
            return f"until_in_s={doc.get('until_in_s')!r}"
    return "JSON without a verdict"


def _summary(doc: HealthDocument) -> str:
    return f"status {doc.status} (basis={doc.basis}, leaseEpoch={doc.lease_epoch})"
