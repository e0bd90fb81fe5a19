"""The health service: public /healthz, /livez, /readyz (8080), the agent's loopback status port
(8081) and Prometheus metrics (9100), all on one asyncio loop (aiohttp).

The request path does no I/O: rate limit, parse the nonce, compute the verdict from the cache,
build and sign the body. See docs/protocol.md#probe and docs/site.md#health-service.
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
from hfo_protocol import SIGNATURE_HEADER, Keyring, ProtocolError
from hfo_protocol.health import CONTENT_TYPE, HealthDocument, build_health_body, http_status_for, sign_health
from hfo_protocol.nonce import check_nonce

from hfo_site.agent_status import MAX_STATUS_BYTES, AgentStatus, parse_status
from hfo_site.checks import CheckRunner
from hfo_site.metrics import HealthMetrics
from hfo_site.ratelimit import RateLimiter, client_address
from hfo_site.secrets import SecretFile
from hfo_site.verdict import decide

log = logging.getLogger("hfo_site.health")

MAX_REQUEST_BODY = 1024  # a probe is a GET: any body beyond this is refused unread
# HTTP parser limits for the public port: the longest legitimate request line is the path and a
# 128-character nonce; a probe needs a handful of headers.
PUBLIC_LIMITS = {"max_line_size": 2048, "max_field_size": 4096, "max_headers": 32}
KEEPALIVE_S = 15.0
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
    agent: AgentStatus | None = None
    shutting_down: bool = False
    wall: Callable[[], float] = field(default=time.time)


def _error(status: int, code: str, message: str, extra_headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(BASE_HEADERS)
    if extra_headers:
        headers.update(extra_headers)
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def _limited(state: HealthState, request: web.Request, path: str) -> web.Response | None:
    header = request.headers.get(state.client_ip_header) if state.client_ip_header else None
    key = client_address(request.remote, header, state.trusted_proxies)
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
        verdict = decide(state.site, now, state.agent, state.runner.results, state.heartbeat_stale_s, details)
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
        code = http_status_for(verdict.status)
        metrics.requests.labels("/healthz", str(code)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return web.Response(status=code, body=body, content_type=CONTENT_TYPE, headers=headers)

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
        if request.path in ("/healthz", "/livez", "/readyz"):
            metrics.requests.labels("other", "405").inc()
            return _error(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})
        metrics.requests.labels("other", "404").inc()
        return _error(404, "not_found", "try /healthz")

    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    app.router.add_get("/healthz", healthz)
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
        body = await request.read()
        try:
            status = parse_status(body)
        except ProtocolError as exc:
            state.metrics.agent_reports.labels("refused").inc()
            return _error(400, exc.code, exc.message)
        if status.site != state.site:
            state.metrics.agent_reports.labels("refused").inc()
            return _error(422, "wrong_site", f"this health service is for site {state.site}")
        state.agent = status
        state.metrics.agent_reports.labels("accepted").inc()
        return web.Response(status=204, headers=BASE_HEADERS)

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
    now = state.wall()
    verdict = decide(state.site, now, state.agent, state.runner.results, state.heartbeat_stale_s, details=False)
    for name in ("pass", "warn", "fail"):
        state.metrics.verdict.labels(name).set(1 if name == verdict.status else 0)
    if state.agent is not None and state.agent.last_heartbeat_ok is not None:
        state.metrics.agent_report_age.set(max(0.0, now - state.agent.last_heartbeat_ok))
    state.metrics.clients.set(len(state.limiter))


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
        (make_public_app(state), bind, port, PUBLIC_LIMITS),
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
