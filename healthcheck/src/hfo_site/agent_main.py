"""``hfo-site agent``: wire settings, secrets, the backend and the loops, run until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from hfo_site.agent import Agent, StatusReporter
from hfo_site.backends.base import WorkloadBackend
from hfo_site.backends.exec import SYNC_EXIT_MARGIN_S, SYNC_MIN_FINAL_S, ExecBackend, StateWiring
from hfo_site.config import AgentSettings
from hfo_site.heartbeat_client import HeartbeatClient, make_ssl_context
from hfo_site.metrics import AgentMetrics
from hfo_site.secrets import SecretFile, parse_keyring, parse_token
from hfo_site.state_api import (
    CREDENTIALS_PATH,
    MAX_REPORT_BYTES,
    REPORT_PATH,
    ReportError,
    StateAccess,
    StateReport,
    error_body,
    parse_report,
)

log = logging.getLogger("hfo_site.agent")


def make_backend(settings: AgentSettings) -> WorkloadBackend:
    backend = settings.backend
    if backend.kind == "exec":
        return ExecBackend(
            backend.exec_workloads, settings.stop_grace_s, settings.restart_backoff_s, settings.restart_backoff_max_s
        )
    from hfo_site.backends.kubernetes import KubernetesBackend
    from hfo_site.k8s import WorkloadApi, make_api_client

    assert backend.namespace is not None
    api = WorkloadApi(make_api_client(request_timeout_s=min(5.0, settings.heartbeat_timeout_s * 2)), backend.namespace)
    return KubernetesBackend(
        api, backend.workloads, settings.stop_grace_s, poll_s=min(0.5, settings.heartbeat_interval_s)
    )


def make_sharded(
    settings: AgentSettings, backend: WorkloadBackend, session: aiohttp.ClientSession, metrics: AgentMetrics
) -> WorkloadBackend:
    """With HFO_SHARDS_ENABLED: the kubernetes backend wrapped for shard-aware scaling."""
    from hfo_site.backends.kubernetes import KubernetesBackend
    from hfo_site.backends.sharded import ShardedBackend
    from hfo_site.k8s import ConfigMapApi, make_api_client
    from hfo_site.secrets import parse_bot_token
    from hfo_site.shards import GatewayClient, Recommender

    shards = settings.shards
    assert shards is not None and isinstance(backend, KubernetesBackend) and settings.backend.namespace is not None
    token = SecretFile(shards.token_file, parse_bot_token, "HFO_DISCORD_TOKEN_FILE")

    def current_token() -> str:
        token.reload_if_changed()  # follows a rotated Secret, as the keyring does
        return token.value

    client = GatewayClient(shards.api_url, current_token, session, shards.timeout_s)
    configmap = ConfigMapApi(make_api_client(request_timeout_s=5.0), settings.backend.namespace, shards.configmap)
    return ShardedBackend(backend, configmap, shards, Recommender(client, shards.refresh_s), metrics=metrics)


def make_probe_app(agent: Agent, metrics: AgentMetrics, settings: AgentSettings) -> web.Application:
    """/metrics, /livez (the loops are turning) and /readyz (the first heartbeat round is done)."""
    stuck_after = (
        3 * settings.heartbeat_interval_s + (settings.heartbeat_retries + 1) * settings.heartbeat_timeout_s + 30
    )

    async def livez(_request: web.Request) -> web.Response:
        age = agent.clock() - agent.last_cycle_mono
        if age > stuck_after:
            return web.Response(status=503, text=f"heartbeat loop stuck for {age:.0f}s\n")
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        if not agent.first_round.is_set():
            return web.Response(status=503, text="first heartbeat round not finished\n")
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", metrics.handler())
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


LEASE_PATH = "/v1/lease"
_NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.Response(
        status=status, body=error_body(code, detail), content_type="application/json", headers=_NO_STORE
    )


def make_lease_app(agent: Agent, metrics: AgentMetrics | None = None) -> web.Application:
    """GET /v1/lease for lease-aware workloads (docs/protocol.md#lease-endpoint). No I/O: the
    tracker's view on the lease clock at the time of the request. With the state handoff, the
    state containers' GET /v1/state/credentials and POST /v1/state/report (docs/protocol.md#state-api)."""

    async def lease(_request: web.Request) -> web.Response:
        return web.json_response(agent.lease_document(), headers=_NO_STORE)

    def refused(request: web.Request) -> web.Response | None:
        state = agent.state
        if state is None or not state.enabled:
            return _error(409, "state_disabled", "HFO_STATE_ENABLED is false on this agent")
        if not state.authorized(request.headers.get("Authorization")):
            return _error(401, "unauthorized", "a valid Authorization: Bearer <HFO_STATE_TOKEN_FILE token> is required")
        return None

    async def credentials(request: web.Request) -> web.Response:
        answer = refused(request)
        if answer is None:
            status, doc = agent.state_credentials()
            if status == 200:
                answer = web.json_response(doc, headers=_NO_STORE)
            else:
                answer = _error(status, str(doc["error"]), str(doc["detail"]))
        if metrics is not None:
            metrics.state_credentials.labels("ok" if answer.status == 200 else str(answer.status)).inc()
        return answer

    async def report(request: web.Request) -> web.Response:
        answer = refused(request)
        if answer is not None:
            return answer
        assert agent.state is not None
        if request.content_type != "application/json":
            return _error(415, "unsupported_media_type", "the report must be application/json")
        try:
            parsed = _parse_report(await request.read())
            agent.state.record(parsed)
        except ReportError as exc:
            return _error(400, "bad_report", str(exc))
        return web.Response(status=204, headers=_NO_STORE)

    app = web.Application(client_max_size=MAX_REPORT_BYTES)
    app.router.add_get(LEASE_PATH, lease)
    app.router.add_get(CREDENTIALS_PATH, credentials)
    app.router.add_post(REPORT_PATH, report)
    return app


def _parse_report(body: bytes) -> StateReport:
    return parse_report(body)


async def start_lease_endpoint(
    agent: Agent, bind: str, port: int, metrics: AgentMetrics | None = None
) -> tuple[web.AppRunner, str]:
    """Listen; return the runner and the URL a workload on this host uses (the bound port)."""
    runner = web.AppRunner(make_lease_app(agent, metrics), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, bind, port).start()
    bound = int(runner.addresses[0][1])  # the port the kernel gave, when asked for port 0
    host = "127.0.0.1" if bind in ("0.0.0.0", "127.0.0.1", "") else bind  # noqa: S104
    return runner, f"http://{host}:{bound}{LEASE_PATH}"


def make_state_access(settings: AgentSettings, metrics: AgentMetrics) -> StateAccess | None:
    """The state handoff's side of the agent, when HFO_STATE_ENABLED (its token file then exists)."""
    if settings.state_token_file is None:
        return None
    token = SecretFile(settings.state_token_file, parse_token, "HFO_STATE_TOKEN_FILE")
    return StateAccess(token, on_event=lambda workload, event: metrics.state_events.labels(workload, event).inc())


@contextlib.asynccontextmanager
async def _shard_loop(backend: WorkloadBackend, agent: Agent, stop: asyncio.Event) -> AsyncIterator[None]:
    """The shard refresh loop beside the agent's own, for the sharded backend only."""
    from hfo_site.backends.sharded import ShardedBackend

    if not isinstance(backend, ShardedBackend):
        yield
        return
    task = asyncio.create_task(backend.run(stop, lambda: agent.tracker.holds(agent.clock())), name="shards")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def exit_timeout_s(settings: AgentSettings, backend: WorkloadBackend) -> float:
    """How long the exit's stop may take: the command's grace, plus the state sync's final upload
    (the stop grace again, and its margin to report and exit) when a workload keeps state."""
    bound = settings.stop_grace_s + 10
    if isinstance(backend, ExecBackend) and backend.has_state:
        bound += min(max(settings.stop_grace_s, SYNC_MIN_FINAL_S), 300.0) + SYNC_EXIT_MARGIN_S
    return bound


async def run_agent(settings: AgentSettings) -> None:
    keyring = SecretFile(settings.secret_file, parse_keyring, "HFO_HMAC_SECRET_FILE")
    metrics = AgentMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    backend = make_backend(settings)
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        if settings.shards is not None:
            backend = make_sharded(settings, backend, session, metrics)

        def current_keyring():  # type: ignore[no-untyped-def]
            keyring.reload_if_changed()  # a stat() per heartbeat: follows secret rotation
            return keyring.value

        client = HeartbeatClient(
            settings.heartbeat_url,
            session,
            current_keyring,
            settings.heartbeat_timeout_s,
            make_ssl_context(settings.ca_bundle),
        )
        agent = Agent(
            site=settings.site,
            backend=backend,
            client=client,
            reporter=StatusReporter(settings.status_url, session, metrics),
            metrics=metrics,
            interval_s=settings.heartbeat_interval_s,
            retries=settings.heartbeat_retries,
            state=make_state_access(settings, metrics),
        )
        runner = web.AppRunner(make_probe_app(agent, metrics, settings), access_log=None)
        await runner.setup()
        lease_runner: web.AppRunner | None = None
        try:
            await web.TCPSite(runner, settings.bind, settings.metrics_port).start()
            lease_runner, lease_url = await start_lease_endpoint(
                agent, settings.lease_bind, settings.lease_port, metrics
            )
            if isinstance(backend, ExecBackend):
                backend.add_env({"HFO_BOT_LEASE_URL": lease_url})
                if settings.state_token_file is not None:
                    credentials_url = lease_url.removesuffix(LEASE_PATH) + CREDENTIALS_PATH
                    wiring = StateWiring(
                        credentials_url, settings.state_token_file, settings.backend.state_sync_interval_s
                    )
                    backend.configure_state(wiring)
            log.info(
                "agent running",
                extra={
                    "site": settings.site,
                    "backend": backend.name,
                    "metrics_port": settings.metrics_port,
                    "lease_url": lease_url,
                },
            )
            async with _shard_loop(backend, agent, stop):
                await agent.run(stop, settings.fence_on_exit, exit_timeout_s=exit_timeout_s(settings, backend))
        finally:
            if lease_runner is not None:
                await lease_runner.cleanup()
            await runner.cleanup()
    log.info("agent stopped")
