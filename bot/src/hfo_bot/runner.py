"""The bot's life cycle: health server up, gateway running, and a clean, bounded stop on SIGTERM/SIGINT.

discord.py installs no signal handler of its own, and the kubelet sends SIGTERM before it kills a pod. On the
first signal the bot turns ``/readyz`` to 503 at once (the site agent sees it stop), closes the gateway within
``stop_timeout_s`` and exits 0. Exit codes: 0 clean stop, 1 the close timed out, 3 the gateway failed by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from hfo_bot.config import BotConfig
from hfo_bot.gateway import Gateway
from hfo_bot.health import HealthServer
from hfo_bot.lease_gate import LeaseGate
from hfo_bot.metrics import BotMetrics
from hfo_bot.state import StateStore

log = logging.getLogger("hfo_bot")

EXIT_OK = 0
EXIT_STOP_TIMEOUT = 1
EXIT_GATEWAY_FAILED = 3
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def record_start(store: StateStore, config: BotConfig) -> None:
    state = store.load()
    state.starts += 1
    state.last_start = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    state.last_site = config.site
    try:
        store.save(state)
    except OSError as exc:  # the bot still runs without its state volume; say so loudly
        log.warning("cannot write state to %s: %s", store.path, exc)
        return
    log.info("start #%d recorded in %s", state.starts, store.path)


class Runner:
    def __init__(
        self,
        config: BotConfig,
        gateway: Gateway,
        metrics: BotMetrics,
        store: StateStore,
        gate: LeaseGate | None = None,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.metrics = metrics
        self.store = store
        self.gate = gate if gate is not None else LeaseGate(None, config.site)
        self.stopping = asyncio.Event()
        self.health = HealthServer(gateway.status, self.stopping.is_set, metrics, self.gate.status)

    def request_stop(self, reason: str) -> None:
        if self.stopping.is_set():
            log.info("%s: already stopping", reason)
            return
        log.info("%s: stopping (readiness now fails, closing the gateway)", reason)
        self.stopping.set()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.request_stop, f"received {sig.name}")
        try:
            return await self._serve()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    async def _serve(self) -> int:
        record_start(self.store, self.config)
        port = await self.health.start(self.config.health_host, self.config.health_port)
        log.info(
            "site=%s pod=%s %s; health on %s:%d",
            self.config.site,
            self.config.pod_name,
            self.config.shards.describe(),
            self.config.health_host,
            port,
        )
        lease_task = asyncio.create_task(self.gate.run(), name="lease")
        gateway_task = asyncio.create_task(self.gateway.run(), name="gateway")
        stop_task = asyncio.create_task(self.stopping.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait({gateway_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            code = EXIT_OK
            if gateway_task in done and not self.stopping.is_set():
                code = EXIT_GATEWAY_FAILED
                exc = gateway_task.exception()
                if exc is not None:
                    log.error("gateway failed: %s: %s", type(exc).__name__, exc)
                else:
                    log.error("gateway stopped on its own")
                self.stopping.set()
            if not await self._close_gateway(gateway_task):
                code = code or EXIT_STOP_TIMEOUT
            return code
        finally:
            stop_task.cancel()
            lease_task.cancel()
            if not gateway_task.done():
                gateway_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await gateway_task
            await self.health.stop()
            log.info("stopped")

    async def _close_gateway(self, gateway_task: asyncio.Task[None]) -> bool:
        """Close the gateway and wait for its task, within the stop timeout. True when it finished in time."""

        async def close_and_wait() -> None:
            await self.gateway.close()
            with contextlib.suppress(Exception):
                await asyncio.shield(gateway_task)

        try:
            await asyncio.wait_for(close_and_wait(), timeout=self.config.stop_timeout_s)
        except TimeoutError:
            log.error("gateway did not close within %.1fs; exiting anyway", self.config.stop_timeout_s)
            return False
        log.info("gateway closed")
        return True
