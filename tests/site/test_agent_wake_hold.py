"""The wake hold (docs/protocol.md#wake-hold): a laptop that slept a little past its lease does not
stop and restart its bot when the heartbeat it sends on waking renews the lease.

Found by the failover-quality benchmark (trace sleep-45s): the agent stopped the workload the
instant it woke with a lapsed lease, and the wake heartbeat renewed the lease a second later, so
every short suspend cost a full stop, start and gateway reconnect.

The agent runs in this process (its three loops) against the stand-in watchdog over HTTPS, with
real signed heartbeats; only its lease clock is a stand-in: time.monotonic plus an offset, and a
suspend is the offset jumping ahead (CLOCK_BOOTTIME counts the suspend, time.monotonic does not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from hfo_protocol import Keyring
from hfo_site.agent import WAKE_HOLD_S, Agent
from hfo_site.backends.base import Observation
from hfo_site.heartbeat_client import HeartbeatClient, make_ssl_context
from hfo_site.metrics import WAKE_HOLD_OUTCOMES, AgentMetrics
from testsupport.site_watchdog import StandInWatchdog

pytestmark = pytest.mark.network

RETRIES = 2


@dataclass
class RecordingBackend:
    """Implements WorkloadBackend; records each start and stop with the lease clock's time and what
    the stand-in watchdog had seen by then (the real backends have their own tests)."""

    clock: Callable[[], float]
    seen: Callable[[], tuple[int, int]]
    name: str = "recording"
    running: bool = False
    calls: list[tuple[str, float, tuple[int, int]]] = field(default_factory=list)

    async def start(self) -> None:
        self.calls.append(("start", self.clock(), self.seen()))
        self.running = True

    async def stop(self) -> None:
        self.calls.append(("stop", self.clock(), self.seen()))
        self.running = False

    async def observe(self) -> Observation:
        return Observation("running" if self.running else "stopped", True)

    async def close(self) -> None:
        return None


class Laptop:
    """One agent with its lease clock; ``suspend(s)`` is what the agent sees on waking."""

    def __init__(self, watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path, session: aiohttp.ClientSession):
        self.offset = 0.0
        self.watchdog = watchdog
        self.backend = RecordingBackend(self.clock, self._seen)
        self.metrics = AgentMetrics()
        client = HeartbeatClient(
            watchdog.url, session, lambda: keyring, 8.0, make_ssl_context(ca_bundle), mono=self.clock
        )
        self.agent = Agent(
            "primary", self.backend, client, None, self.metrics, interval_s=10.0, retries=RETRIES, mono=self.clock
        )
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def _seen(self) -> tuple[int, int]:
        return len(self.watchdog.accepted("primary")), len(self.watchdog.refusals())

    def calls(self) -> list[str]:
        return [call[0] for call in self.backend.calls]

    def holds(self, outcome: str) -> float | None:
        return self.metrics.registry.get_sample_value("hfo_agent_wake_holds_total", {"outcome": outcome})

    async def boot(self) -> None:
        a = self.agent
        self.tasks = [
            asyncio.create_task(loop(self.stop)) for loop in (a.heartbeat_loop, a.reconcile_loop, a.report_loop)
        ]
        await until(lambda: self.backend.running and len(self.watchdog.accepted("primary")) >= 2, 5.0)
        await asyncio.sleep(0.2)  # the round the start asked for has been answered

    def suspend(self, seconds: float) -> float:
        """The lid was closed for ``seconds``: the lease clock moved on, nothing else happened.
        Returns the lease clock at waking."""
        self.offset += seconds
        return self.clock()

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def run(watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path, scenario, ttl_s: int = 30) -> object:  # type: ignore[no-untyped-def]
    watchdog.update(ttl_s=ttl_s, heartbeat_interval_s=10)

    async def main() -> object:
        async with aiohttp.ClientSession() as session:
            laptop = Laptop(watchdog, keyring, ca_bundle, session)
            try:
                await laptop.boot()
                return await scenario(laptop)
            finally:
                await laptop.close()

    return asyncio.run(main())


def test_a_wake_heartbeat_that_renews_the_lease_keeps_the_workload_running(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    async def scenario(laptop: Laptop) -> None:
        before = len(watchdog.accepted("primary"))
        watchdog.update(delay_s=0.5)  # the wake heartbeat's answer takes half a second
        laptop.suspend(45.0)  # the lease (30 s, renewed just before) lapsed 15 s ago
        doc = laptop.agent.lease_document()
        assert doc["holds"] is False and doc["workload_should_run"] is False, "the bot is told not to run meanwhile"
        assert await until(lambda: laptop.holds("renewed") == 1, 3.0), "the wake heartbeat renewed the lease"
        await asyncio.sleep(WAKE_HOLD_S + 0.5)  # past the hold's end: still nothing stopped
        assert laptop.calls() == ["start"], "no stop and restart for a suspend the wake heartbeat covered"
        assert laptop.backend.running and laptop.agent.lease_document()["holds"] is True
        assert len(watchdog.accepted("primary")) > before
        assert laptop.metrics.registry.get_sample_value("hfo_agent_self_fences_total") == 0
        assert all(laptop.holds(o) == 0 for o in WAKE_HOLD_OUTCOMES if o != "renewed")

    run(watchdog, keyring, ca_bundle, scenario)


def test_a_failing_wake_heartbeat_stops_the_workload_as_soon_as_the_round_has_failed(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    async def scenario(laptop: Laptop) -> None:
        refused = len(watchdog.refusals())
        watchdog.update(unavailable=True)  # the watchdog's state store is down: 503 unavailable
        woke = laptop.suspend(45.0)
        assert await until(lambda: not laptop.backend.running, WAKE_HOLD_S + 1.0)
        assert laptop.calls() == ["start", "stop"]
        _, stopped_at, (_, refused_by_then) = laptop.backend.calls[-1]
        assert refused_by_then - refused == 1 + RETRIES, "the stop waited for the wake round and its retries"
        assert stopped_at - woke < WAKE_HOLD_S / 2, f"stopped {stopped_at - woke:.2f}s after waking"
        assert laptop.holds("failed") == 1 and laptop.holds("renewed") == 0
        assert laptop.metrics.registry.get_sample_value("hfo_agent_self_fences_total") == 1

    run(watchdog, keyring, ca_bundle, scenario)


def test_a_wake_heartbeat_that_is_never_answered_stops_the_workload_when_the_hold_runs_out(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    async def scenario(laptop: Laptop) -> None:
        watchdog.update(silent_sites={"primary"})  # the request hangs (8 s client timeout)
        woke = laptop.suspend(45.0)
        assert await until(lambda: not laptop.backend.running, WAKE_HOLD_S + 2.0)
        stopped_at = laptop.backend.calls[-1][1]
        # The agent sees the suspend within a second and counts the hold from the earliest instant
        # the host can have woken: the stop comes within WAKE_HOLD_S of waking, less at most 1 s.
        assert WAKE_HOLD_S - 1.0 <= stopped_at - woke < WAKE_HOLD_S + 0.3, f"stopped {stopped_at - woke:.2f}s after"
        assert laptop.holds("ran_out") == 1

    run(watchdog, keyring, ca_bundle, scenario)


def test_a_wake_answer_naming_the_standby_stops_the_workload_at_once(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    async def scenario(laptop: Laptop) -> None:
        watchdog.set_lease("standby")  # the watchdog failed over while the laptop slept
        watchdog.update(delay_s=0.3)
        before = len(watchdog.accepted("primary"))
        woke = laptop.suspend(45.0)
        assert await until(lambda: not laptop.backend.running, WAKE_HOLD_S + 1.0)
        _, stopped_at, (accepted_by_then, _) = laptop.backend.calls[-1]
        # seen within RECHECK_S (1 s) of waking, answered 0.3 s later, stopped then: never held
        assert stopped_at - woke < 1.6, f"stopped {stopped_at - woke:.2f}s after waking"
        assert accepted_by_then == before + 1, "stopped on the wake heartbeat's answer"
        assert laptop.calls() == ["start", "stop"]
        assert laptop.holds("elsewhere") == 1
        assert laptop.agent.tracker.view is not None and laptop.agent.tracker.view.site == "standby"

    run(watchdog, keyring, ca_bundle, scenario)


def test_a_suspend_far_past_the_lease_is_fenced_at_once_without_a_hold(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    """A lid closed for ten minutes: the lease lapsed more than a TTL ago, the watchdog may have
    moved it by now; the workload stops at once even though the wake heartbeat would renew it."""

    async def scenario(laptop: Laptop) -> None:
        before = len(watchdog.accepted("primary"))
        watchdog.update(delay_s=0.5)
        woke = laptop.suspend(600.0)
        assert await until(lambda: laptop.calls()[-1:] == ["stop"], 2.0)
        _, stopped_at, (accepted_by_then, _) = laptop.backend.calls[-1]
        assert stopped_at - woke < 1.3, "seen within RECHECK_S (1 s) of waking, stopped then"
        assert accepted_by_then == before, "stopped without waiting for the wake heartbeat's answer"
        assert all(laptop.holds(o) == 0 for o in WAKE_HOLD_OUTCOMES)

    run(watchdog, keyring, ca_bundle, scenario)


def test_an_expiry_while_awake_is_fenced_exactly_at_the_lease_end_without_a_hold(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    async def scenario(laptop: Laptop) -> None:
        watchdog.update(silent_sites={"primary"})  # AWS unreachable: no answer renews the 2 s lease
        await asyncio.sleep(1.0)  # a round answered before is in; the next one hangs
        ends = laptop.agent.tracker.expires_at()
        assert ends is not None and laptop.backend.running
        assert await until(lambda: not laptop.backend.running, 3.0)
        stopped_at = laptop.backend.calls[-1][1]
        assert 0.0 <= stopped_at - ends < 0.3, f"stopped {stopped_at - ends:+.2f}s from the lease end"
        assert laptop.agent.suspends == 0 and all(laptop.holds(o) == 0 for o in WAKE_HOLD_OUTCOMES)

    run(watchdog, keyring, ca_bundle, scenario, ttl_s=2)
