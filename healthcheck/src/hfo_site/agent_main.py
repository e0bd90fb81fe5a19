"""``hfo-site agent``: wire settings, secrets, the backend and the loops, run until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
from aiohttp import web

from hfo_site.agent import Agent, StatusReporter
from hfo_site.backends.base import WorkloadBackend
from hfo_site.backends.exec import ExecBackend
from hfo_site.config import AgentSettings
from hfo_site.heartbeat_client import HeartbeatClient, make_ssl_context
from hfo_site.metrics import AgentMetrics
from hfo_site.secrets import SecretFile, parse_keyring

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


def make_lease_app(agent: Agent) -> web.Application:
    """GET /v1/lease for lease-aware workloads (docs/protocol.md#lease-endpoint). No I/O: the
    tracker's view on the lease clock at the time of the request."""

    async def lease(_request: web.Request) -> web.Response:
        return web.json_response(agent.lease_document(), headers={"Cache-Control": "no-store"})

    app = web.Application(client_max_size=1024)
    app.router.add_get(LEASE_PATH, lease)
    return app


async def start_lease_endpoint(agent: Agent, bind: str, port: int) -> tuple[web.AppRunner, str]:
    """Listen; return the runner and the URL a workload on this host uses (the bound port)."""
    runner = web.AppRunner(make_lease_app(agent), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, bind, port).start()
    bound = int(runner.addresses[0][1])  # the port the kernel gave, when asked for port 0
    host = "127.0.0.1" if bind in ("0.0.0.0", "127.0.0.1", "") else bind  # noqa: S104
    return runner, f"http://{host}:{bound}{LEASE_PATH}"


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
        )
        runner = web.AppRunner(make_probe_app(agent, metrics, settings), access_log=None)
        await runner.setup()
        lease_runner: web.AppRunner | None = None
        try:
            await web.TCPSite(runner, settings.bind, settings.metrics_port).start()
            lease_runner, lease_url = await start_lease_endpoint(agent, settings.lease_bind, settings.lease_port)
            if isinstance(backend, ExecBackend):
                backend.add_env({"HFO_BOT_LEASE_URL": lease_url})
            log.info(
                "agent running",
                extra={
                    "site": settings.site,
                    "backend": backend.name,
                    "metrics_port": settings.metrics_port,
                    "lease_url": lease_url,
                },
            )
            await agent.run(stop, settings.fence_on_exit, exit_timeout_s=settings.stop_grace_s + 10)
        finally:
            if lease_runner is not None:
                await lease_runner.cleanup()
            await runner.cleanup()
    log.info("agent stopped")
