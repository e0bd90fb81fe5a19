"""A laptop that sleeps with a fresh lease must not wake up believing it still holds it.

Found by the failover-quality benchmark (docs/benchmarks.md): time.monotonic stands still while
Linux is suspended, so an agent measuring its lease on it resumed its bot next to the standby's.
"""

from __future__ import annotations

import asyncio
import itertools
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


class ScriptedClient:
    """Stands in for HeartbeatClient: answers each heartbeat as `outcome` says, records when
    (time.monotonic) each was sent."""

    def __init__(self, mono, outcome: str = "accepted") -> None:  # type: ignore[no-untyped-def]
        self.mono = mono
        self.outcome = outcome
        self.sent: list[float] = []

    async def send(self, site: str, seq: int, workload: str, epoch_seen: int, ready: bool):  # type: ignore[no-untyped-def]
        from hfo_site.heartbeat_client import BeatKind, BeatResult

        self.sent.append(time.monotonic())
        if self.outcome == "accepted":
            answer = LeaseAnswer("n" * 32, 0.0, "primary", 3, 30, "auto", "healthy", 10)
            return BeatResult(BeatKind.ACCEPTED, self.mono(), answer=answer)
        return BeatResult(BeatKind.TIMEOUT, self.mono(), code="timeout", detail="scripted")


def _agent_with(client: ScriptedClient, now: list[float]) -> Agent:
    return Agent(
        "primary",
        RecordingBackend(),
        client=client,  # type: ignore[arg-type]
        reporter=None,
        metrics=AgentMetrics(),
        interval_s=10.0,
        retries=0,
        mono=lambda: now[0],
    )


def test_after_a_suspend_the_agent_heartbeats_at_once_not_after_its_interval() -> None:
    async def scenario() -> tuple[int, int, float]:
        now = [5_000.0]
        client = ScriptedClient(lambda: now[0])
        agent = _agent_with(client, now)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(agent.heartbeat_loop(stop)), asyncio.create_task(agent.reconcile_loop(stop))]
        for _ in range(100):
            if client.sent:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the start it made asks for one more heartbeat at once; let it pass
        first = len(client.sent)
        now[0] += 600.0  # ten minutes asleep: the lease clock moved, time.monotonic did not
        woke = time.monotonic()
        for _ in range(400):  # bounded: 4 s, well under the 10 s interval
            if len(client.sent) > first:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - woke
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return first, len(client.sent), elapsed

    first, after, elapsed = asyncio.run(scenario())
    assert 1 <= first <= 2 and after > first, "a heartbeat right after waking"
    assert elapsed < 2.0, f"the heartbeat after waking came {elapsed:.1f}s later (interval 10 s)"


def test_no_suspend_is_seen_while_both_clocks_advance_together() -> None:
    now = [5_000.0]
    agent = _agent_with(ScriptedClient(lambda: now[0]), now)
    started = time.monotonic()
    time.sleep(0.05)
    now[0] += time.monotonic() - started  # the lease clock moved exactly as time.monotonic
    assert not agent.check_suspend()
    now[0] += 2.5
    assert agent.check_suspend() and agent.suspends == 1
    assert not agent.check_suspend()  # reported once


def test_a_failed_round_is_retried_within_two_seconds_not_the_interval() -> None:
    async def scenario() -> list[float]:
        now = [5_000.0]
        client = ScriptedClient(lambda: now[0], outcome="timeout")
        agent = _agent_with(client, now)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.heartbeat_loop(stop))
        for _ in range(500):  # bounded: 5 s
            if len(client.sent) >= 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return client.sent

    sent = asyncio.run(scenario())
    assert len(sent) >= 3, "failed rounds are retried sooner than the 10 s interval"
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(1.7 <= gap <= 2.5 for gap in gaps[:2]), gaps


def test_the_lease_endpoint_answers_on_the_lease_clock_at_request_time() -> None:
    """GET /v1/lease (docs/protocol.md#lease-endpoint) served by the real app: a bot thawed from a
    suspend longer than its lease hears "do not run" in its first request, before any heartbeat."""
    from aiohttp.test_utils import TestClient, TestServer
    from hfo_site.agent_main import make_lease_app

    async def scenario() -> list[dict]:
        now = [5_000.0]
        agent = _agent_with(ScriptedClient(lambda: now[0]), now)
        seen = []
        async with TestClient(TestServer(make_lease_app(agent))) as client:
            for step in ("before", "held", "renewed", "asleep"):
                if step == "held":
                    agent.tracker.observe(LeaseAnswer("n" * 32, 0.0, "primary", 3, 30, "auto", "healthy", 10), now[0])
                    now[0] += 10.0
                if step == "renewed":
                    agent.tracker.grant("primary", 3, ends_at=now[0] + 85.0, ttl_s=90)
                if step == "asleep":
                    now[0] += 3600.0
                resp = await client.get("/v1/lease")
                assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
                seen.append(await resp.json())
            assert (await client.post("/v1/lease")).status == 405
        return seen

    before, held, renewed, asleep = asyncio.run(scenario())
    assert before == {"site": "primary", "holds": False, "epoch": 0, "fresh_for_s": 0.0, "workload_should_run": False}
    assert held == {"site": "primary", "holds": True, "epoch": 3, "fresh_for_s": 20.0, "workload_should_run": True}
    assert renewed["fresh_for_s"] == 85.0 and renewed["holds"]
    assert asleep == {"site": "primary", "holds": False, "epoch": 3, "fresh_for_s": 0.0, "workload_should_run": False}


def test_a_refused_round_keeps_the_interval() -> None:
    """A refusal (bad signature, stale clock) will not mend in 2 s: no faster retries, no extra
    Lambda invocations billed."""
    from hfo_site.heartbeat_client import BeatKind, BeatResult

    async def scenario() -> list[float]:
        now = [5_000.0]
        client = ScriptedClient(lambda: now[0])

        async def refused(site: str, seq: int, workload: str, epoch_seen: int, ready: bool) -> BeatResult:
            client.sent.append(time.monotonic())
            return BeatResult(BeatKind.REFUSED, now[0], code="bad_signature", http_status=401)

        client.send = refused  # type: ignore[method-assign]
        agent = _agent_with(client, now)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.heartbeat_loop(stop))
        await asyncio.sleep(2.6)
        stop.set()
        await asyncio.wait_for(task, 5)
        return client.sent

    assert len(asyncio.run(scenario())) == 1, "no second heartbeat within 2.6 s of a refusal (interval 10 s)"
