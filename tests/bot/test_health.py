"""Health endpoints served by a real aiohttp server on loopback; only the gateway status is supplied by the
test (Discord cannot be reached from here)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from hfo_bot.gateway import GatewayStatus
from hfo_bot.health import HealthServer
from hfo_bot.metrics import BotMetrics

pytestmark = pytest.mark.network

READY = GatewayStatus(True, 0.042, "2 shard(s) connected")
NOT_READY = GatewayStatus(False, math.nan, "gateway not connected yet (waiting for READY)")
UNAWARE_DOC = {
    "aware": False,
    "holds": False,
    "epoch": None,
    "fresh_for_s": 0.0,
    "reason": "not lease-aware (HFO_BOT_LEASE_URL is not set)",
    "pauses": 0,
}


class Flags:
    def __init__(self, status: GatewayStatus, draining: bool = False) -> None:
        self.status = status
        self.draining = draining


Check = Callable[[aiohttp.ClientSession, str, Flags], Awaitable[None]]


def serve(flags: Flags, check: Check) -> None:
    async def scenario() -> None:
        server = HealthServer(lambda: flags.status, lambda: flags.draining, BotMetrics("primary", "bot-0", 2, 2))
        port = await server.start("127.0.0.1", 0)
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await check(session, f"http://127.0.0.1:{port}", flags)
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_ready_gateway_gives_200_with_latency() -> None:
    async def check(session: aiohttp.ClientSession, base: str, _flags: Flags) -> None:
        async with session.get(base + "/readyz") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-store"
            body = await resp.json()
            assert body.pop("lease") == UNAWARE_DOC
            assert body == {"ready": True, "reason": "2 shard(s) connected", "latency_s": 0.042}

    serve(Flags(READY), check)


def test_unready_gateway_gives_503_with_the_reason() -> None:
    async def check(session: aiohttp.ClientSession, base: str, _flags: Flags) -> None:
        async with session.get(base + "/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body.pop("lease") == UNAWARE_DOC
            assert body == {"ready": False, "reason": "gateway not connected yet (waiting for READY)"}

    serve(Flags(NOT_READY), check)


def test_liveness_never_depends_on_discord() -> None:
    async def check(session: aiohttp.ClientSession, base: str, flags: Flags) -> None:
        for status in (NOT_READY, READY, GatewayStatus(False, math.nan, "gateway closed")):
            flags.status = status
            async with session.get(base + "/livez") as resp:
                assert resp.status == 200

    serve(Flags(NOT_READY), check)


def test_draining_turns_readiness_off_even_while_connected() -> None:
    async def check(session: aiohttp.ClientSession, base: str, flags: Flags) -> None:
        async with session.get(base + "/readyz") as resp:
            assert resp.status == 200
        flags.draining = True
        async with session.get(base + "/readyz") as resp:
            assert resp.status == 503
            assert "stopping" in (await resp.json())["reason"]
        async with session.get(base + "/livez") as resp:
            assert resp.status == 200

    serve(Flags(READY), check)


def test_metrics_follow_the_gateway() -> None:
    async def check(session: aiohttp.ClientSession, base: str, flags: Flags) -> None:
        async with session.get(base + "/metrics") as resp:
            text = await resp.text()
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
        assert 'hfo_bot_info{pod="bot-0",site="primary"} 1.0' in text
        assert "hfo_bot_gateway_ready 1.0" in text
        assert "hfo_bot_gateway_latency_seconds 0.042" in text
        assert "hfo_bot_shards_assigned 2.0" in text
        flags.status, flags.draining = NOT_READY, True
        async with session.get(base + "/metrics") as resp:
            text = await resp.text()
        assert "hfo_bot_gateway_ready 0.0" in text
        assert "hfo_bot_gateway_latency_seconds NaN" in text
        assert "hfo_bot_draining 1.0" in text

    serve(Flags(READY), check)


def test_unknown_paths_are_404() -> None:
    async def check(session: aiohttp.ClientSession, base: str, _flags: Flags) -> None:
        async with session.get(base + "/healthz") as resp:
            assert resp.status == 404

    serve(Flags(READY), check)
