"""Wake from a freeze, end to end on one site: the real agent (``hfo_site.agent.Agent``) with its real exec
backend and its real lease endpoint runs the drill's real stand-in bot; only the watchdog's heartbeat answers
are scripted. The bot is frozen (SIGSTOP) while the lease moves to the standby, then thawed: whichever comes
first, the agent's stop or the bot's own question to the agent, the ledger shows nothing after the freeze.
When the lease comes home the agent starts a new bot, which asks before its first line."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from hfo_drill.ledger import parse, summarize
from hfo_protocol.heartbeat import LeaseAnswer
from hfo_site.agent import Agent
from hfo_site.agent_main import start_lease_endpoint
from hfo_site.backends.exec import ExecBackend
from hfo_site.heartbeat_client import BeatKind, BeatResult
from hfo_site.lease import lease_clock
from hfo_site.metrics import AgentMetrics

pytestmark = [pytest.mark.network, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")]


class Watchdog:
    """Answers every heartbeat with the lease it is told (site, epoch), as an accepted, verified answer."""

    def __init__(self) -> None:
        self.site = "primary"
        self.epoch = 2

    async def send(self, site: str, seq: int, workload: str, epoch_seen: int, ready: bool) -> BeatResult:
        sent = lease_clock()
        answer = LeaseAnswer("n" * 32, time.time(), self.site, self.epoch, 30, "auto", "steady", 1)
        return BeatResult(BeatKind.ACCEPTED, sent, answer=answer)


def _lines(ledger: Path) -> list[list[str]]:
    return [line.split() for line in ledger.read_text().splitlines()] if ledger.exists() else []


async def _until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout:g}s")


def test_a_bot_thawed_after_the_lease_moved_writes_nothing_more(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    bot = [sys.executable, "-m", "hfo_drill.bot", "--site", "primary", "--ledger", str(ledger), "--period", "0.1"]

    async def scenario() -> tuple[float, list[list[str]], list[list[str]]]:
        watchdog = Watchdog()
        backend = ExecBackend(bot, grace_s=3.0, backoff_s=0.2, backoff_max_s=0.5)
        agent = Agent("primary", backend, watchdog, None, AgentMetrics(), interval_s=0.5, retries=0)  # type: ignore[arg-type]
        runner, url = await start_lease_endpoint(agent, "127.0.0.1", 0)
        backend.add_env({"HFO_BOT_LEASE_URL": url, "HFO_BOT_LEASE_CHECK_S": "0.5"})
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop, True, exit_timeout_s=10))
        try:
            await _until(lambda: len(_lines(ledger)) >= 5, 30, "the bot running under its agent")
            pid = int(_lines(ledger)[0][3])
            os.kill(pid, signal.SIGSTOP)  # the laptop sleeps
            await asyncio.sleep(0.2)
            frozen_at, before = time.time(), _lines(ledger)
            watchdog.site, watchdog.epoch = "standby", 3  # meanwhile the standby took over
            await asyncio.sleep(1.5)
            os.kill(pid, signal.SIGCONT)  # the laptop wakes
            await asyncio.sleep(2.0)
            after_thaw = _lines(ledger)
            watchdog.site, watchdog.epoch = "primary", 4  # the lease comes home
            await _until(lambda: len(_lines(ledger)) >= len(after_thaw) + 3, 30, "a new bot running")
            return frozen_at, before, after_thaw
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await runner.cleanup()

    frozen_at, before, after_thaw = asyncio.run(scenario())
    assert after_thaw == before, "the thawed bot wrote to the ledger after the lease moved"
    records = parse(ledger.read_text())
    later = [r for r in records if r.at > frozen_at]
    assert later and later[0].event == "start" and later[0].pid != int(before[0][3])  # a new bot, after asking
    summary = summarize(records, period_s=0.1)
    assert len(summary.runs) >= 2 and summary.overlap_s == 0
