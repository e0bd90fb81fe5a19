"""The connection to Discord, behind a small interface so the health server and the runner do not care
whether they drive the real gateway or the offline stand-in (used with ``--offline``, no token, no network)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GatewayStatus:
    ready: bool
    latency_s: float  # NaN while unknown
    reason: str


class Gateway(Protocol):
    async def run(self) -> None:
        """Connect and serve until ``close`` is called (returns) or the connection fails (raises)."""

    async def close(self) -> None:
        """Disconnect cleanly; safe to call more than once."""

    def status(self) -> GatewayStatus: ...


class OfflineGateway:
    """Runs no gateway at all: never ready, waits for ``close``. Lets the bot start without a token."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    async def run(self) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        self._closed.set()

    def status(self) -> GatewayStatus:
        return GatewayStatus(False, math.nan, "offline mode: the Discord gateway is disabled")


class Shard(Protocol):
    """The part of ``discord.ShardInfo`` the gateway adapter reads."""

    @property
    def latency(self) -> float: ...
    def is_closed(self) -> bool: ...


class DiscordClient(Protocol):
    """The part of ``discord.AutoShardedClient`` the gateway adapter uses."""

    shard_ids: list[int] | None

    def is_ready(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def get_shard(self, shard_id: int, /) -> Shard | None: ...
    async def start(self, token: str, *, reconnect: bool = True) -> None: ...
    async def close(self) -> None: ...


class DiscordGateway:
    """The real gateway: ready only when every shard of this pod is connected with a finite latency."""

    def __init__(self, client: DiscordClient, token: str, shard_ids: tuple[int, ...]) -> None:
        self._client = client
        self._token = token
        self._shard_ids = shard_ids
        self._started = False
        self._closed = False

    async def run(self) -> None:
        if self._closed:
            return
        self._started = True
        await self._client.start(self._token)

    async def close(self) -> None:
        """Close once. A client that never started holds no connection (and discord.py cannot close it)."""
        if self._closed:
            return
        self._closed = True
        if self._started and not self._client.is_closed():
            await self._client.close()

    def status(self) -> GatewayStatus:
        if self._closed or self._client.is_closed():
            return GatewayStatus(False, math.nan, "gateway closed")
        if not self._client.is_ready():
            return GatewayStatus(False, math.nan, "gateway not connected yet (waiting for READY)")
        latencies: list[float] = []
        for shard_id in self._shard_ids:
            shard = self._client.get_shard(shard_id)
            if shard is None or shard.is_closed():
                return GatewayStatus(False, math.nan, f"shard {shard_id} is not connected")
            latency = float(shard.latency)
            if not math.isfinite(latency):
                return GatewayStatus(False, math.nan, f"shard {shard_id} has no heartbeat latency yet")
            latencies.append(latency)
        worst = max(latencies)
        return GatewayStatus(True, worst, f"{len(latencies)} shard(s) connected")
