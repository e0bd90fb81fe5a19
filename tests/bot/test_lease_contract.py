"""The bot's lease client against the real agent's lease endpoint (``hfo_site.agent_main.make_lease_app`` served
on loopback, docs/protocol.md#lease-endpoint): what the agent's tracker says is what the bot does."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from hfo_bot.lease import LeaseRefused, fetch_lease, lease_clock
from hfo_bot.lease_gate import LeaseGate
from hfo_protocol.heartbeat import LeaseAnswer
from hfo_site.agent import Agent
from hfo_site.agent_main import LEASE_PATH, make_lease_app
from hfo_site.backends.exec import ExecBackend
from hfo_site.metrics import AgentMetrics

pytestmark = pytest.mark.network


def _agent(site: str) -> Agent:
    # The backend is a real one that is never started; the heartbeat client is never used here.
    return Agent(
        site,
        ExecBackend(["true"], grace_s=1.0),
        client=None,  # type: ignore[arg-type]
        reporter=None,
        metrics=AgentMetrics(),
        interval_s=10.0,
        retries=0,
    )


def _answer(site: str, epoch: int, ttl_s: int = 30) -> LeaseAnswer:
    return LeaseAnswer("n" * 32, 0.0, site, epoch, ttl_s, "auto", "healthy", 10)


async def _serve(agent: Agent) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_lease_app(agent), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    return runner, f"http://127.0.0.1:{port}{LEASE_PATH}"


def test_the_bot_follows_the_real_agents_lease_endpoint() -> None:
    async def scenario() -> list[tuple[bool, str]]:
        agent = _agent("primary")
        runner, url = await _serve(agent)
        gate = LeaseGate(url, "primary", margin_s=2.0, timeout_s=2.0)
        seen: list[tuple[bool, str]] = []
        try:
            seen.append((await gate.may_connect("before any heartbeat"), gate.book.reason))
            agent.tracker.observe(_answer("primary", 3), lease_clock())
            seen.append((await gate.may_connect("held"), gate.book.reason))
            assert 28 < gate.book.remaining() <= 30
            agent.tracker.observe(_answer("standby", 4), lease_clock())  # the watchdog moved the lease
            assert gate.admits_now()  # between renewals the grant in date is used without asking
            seen.append((await gate.confirm("renewal"), gate.book.reason))
            assert not gate.admits_now()
            assert gate.lost.is_set()
            agent.tracker.observe(_answer("primary", 5, ttl_s=2), lease_clock())  # back, but about to expire
            seen.append((await gate.may_connect("short"), gate.book.connect_refusal()[:20]))
            assert gate.book.holds()  # held, but not enough of it to open a session
        finally:
            await runner.cleanup()
        return seen

    assert asyncio.run(scenario()) == [
        (False, "site primary does not hold the lease (epoch 0)"),
        (True, "site primary holds the lease (epoch 3)"),
        (False, "site primary does not hold the lease (epoch 4)"),
        (False, "lease fresh for only"),
    ]


def test_a_bot_pointed_at_the_other_sites_agent_gets_no_lease() -> None:
    async def scenario() -> str:
        agent = _agent("standby")
        agent.tracker.observe(_answer("standby", 3), lease_clock())
        runner, url = await _serve(agent)
        try:
            await asyncio.to_thread(fetch_lease, url, "primary", 2.0)
        except LeaseRefused as exc:
            return exc.reason
        finally:
            await runner.cleanup()
        return "granted"

    assert asyncio.run(scenario()) == "answer is about site 'standby' but this bot runs on 'primary' (wrong agent?)"
