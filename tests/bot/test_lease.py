"""The bot's lease client (docs/kubernetes.md#lease-aware-bot): the answer check, the HTTP request against a real
loopback server playing the agent's endpoint, the grant's life on the suspend-counting clock, pause detection,
and the asyncio gate the gateway consults."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from hfo_bot.config import ConfigError, LeaseSettings, load
from hfo_bot.lease import (
    MAX_ANSWER_BYTES,
    LeaseAnswer,
    LeaseBook,
    LeaseRefused,
    PauseDetector,
    fetch_lease,
    parse_answer,
)
from hfo_bot.lease_gate import LeaseGate
from testsupport.lease_agent import AgentScript, lease_agent

GOOD = {"site": "primary", "holds": True, "epoch": 7, "fresh_for_s": 12.5, "workload_should_run": True}


class Clock:
    """Two clocks under the test's control: CLOCK_BOOTTIME (counts suspend) and monotonic (does not)."""

    def __init__(self) -> None:
        self.boot = 1000.0
        self.mono = 500.0

    def run(self, seconds: float) -> None:
        self.boot += seconds
        self.mono += seconds

    def suspend(self, seconds: float) -> None:
        self.boot += seconds


def _body(**changes: object) -> bytes:
    doc: dict[str, object] = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


# -- the answer ----------------------------------------------------------------------------------------------------
def test_a_well_formed_answer_is_read_field_by_field() -> None:
    assert parse_answer(_body(), "primary") == LeaseAnswer("primary", True, 7, 12.5, True)
    assert parse_answer(_body(fresh_for_s=3), "primary").fresh_for_s == 3.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_body(holds=...), "no 'holds' field"),
        (_body(holds="true"), "'holds' is str, not a boolean"),
        (_body(holds=1), "'holds' is int, not a boolean"),
        (_body(epoch=True), "'epoch' is bool, not an integer"),
        (_body(epoch=1.5), "'epoch' is float, not an integer"),
        (_body(epoch=-1), "epoch -1 is negative"),
        (_body(fresh_for_s="9"), "'fresh_for_s' is missing or not a number"),
        (_body(fresh_for_s=-0.1), "out of range"),
        (_body(fresh_for_s=86400), "out of range"),
        (b'{"site":"primary","holds":true,"epoch":1,"fresh_for_s":NaN,"workload_should_run":true}', "out of range"),
        (_body(site="laptop"), "site 'laptop' is not primary or standby"),
        (_body(workload_should_run=...), "no 'workload_should_run' field"),
        (_body(site="standby"), "answer is about site 'standby' but this bot runs on 'primary'"),
    ],
)
def test_a_malformed_or_foreign_answer_is_refused_with_a_specific_reason(body: bytes, reason: str) -> None:
    with pytest.raises(LeaseRefused) as err:
        parse_answer(body, "primary")
    assert reason in err.value.reason


# -- the request, against a real loopback endpoint -----------------------------------------------------------------
pytestmark = pytest.mark.network


def test_fetch_reads_the_agents_answer() -> None:
    with lease_agent(AgentScript(epoch=4, fresh_for_s=9)) as agent:
        answer = fetch_lease(agent.url, "primary", 2.0)
    assert (answer.holds, answer.epoch, answer.fresh_for_s) == (True, 4, 9.0)


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (AgentScript(status=503), "agent answered HTTP 503"),
        (AgentScript(raw=b"not json"), "malformed answer: not JSON"),
        (AgentScript(raw=b" " * (MAX_ANSWER_BYTES + 1)), "answer too large"),
        (AgentScript(delay_s=1.5), "timed out after 0.5s"),
        (AgentScript(site="standby"), "this bot runs on 'primary'"),
    ],
)
def test_fetch_turns_every_failure_into_no_lease_with_its_reason(script: AgentScript, reason: str) -> None:
    with lease_agent(script) as agent, pytest.raises(LeaseRefused) as err:
        fetch_lease(agent.url, "primary", 0.5)
    assert reason in err.value.reason


def test_fetch_from_a_closed_port_says_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(LeaseRefused) as err:
        fetch_lease(f"http://127.0.0.1:{port}/v1/lease", "primary", 0.5)
    assert "agent unreachable" in err.value.reason


def test_fetch_of_a_wrong_path_is_no_lease() -> None:
    with lease_agent() as agent, pytest.raises(LeaseRefused, match="HTTP 404"):
        fetch_lease(agent.url.replace("/v1/lease", "/v1/nope"), "primary", 1.0)


# -- the grant's life ----------------------------------------------------------------------------------------------
def _answer(holds: bool = True, epoch: int = 3, fresh: float = 10.0) -> LeaseAnswer:
    return LeaseAnswer("primary", holds, epoch, fresh, holds)


