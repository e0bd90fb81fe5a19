"""HTTP health endpoints for the kubelet, the site agent and Prometheus.

- ``/livez``: 200 while the event loop answers. Never looks at Discord: a Discord outage must not make the
  kubelet restart a healthy pod.
- ``/readyz``: 200 only when the gateway is connected with a finite latency, no stop signal was received and,
  for a lease-aware bot, its site holds a lease in date (docs/kubernetes.md#lease-aware-bot); 503 otherwise,
  with the reason. The body always carries the lease state. The site agent reads this to know the workload runs.
- ``/metrics``: Prometheus text format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from aiohttp import web

from hfo_bot.gateway import GatewayStatus
from hfo_bot.lease import UNAWARE, LeaseStatus
from hfo_bot.metrics import CONTENT_TYPE, BotMetrics

_NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, sort_keys=True).encode(),
        content_type="application/json",
        headers=_NO_STORE,
    )


class HealthServer:
    def __init__(
        self,
        status: Callable[[], GatewayStatus],
        draining: Callable[[], bool],
        metrics: BotMetrics,
        lease: Callable[[], LeaseStatus] = lambda: UNAWARE,
    ) -> None:
        self._status = status
        self._draining = draining
        self._metrics = metrics
        self._lease = lease
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        return app

    async def start(self, host: str, port: int) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _livez(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "alive"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        lease = self._lease()
        lease_body = lease_document(lease)
        if self._draining():
            return _json(503, {"ready": False, "reason": "stopping: a stop signal was received", "lease": lease_body})
        status = self._status()
        ready, reason = status.ready, status.reason
        if lease.aware and not lease.holds:
            ready, reason = False, f"no lease: {lease.reason}"
        body: dict[str, object] = {"ready": ready, "reason": reason, "lease": lease_body}
        if math.isfinite(status.latency_s):
            body["latency_s"] = round(status.latency_s, 4)
        return _json(200 if ready else 503, body)

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        payload = self._metrics.render(self._status(), self._draining(), self._lease())
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE, **_NO_STORE})


def lease_document(lease: LeaseStatus) -> dict[str, object]:
    """The lease part of /readyz (docs/kubernetes.md#lease-aware-bot)."""
    return {
        "aware": lease.aware,
        "holds": lease.holds,
        "epoch": lease.epoch,
        "fresh_for_s": round(lease.fresh_for_s, 3),
        "reason": lease.reason,
        "pauses": lease.pauses,
    }
