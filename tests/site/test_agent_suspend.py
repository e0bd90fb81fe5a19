"""A laptop that sleeps with a fresh lease must not wake up believing it still holds it.

Found by the failover-quality benchmark (docs/benchmarks.md): time.monotonic stands still while
Linux is suspended, so an agent measuring its lease on it resumed its bot next to the standby's.
"""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from hfo_protocol.heartbeat import LeaseAnswer
from hfo_site.agent import Agent
from hfo_site.backends.base import Observation
from hfo_site.lease import lease_clock
from hfo_site.metrics import AgentMetrics


class RecordingBackend:
    """Implements WorkloadBackend; records what the agent asked for (the real backends have their
    own tests with real processes and the fake scale API)."""

    name = "recording"

    def __init__(self) -> None:
        self.running = False
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        self.running = True

    async def stop(self) -> None:
        self.calls.append("stop")
        self.running = False

    async def observe(self) -> Observation:
        return Observation("running" if self.running else "stopped", True)

    async def close(self) -> None:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CLOCK_BOOTTIME is Linux's")
def test_the_lease_clock_is_the_one_that_counts_suspended_time() -> None:
    assert abs(lease_clock() - time.clock_gettime(time.CLOCK_BOOTTIME)) < 0.5


def test_waking_from_a_suspend_longer_than_the_lease_fences_within_about_a_second() -> None:
    async def scenario() -> tuple[list[str], float]:
        now = [5_000.0]
        backend = RecordingBackend()
        agent = Agent(
            "primary",
            backend,
            client=None,
            reporter=None,
            metrics=AgentMetrics(),
            interval_s=10.0,
            retries=0,
            mono=lambda: now[0],
        )
        answer = LeaseAnswer(
            nonce="n" * 32,
            server_time=0.0,
            site="primary",
            epoch=3,
            ttl_s=30,
            mode="auto",
            phase="healthy",
            heartbeat_interval_s=10,
        )
        agent.tracker.observe(answer, sent_at_mono=now[0])
        agent.first_round.set()
        stop = asyncio.Event()
        loop_task = asyncio.create_task(agent.reconcile_loop(stop))
        for _ in range(100):  # bounded: the start comes at once
            if backend.running:
                break
            await asyncio.sleep(0.01)
        assert backend.calls == ["start"]
        # The lid closes for an hour: the lease clock moves on, nothing else happens (no heartbeat
        # round, no event) - exactly what the agent sees in the first instants after resume.
        now[0] += 3600.0
        woke = time.monotonic()
        for _ in range(600):  # bounded: 6 s at most
            if not backend.running:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - woke
        stop.set()
        await asyncio.wait_for(loop_task, 5)
        return backend.calls, elapsed

    calls, elapsed = asyncio.run(scenario())
    assert calls == ["start", "stop"], "the agent fenced its workload after the suspend"
    assert elapsed < 5.0, f"fenced {elapsed:.1f} s after waking (the heartbeat interval is 10 s)"
