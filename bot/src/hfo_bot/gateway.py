"""The connection to Discord, behind a small interface so the health server and the runner do not care
whether they drive the real gateway or the offline stand-in (used with ``--offline``, no token, no network)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hfo_bot.lease_gate import LeaseGate

log = logging.getLogger("hfo_bot")
CLOSE_WAIT_S = 3.0  # how long a lease-lost close waits for discord.py before cancelling its task


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
    def clear(self) -> None: ...


class DiscordGateway:
    """The real gateway: ready only when every shard of this pod is connected with a finite latency.

    With a lease-aware gate (docs/kubernetes.md#lease-aware-bot) it connects only once the site holds a fresh
    lease, and when the lease is lost (refused, or stale without renewal) it closes the client and waits for the
    lease again; the next session starts with a new login and IDENTIFY, on a client from ``renew`` (discord.py
    does not reopen a closed client's HTTP connector) or the same client cleared. Without a lease URL it behaves
    as before."""

    def __init__(
        self,
        client: DiscordClient,
        token: str,
        shard_ids: tuple[int, ...],
        gate: LeaseGate | None = None,
        renew: Callable[[], DiscordClient] | None = None,
    ) -> None:
        self._client = client
        self._renew = renew
        self._token = token
        self._shard_ids = shard_ids
        self._gate = gate
        self._started = False
        self._closed = False
        self._closing = asyncio.Event()
        self.sessions = 0  # client starts (1 without a lease; one more after every lease loss)

    async def run(self) -> None:
        if self._closed:
            return
        gate = self._gate
        if gate is None or not gate.aware:
            self._started = True
            self.sessions += 1
            await self._client.start(self._token)
            return
        while not self._closed:
            if not await gate.wait_connectable("before logging in to Discord", self._closing):
                return
            gate.lost.clear()  # no await since the grant: a loss from now on is a new one
            if self._started:
                if self._renew is not None:
                    self._client = self._renew()
                else:
                    self._client.clear()
            self._started = True
            self.sessions += 1
            session = asyncio.create_task(self._client.start(self._token), name="discord-client")
            lost = asyncio.create_task(gate.lost.wait(), name="lease-lost")
            try:
                await asyncio.wait({session, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
            if session.done():
                session.result()  # a failure of its own propagates (the runner exits 3)
                return
            if self._closed:
                break
            log.warning("lease lost (%s): disconnecting from Discord until the agent grants it again", gate.book.reason)
            await self._end_session(session)

    async def _end_session(self, session: asyncio.Task[None]) -> None:
        """Close the client and wait a bounded time for its task (discord.py may be in a reconnect sleep)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.close(), timeout=CLOSE_WAIT_S)
        done, _ = await asyncio.wait({session}, timeout=CLOSE_WAIT_S)
        if not done:
            session.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await session

    async def close(self) -> None:
        """Close once. A client that never started holds no connection (and discord.py cannot close it)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
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