def test_a_grant_counts_from_the_request_and_goes_stale_even_across_a_suspend() -> None:
    clock = Clock()
    book = LeaseBook("primary", 2.0, lambda: clock.boot)
    asked = clock.boot
    clock.run(0.5)  # the answer took half a second
    assert book.record(_answer(fresh=10), asked) is not None
    assert book.remaining() == pytest.approx(9.5)
    assert book.may_connect()
    clock.run(7.6)  # 1.9 s left: still held, but too little to open a session
    assert book.holds() and not book.may_connect()
    assert "not more than the 2s margin" in book.connect_refusal()
    clock.run(-7.6)
    clock.suspend(600)  # lid closed for ten minutes: monotonic did not move, the lease clock did
    assert not book.holds()
    assert book.expire()
    assert "went stale without renewal" in book.status().reason


def test_refusals_drop_the_grant_and_say_why() -> None:
    book = LeaseBook("primary", 2.0, lambda: 0.0)
    book.record(_answer(epoch=5), 0.0)
    assert book.record(_answer(holds=False, epoch=6), 0.0) is None
    assert not book.holds()
    assert book.status().reason == "site primary does not hold the lease (epoch 6)"
    assert book.record(_answer(epoch=4), 0.0) is None  # an answer from before the move
    assert "lower than 5" in book.status().reason
    assert book.record(_answer(epoch=6, fresh=0.0), 0.0) is None
    assert "stale lease" in book.status().reason
    assert book.record(LeaseAnswer("primary", True, 6, 10.0, False), 0.0) is None
    assert book.status().reason == "agent says the workload should not run (site primary, epoch 6)"


def test_an_error_keeps_a_grant_in_date_until_it_goes_stale() -> None:
    clock = Clock()
    book = LeaseBook("primary", 2.0, lambda: clock.boot)
    book.record(_answer(fresh=5), clock.boot)
    book.fail("agent unreachable: connection refused")
    assert book.holds()
    assert "keeping the grant of epoch 3" in book.status().reason
    clock.run(5.01)
    assert not book.holds()


# -- pauses --------------------------------------------------------------------------------------------------------
def test_pause_detector_tells_a_suspend_from_a_freeze_and_ignores_normal_ticks() -> None:
    clock = Clock()
    detector = PauseDetector(0.25, 1.0, lambda: clock.boot, lambda: clock.mono)
    clock.run(0.3)
    assert detector.tick() is None
    clock.suspend(30)
    clock.run(0.2)
    pause = detector.tick()
    assert pause is not None and pause.suspended_s == pytest.approx(30)
    assert "suspended for 30.0s" in pause.describe()
    clock.run(4)  # SIGSTOP: both clocks ran, the process did not
    pause = detector.check()
    assert pause is not None and pause.suspended_s == 0
    assert "did not run for 4.0s" in pause.describe()


# -- the gate ------------------------------------------------------------------------------------------------------
def _gate(url: str | None, clock: Clock | None = None, **kw: float) -> LeaseGate:
    if clock is None:
        return LeaseGate(url, "primary", margin_s=2.0, timeout_s=1.0, **kw)
    return LeaseGate(url, "primary", margin_s=2.0, timeout_s=1.0, clock=lambda: clock.boot, **kw)


def test_gate_without_url_is_open_and_says_so() -> None:
    gate = _gate(None)
    assert asyncio.run(gate.may_connect("test"))
    assert gate.admits_now()
    assert not gate.status().aware
    assert "not lease-aware" in gate.describe()


def test_gate_admits_events_only_with_a_confirmed_grant_and_asks_again_after_a_pause() -> None:
    clock = Clock()

    async def scenario(url: str, script: AgentScript) -> None:
        gate = _gate(url, clock)
        assert not gate.admits_now()  # never asked yet
        assert await gate.admit()  # asks, granted
        assert gate.admits_now()
        asked = len(script.asked)
        assert await gate.admit()
        assert len(script.asked) == asked  # in date, no pause: no request
        clock.suspend(20)  # a suspend longer than the grant
        script.withdraw(epoch=2)
        assert not await gate.admit()
        assert gate.lost.is_set()
        assert gate.status().reason == "site primary does not hold the lease (epoch 2)"
        assert gate.status().pauses == 1
        script.grant(epoch=3)
        assert await gate.may_connect("before IDENTIFY")
        clock.run(3)  # a freeze shorter than the grant: still held, but the agent is asked first
        script.withdraw(epoch=4)
        assert gate.book.holds()
        assert not await gate.admit()

    with lease_agent(AgentScript(fresh_for_s=15)) as agent:
        asyncio.run(scenario(agent.url, agent.script))


def test_wait_connectable_backs_off_then_connects_as_soon_as_the_lease_is_granted() -> None:
    async def scenario(url: str, script: AgentScript) -> float:
        gate = _gate(url)
        stop = asyncio.Event()
        waiter = asyncio.create_task(gate.wait_connectable("test", stop))
        await asyncio.sleep(1.6)
        assert not waiter.done()
        asked = len(script.asked)
        assert 2 <= asked <= 6  # backoff: 0.5 s, 1 s, ... not a busy loop
        script.grant(epoch=2)
        start = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(waiter, 5)
        return asyncio.get_running_loop().time() - start

    with lease_agent(AgentScript(holds=False, fresh_for_s=0)) as agent:
        assert asyncio.run(scenario(agent.url, agent.script)) < 4.0  # the next backoff step, not the 5 s cap


