"""Gateway adapters: the offline stand-in, and the readiness rule applied to the real discord.py client."""

from __future__ import annotations

import asyncio
import math

import discord
import pytest
from discord.ext import commands
from hfo_bot.gateway import DiscordGateway, OfflineGateway


def test_offline_gateway_is_never_ready_and_returns_once_closed() -> None:
    async def scenario() -> None:
        gateway = OfflineGateway()
        task = asyncio.create_task(gateway.run())
        await asyncio.sleep(0.05)
        assert not task.done()
        status = gateway.status()
        assert not status.ready and math.isnan(status.latency_s)
        assert "offline" in status.reason
        await gateway.close()
        await asyncio.wait_for(task, 1)
        await gateway.close()  # twice is fine

    asyncio.run(scenario())


def test_real_discord_client_that_never_connected_is_not_ready() -> None:
    async def scenario() -> None:
        client = commands.AutoShardedBot(
            command_prefix="!", intents=discord.Intents.default(), shard_count=2, shard_ids=[0, 1]
        )
        gateway = DiscordGateway(client, "unused", (0, 1))
        status = gateway.status()
        assert not status.ready
        assert "not connected" in status.reason
        await gateway.close()
        assert gateway.status().reason == "gateway closed"

    asyncio.run(scenario())


class FakeShard:
    def __init__(self, latency: float, closed: bool = False) -> None:
        self.latency = latency
        self._closed = closed

    def is_closed(self) -> bool:
        return self._closed


class FakeClient:
    """Mirrors the discord.py AutoShardedClient surface DiscordGateway reads (is_ready, get_shard...)."""

    def __init__(self, ready: bool, shards: dict[int, FakeShard]) -> None:
        self.shard_ids = list(shards)
        self._ready = ready
        self._shards = shards
        self._closed = False

    def is_ready(self) -> bool:
        return self._ready

    def is_closed(self) -> bool:
        return self._closed

    def get_shard(self, shard_id: int) -> FakeShard | None:
        return self._shards.get(shard_id)

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        raise AssertionError("never connects in tests")

    async def close(self) -> None:
        self._closed = True


def test_ready_when_every_shard_of_the_pod_has_a_finite_latency() -> None:
    status = DiscordGateway(FakeClient(True, {0: FakeShard(0.05), 1: FakeShard(0.12)}), "t", (0, 1)).status()
    assert status.ready
    assert status.latency_s == pytest.approx(0.12)


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (FakeClient(False, {0: FakeShard(0.05)}), "waiting for READY"),
        (FakeClient(True, {0: FakeShard(0.05)}), "shard 1 is not connected"),
        (FakeClient(True, {0: FakeShard(0.05), 1: FakeShard(0.05, closed=True)}), "shard 1 is not connected"),
        (FakeClient(True, {0: FakeShard(0.05), 1: FakeShard(math.inf)}), "shard 1 has no heartbeat latency"),
        (FakeClient(True, {0: FakeShard(math.nan), 1: FakeShard(0.05)}), "shard 0 has no heartbeat latency"),
    ],
)
def test_not_ready_names_what_is_missing(client: FakeClient, reason: str) -> None:
    status = DiscordGateway(client, "t", (0, 1)).status()
    assert not status.ready
    assert reason in status.reason


def test_close_disconnects_a_started_client_once() -> None:
    class StartedClient(FakeClient):
        closes = 0

        async def start(self, token: str, *, reconnect: bool = True) -> None:
            await asyncio.sleep(3600)

        async def close(self) -> None:
            self.closes += 1
            await super().close()

    async def scenario() -> StartedClient:
        client = StartedClient(True, {0: FakeShard(0.01)})
        gateway = DiscordGateway(client, "t", (0,))
        task = asyncio.create_task(gateway.run())
        await asyncio.sleep(0.01)
        await gateway.close()
        await gateway.close()
        task.cancel()
        assert not gateway.status().ready
        return client

    assert asyncio.run(scenario()).closes == 1
