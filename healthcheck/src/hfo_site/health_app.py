"""The health service: public /healthz, /livez, /readyz (8080), the agent's loopback status port
(8081) and Prometheus metrics (9100), all on one asyncio loop (aiohttp).

The request path does no I/O: rate limit, parse the nonce, compute the verdict from the cache,
build and sign the body. See docs/protocol.md#probe and docs/site.md#health-service.
POST /healthz takes the watchdog's lease renewals for nonces answered with pass and hands them to
the agent in the answer to its next status report (docs/protocol.md#renewal).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from hfo_protocol import SIGNATURE_HEADER, Keyring, ProtocolError
from hfo_protocol.health import CONTENT_TYPE, HealthDocument, build_health_body, http_status_for, sign_health
from hfo_protocol.nonce import check_nonce
from hfo_protocol.renewal import (
    MAX_RENEWAL_BYTES,
    build_renewal_ack,
    build_renewal_refusal,
    read_renewal,
)

from hfo_site.agent_status import (
    MAX_STATUS_BYTES,
    RemainingGrant,
    build_status_answer,
    parse_status,
)
from hfo_site.checks import CheckRunner
from hfo_site.http_body import read_capped
from hfo_site.lease import lease_clock
from hfo_site.metrics import HealthMetrics
from hfo_site.ratelimit import RateLimiter, client_address
from hfo_site.renewals import AnsweredNonces, Grant, PendingGrants
from hfo_site.secrets import SecretFile
from hfo_site.verdict import Report, Verdict, decide, receive

log = logging.getLogger("hfo_site.health")

MAX_REQUEST_BODY = 1024  # a probe is a GET: any body beyond this is refused unread
# HTTP parser limits for the public port: the longest legitimate request line is the path and a
# 128-character nonce; a probe needs a handful of headers.
PUBLIC_LIMITS = {"max_line_size": 2048, "max_field_size": 4096, "max_headers": 32}
# aiohttp closes a connection that has not sent a complete request head within this time of its
# start (or of the previous answer): idle connections and slow request heads alike.
KEEPALIVE_S = 15.0
BAD_REQUEST_LOG_INTERVAL_S = 60.0
# "Server" replaces aiohttp's default, which would tell the internet the Python and aiohttp versions.
BASE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Server": "hfo"}


@dataclass
class HealthState:
    """Everything a request reads. Mutated only by the background tasks and /agent-status."""

    site: str
    keyring: SecretFile[Keyring]
    token: SecretFile[bytes]
    runner: CheckRunner
    limiter: RateLimiter
    metrics: HealthMetrics
    heartbeat_stale_s: float
    client_ip_header: str | None = None
    trusted_proxies: tuple = ()
    report: Report | None = None  # the agent's last accepted report
    shutting_down: bool = False
    wall: Callable[[], float] = field(default=time.time)
    clock: Callable[[], float] = field(default=lease_clock)  # freshness: monotonic, counts through a suspend
    answered: AnsweredNonces = field(default_factory=AnsweredNonces)  # nonces answered with pass
    grants: PendingGrants = field(default_factory=PendingGrants)  # renewals the agent has to learn

    def verdict(self, details: bool) -> Verdict:
        return decide(
            self.site, self.wall(), self.clock(), self.report, self.runner.results, self.heartbeat_stale_s, details
        )


def _error(status: int, code: str, message: str, extra_headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(BASE_HEADERS)
    if extra_headers:
        headers.update(extra_headers)
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def _limited(state: HealthState, request: web.Request, path: str) -> web.Response | None:
    # Every line of the header, in order: a proxy that appends its own line leaves the client's
    # lines first, and headers.get() would return the client's.
    lines = request.headers.getall(state.client_ip_header, []) if state.client_ip_header else []
    key = client_address(request.remote, lines, state.trusted_proxies)
    wait = state.limiter.acquire(key)
    if wait <= 0.0:
        return None
    state.metrics.rate_limited.inc()
    state.metrics.requests.labels(path, "429").inc()
    return _error(429, "rate_limited", "too many requests", {"Retry-After": str(max(1, math.ceil(wait)))})


def _too_large(request: web.Request) -> bool:
    length = request.content_length
    if length is not None:
        return length > MAX_REQUEST_BODY
    return request.body_exists  # chunked upload on a GET: refuse rather than read it


def make_public_app(state: HealthState) -> web.Application:
    metrics = state.metrics

    async def healthz(request: web.Request) -> web.Response:
        started = time.perf_counter()
        refused = _limited(state, request, "/healthz")
        if refused is not None:
            return refused
        if _too_large(request):
            metrics.requests.labels("/healthz", "413").inc()
            return _error(413, "too_large", f"a probe carries no body (at most {MAX_REQUEST_BODY} bytes)")
        nonces = request.query.getall("nonce", [])
        nonce: str | None = None
        if len(nonces) > 1:
            metrics.requests.labels("/healthz", "400").inc()
            return _error(400, "bad_nonce", "nonce given more than once")
        if nonces:
            try:
                nonce = check_nonce(nonces[0])
            except ProtocolError:
                metrics.requests.labels("/healthz", "400").inc()
                return _error(400, "bad_nonce", "nonce must be 16-128 characters of [A-Za-z0-9_-]")
        details = False
        auth = request.headers.get("Authorization")
        if auth is not None:
            scheme, _, presented = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode("utf-8", "replace"), state.token.value
            ):
                metrics.requests.labels("/healthz", "401").inc()
                return _error(401, "bad_token", "invalid details token", {"WWW-Authenticate": 'Bearer realm="hfo"'})
            details = True

        now = state.wall()
        verdict = state.verdict(details)
        doc = HealthDocument(
            status=verdict.status,
            site=state.site,
            basis=verdict.basis,
            time=now,
            nonce=nonce,
            lease_epoch=verdict.lease_epoch,
            checks=verdict.checks if details else None,
        )
        body = build_health_body(doc)
        headers = dict(BASE_HEADERS)
        if nonce is not None:
            headers[SIGNATURE_HEADER] = sign_health(state.keyring.value, nonce, body)
        if nonce is not None and verdict.status == "pass":
            # t_ans: read before the answer leaves, so never later than the watchdog's receipt of it.
            state.answered.answered(nonce, state.clock())
        code = http_status_for(verdict.status)
        metrics.requests.labels("/healthz", str(code)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return web.Response(status=code, body=body, content_type=CONTENT_TYPE, headers=headers)

    def renewal_refused(code: str, message: str) -> web.Response:
        status, body = build_renewal_refusal(code, message)
        metrics.requests.labels("/healthz", str(status)).inc()
        metrics.renewals.labels(code).inc()
        return web.Response(status=status, body=body, content_type="application/json", headers=BASE_HEADERS)

    async def renew(request: web.Request) -> web.Response:
        """POST /healthz: a signed lease renewal for a nonce this service answered with pass."""
        refused = _limited(state, request, "/healthz")
        if refused is not None:
            metrics.renewals.labels("rate_limited").inc()
            return refused
        if state.shutting_down:
            return renewal_refused("unavailable", "shutting down")
        if request.content_type != "application/json":
            return renewal_refused("unsupported_media_type", "send application/json")
        if request.content_length is None or request.content_length > MAX_RENEWAL_BYTES:
            return renewal_refused("too_large", f"at most {MAX_RENEWAL_BYTES} bytes with a Content-Length")
        body = await read_capped(request.content, MAX_RENEWAL_BYTES)
        try:
            renewal = read_renewal(state.keyring.value, request.headers.get(SIGNATURE_HEADER), body)
        except ProtocolError as exc:
            return renewal_refused(exc.code, exc.message)
        if renewal.site != state.site:
            return renewal_refused("wrong_site", f"this health service is for site {state.site}")
        now = state.clock()
        found, answered_at = state.answered.lookup(renewal.nonce, now)
        if answered_at is None:
            why = "already renewed once" if found == "nonce_used" else "no pass answered here for it (or forgotten)"
            return renewal_refused(found, why)
        ends_at = answered_at + renewal.ttl_s
        if ends_at <= now:
            ago = now - answered_at
            return renewal_refused("expired", f"the probe was answered {ago:.1f}s ago, ttl_s is {renewal.ttl_s:g}")
        seen = None if state.report is None else state.report.status.lease_epoch
        if seen is not None and renewal.epoch < seen:
            return renewal_refused("old_epoch", f"epoch {renewal.epoch} is lower than the agent's {seen}")
        state.answered.use(renewal.nonce)
        state.grants.add(Grant(renewal.site, renewal.epoch, ends_at, renewal.ttl_s))
        metrics.renewals.labels("accepted").inc()
        metrics.requests.labels("/healthz", "200").inc()
        log.info(
            "lease renewal accepted",
            extra={"epoch": renewal.epoch, "ttl_s": renewal.ttl_s, "until_in_s": round(ends_at - now, 3)},
        )
        return web.Response(
            body=build_renewal_ack(renewal.epoch, renewal.nonce, ends_at - now),
            content_type="application/json",
            headers=BASE_HEADERS,
        )

    async def livez(request: web.Request) -> web.Response:
        refused = _limited(state, request, "/livez")
        if refused is not None:
            return refused
        metrics.requests.labels("/livez", "200").inc()
        return web.Response(text="ok\n", headers=BASE_HEADERS)

    async def readyz(request: web.Request) -> web.Response:
        refused = _limited(state, request, "/readyz")
        if refused is not None:
            return refused
        if state.shutting_down or state.runner.results is None:
            metrics.requests.labels("/readyz", "503").inc()
            return web.Response(status=503, text="not ready\n", headers=BASE_HEADERS)
        metrics.requests.labels("/readyz", "200").inc()
        return web.Response(text="ok\n", headers=BASE_HEADERS)

    async def not_found(request: web.Request) -> web.Response:
        refused = _limited(state, request, "other")
        if refused is not None:
            return refused
        if request.path == "/healthz":
            metrics.requests.labels("other", "405").inc()
            return _error(405, "method_not_allowed", "use GET (probe) or POST (renewal)", {"Allow": "GET, HEAD, POST"})
        if request.path in ("/livez", "/readyz"):
            metrics.requests.labels("other", "405").inc()
            return _error(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})
        metrics.requests.labels("other", "404").inc()
        return _error(404, "not_found", "try /healthz")

    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/healthz", renew)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def make_status_app(state: HealthState) -> web.Application:
    """POST /agent-status, reachable on 127.0.0.1 only (the agent shares the Pod's loopback)."""

    async def agent_status(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            state.metrics.agent_reports.labels("refused").inc()
            return _error(415, "unsupported_media_type", "send application/json")
        if request.content_length is None or request.content_length > MAX_STATUS_BYTES:
            state.metrics.agent_reports.labels("refused").inc()
            return _error(413, "too_large", f"at most {MAX_STATUS_BYTES} bytes with a Content-Length")
        body = await read_capped(request.content, MAX_STATUS_BYTES)  # to its end, however it arrives
        try:
            status = parse_status(body)
        except ProtocolError as exc:
            state.metrics.agent_reports.labels("refused").inc()
            return _error(413 if exc.code == "too_large" else 400, exc.code, exc.message)
        if status.site != state.site:
            state.metrics.agent_reports.labels("refused").inc()
            return _error(422, "wrong_site", f"this health service is for site {state.site}")
        try:
            report = receive(status, state.wall(), state.clock())
        except ProtocolError as exc:
            state.metrics.agent_reports.labels("refused").inc()
            log.warning("agent report refused", extra={"error": exc.code, "why": exc.message})
            return _error(422, exc.code, exc.message)
        state.report = report
        state.metrics.agent_reports.labels("accepted").inc()
        # Pending renewal grants, as the time left NOW (on receipt of the report): the agent counts
        # it from when it sent the report, which came first (docs/protocol.md#renewal).
        now = state.clock()
        grants = [
            RemainingGrant(g.site, g.epoch, g.ends_at - now, g.ttl_s)
            for g in state.grants.live(now)
            if g.site == status.site
        ]
        if not grants:
            return web.Response(status=204, headers=BASE_HEADERS)
        return web.Response(body=build_status_answer(grants), content_type="application/json", headers=BASE_HEADERS)

    app = web.Application(client_max_size=MAX_STATUS_BYTES)
    app.router.add_post("/agent-status", agent_status)
    return app


def make_metrics_app(state: HealthState) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    app.router.add_get("/metrics", state.metrics.handler())
    return app


def refresh_gauges(state: HealthState) -> None:
    """Run before each check round: secrets that rotated, gauges that age."""
    state.keyring.reload_if_changed()
    state.token.reload_if_changed()
    verdict = state.verdict(details=False)
    for name in ("pass", "warn", "fail"):
        state.metrics.verdict.labels(name).set(1 if name == verdict.status else 0)
    age = None if state.report is None else state.report.heartbeat_age(state.clock())
    if age is not None:
        state.metrics.agent_report_age.set(age)
    state.metrics.clients.set(len(state.limiter))


class BadRequestLog(logging.Filter):
    """aiohttp logs every request its parser refuses (400, 413, 431) at ERROR with a traceback, before
    any handler runs, so before the rate limit: a flood of malformed requests was a flood of log
    lines. Count each one (hfo_health_bad_requests_total) and let one WARNING line through per
    ``interval_s``, with the number refused since the last one. Other records pass unchanged."""

    def __init__(self, metrics: HealthMetrics, interval_s: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._metrics = metrics
        self._interval = interval_s
        self._clock = clock
        self._last: float | None = None
        self._since = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        self._metrics.bad_requests.inc()
        self._since += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = "malformed HTTP request refused by the parser", ()
        record.exc_info, record.exc_text = None, None
        record.error = type(exc).__name__
        record.status = exc.code
        record.refused_since_last_line = self._since
        self._last, self._since = now, 0
        return True


def _public_logger(state: HealthState) -> logging.Logger:
    logger = logging.getLogger("hfo_site.health.http")
    logger.filters[:] = [BadRequestLog(state.metrics, BAD_REQUEST_LOG_INTERVAL_S)]
    return logger


async def serve(
    state: HealthState,
    bind: str,
    port: int,
    status_port: int,
    metrics_port: int,
    stop: asyncio.Event,
    shutdown_grace_s: float,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the three listeners and the check loop until ``stop`` is set, then drain gracefully."""
    runners: list[web.AppRunner] = []
    specs = [
        (make_public_app(state), bind, port, {**PUBLIC_LIMITS, "logger": _public_logger(state)}),
        (make_status_app(state), "127.0.0.1", status_port, {}),
        (make_metrics_app(state), bind, metrics_port, {}),
    ]
    checks_task: asyncio.Task[None] | None = None
    check_stop = asyncio.Event()
    try:
        for app, host, p, limits in specs:
            runner = web.AppRunner(
                app,
                access_log=None,
                keepalive_timeout=KEEPALIVE_S,
                shutdown_timeout=shutdown_grace_s,
                **limits,
            )
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, p, shutdown_timeout=shutdown_grace_s).start()
        state.runner.before_round = lambda: refresh_gauges(state)
        checks_task = asyncio.create_task(state.runner.run(check_stop))
        log.info(
            "health service listening",
            extra={"site": state.site, "port": port, "status_port": status_port, "metrics_port": metrics_port},
        )
        if on_ready is not None:
            on_ready()
        await stop.wait()
        log.info("SIGTERM: draining")
        state.shutting_down = True
    finally:
        check_stop.set()
        for runner in reversed(runners):
            await runner.cleanup()
        if checks_task is not None:
            await asyncio.wait({checks_task}, timeout=shutdown_grace_s + 1)
            checks_task.cancel()