def test_a_short_grant_does_not_open_a_session() -> None:
    async def scenario(url: str) -> tuple[bool, str]:
        gate = _gate(url)
        return await gate.may_connect("before IDENTIFY"), gate.book.connect_refusal()

    with lease_agent(AgentScript(fresh_for_s=1.5)) as agent:
        ok, reason = asyncio.run(scenario(agent.url))
    assert not ok
    assert "not more than the 2s margin" in reason


def test_background_renewal_keeps_the_grant_and_sets_lost_when_the_agent_withdraws_it() -> None:
    async def scenario(script: AgentScript, url: str) -> None:
        gate = _gate(url, check_every_s=0.3)
        task = asyncio.create_task(gate.run())
        try:
            await asyncio.sleep(1.0)
            assert gate.book.holds() and not gate.lost.is_set()
            assert len(script.asked) >= 2  # renewed, not only asked once
            script.withdraw(epoch=2)
            await asyncio.wait_for(gate.lost.wait(), 2)
            assert not gate.status().holds
        finally:
            task.cancel()

    with lease_agent(AgentScript(fresh_for_s=4)) as agent:
        asyncio.run(scenario(agent.script, agent.url))


def test_a_failing_agent_ends_the_grant_when_it_goes_stale_not_before() -> None:
    async def scenario(script: AgentScript, url: str) -> tuple[float, float]:
        gate = _gate(url, check_every_s=0.3)
        task = asyncio.create_task(gate.run())
        try:
            await asyncio.sleep(0.5)
            assert gate.book.holds()
            loop = asyncio.get_running_loop()
            script.status = 500
            broken = loop.time()
            await asyncio.wait_for(gate.lost.wait(), 5)
            return loop.time() - broken, gate.book.grant.valid_until if gate.book.grant else 0.0
        finally:
            task.cancel()

    with lease_agent(AgentScript(fresh_for_s=2.5)) as agent:
        held_for, _ = asyncio.run(scenario(agent.script, agent.url))
    assert 1.5 < held_for < 4.0  # kept until the 2.5 s grant went stale, then dropped


# -- settings ------------------------------------------------------------------------------------------------------
BASE = {"HFO_SITE": "primary", "POD_NAME": "bot-0"}


def test_lease_settings_default_to_not_lease_aware() -> None:
    assert load(dict(BASE)).lease == LeaseSettings()


def test_lease_settings_are_read_from_the_environment() -> None:
    env = {
        **BASE,
        "HFO_BOT_LEASE_URL": "http://hfo-site-lease.hfo.svc.cluster.local:9102/v1/lease",
        "HFO_BOT_LEASE_MARGIN_S": "3",
        "HFO_BOT_LEASE_TIMEOUT_S": "1.5",
        "HFO_BOT_LEASE_CHECK_S": "4",
        "HFO_BOT_LEASE_PAUSE_S": "2",
    }
    url = "http://hfo-site-lease.hfo.svc.cluster.local:9102/v1/lease"
    assert load({**env, "HFO_BOT_LEASE_URL": url}).lease == LeaseSettings(url, 3.0, 1.5, 4.0, 2.0)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HFO_BOT_LEASE_URL": "hfo-site-lease:9102/v1/lease"}, "must start with http:// or https://"),
        ({"HFO_BOT_LEASE_URL": "http:///v1/lease"}, "has no host"),
        ({"HFO_BOT_LEASE_URL": "http://agent:99999/v1/lease"}, "invalid port"),
        ({"HFO_BOT_LEASE_MARGIN_S": "-1"}, "HFO_BOT_LEASE_MARGIN_S=-1 is out of range"),
        ({"HFO_BOT_LEASE_TIMEOUT_S": "soon"}, "HFO_BOT_LEASE_TIMEOUT_S='soon' is not a number"),
    ],
)
def test_bad_lease_settings_stop_the_start_with_the_variable_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("?", r"\?")):
        load({**BASE, **env})


def test_a_freeze_while_the_request_is_out_makes_the_connect_check_ask_again() -> None:
    """An answer whose request left before a freeze does not open a session: the agent is asked again."""
    clock = Clock()
    calls: list[float] = []

    def fetch(url: str, site: str, timeout: float) -> LeaseAnswer:
        calls.append(clock.boot)
        if len(calls) == 1:
            clock.run(4.0)  # the process is frozen while this first request is out
        return LeaseAnswer("primary", True, 2, 30.0, True)

    gate = LeaseGate("http://agent/v1/lease", "primary", margin_s=2.0, fetch=fetch, clock=lambda: clock.boot)
    gate.detector = PauseDetector(0.25, 1.0, lambda: clock.boot, lambda: clock.mono)
    assert asyncio.run(gate.may_connect("before IDENTIFY"))
    assert len(calls) == 2 and calls[1] > calls[0]
    assert gate.status().pauses == 1
