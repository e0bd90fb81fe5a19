"""The real bot process (``hfo_bot.__main__``, discord.py and all) against a loopback Discord and a loopback agent
lease endpoint: it never identifies, resumes or answers without a fresh lease, including the case the lease is
for, a laptop frozen (SIGSTOP) while the lease moved away and thawed with its old session still open."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testsupport.bot import BotProcess
from testsupport.fake_discord import FakeDiscord, FakeDiscordServer
from testsupport.lease_agent import AgentScript, LeaseAgent, lease_agent
from testsupport.net import wait_until

pytestmark = pytest.mark.network

Spawn = Callable[..., BotProcess]


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscordServer() as fake:
        yield fake


@pytest.fixture
def agent() -> Iterator[LeaseAgent]:
    with lease_agent(AgentScript(holds=False, fresh_for_s=0.0, epoch=1)) as running:
        yield running


@pytest.fixture
def start_bot(spawn_bot: Spawn, discord: FakeDiscord, tmp_path: Path) -> Callable[..., BotProcess]:
    token = tmp_path / "token"
    token.write_text("fake-token\n")

    def start(**env: str) -> BotProcess:
        defaults = {"DISCORD_TOKEN_FILE": str(token), "HFO_BOT_SYNC_COMMANDS": "false", "HFO_BOT_LEASE_CHECK_S": "0.5"}
        return spawn_bot(launcher=discord.launcher_args(), **{**defaults, **env})

    return start


def _answers(discord: FakeDiscord) -> int:
    return discord.count("ANSWER")


def _ask_site(discord: FakeDiscord, expect_answer: bool, wait: float = 3.0) -> None:
    before = _answers(discord)
    discord.send_message("!site")
    if expect_answer:
        wait_until(lambda: _answers(discord) > before, timeout=10, what="the bot's answer")
    else:
        time.sleep(wait)
        assert _answers(discord) == before, "the bot answered without a lease"


def test_no_connection_before_the_lease_then_identify_and_answer(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord, agent: LeaseAgent
) -> None:
    bot = start_bot(HFO_BOT_LEASE_URL=agent.url)
    wait_until(lambda: len(agent.script.asked) >= 3, timeout=10, what="the bot asking its agent")
    assert discord.kinds() == []  # not even a websocket
    ready = bot.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert isinstance(body, dict)
    assert body["reason"] == "no lease: site primary does not hold the lease (epoch 1)"
    assert body["lease"]["aware"] is True and body["lease"]["holds"] is False
    assert "hfo_bot_lease_held 0.0" in bot.get("/metrics").text

    agent.script.grant(epoch=2, fresh_for_s=30)
    wait_until(lambda: discord.count("IDENTIFY") == 1, timeout=10, what="IDENTIFY")
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=10, what="ready")
    lease = bot.get("/readyz").json()["lease"]  # type: ignore[index]
    assert (lease["holds"], lease["epoch"]) == (True, 2)
    metrics = bot.get("/metrics").text
    assert "hfo_bot_lease_held 1.0" in metrics and "hfo_bot_lease_epoch 2.0" in metrics
    _ask_site(discord, expect_answer=True)
    code, err = bot.stop()
    assert code == 0, err
    assert "sending IDENTIFY: lease of epoch 2" in err
    assert "Traceback" not in err


def test_thawed_bot_neither_answers_nor_reconnects_until_the_lease_is_back(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord, agent: LeaseAgent
) -> None:
    agent.script.grant(epoch=2, fresh_for_s=30)  # long enough that the old grant is still in date after the thaw
    bot = start_bot(HFO_BOT_LEASE_URL=agent.url)
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=15, what="ready")
    _ask_site(discord, expect_answer=True)

    bot.proc.send_signal(signal.SIGSTOP)  # the laptop's lid closes: bot and agent freeze together
    try:
        agent.script.withdraw(epoch=3)  # meanwhile the standby took the lease
        frozen_at = time.monotonic()
        discord.send_message("!site")  # a user asks while the laptop sleeps; the message waits in the socket
        time.sleep(2.0)
    finally:
        bot.proc.send_signal(signal.SIGCONT)
    time.sleep(3.0)
    assert discord.kinds(since=frozen_at) == [], "the thawed bot answered or reconnected without a lease"
    ready = bot.get("/readyz")
    assert ready.status_code == 503
    assert "does not hold the lease (epoch 3)" in str(ready.json())
    metrics = bot.get("/metrics").text
    assert re.search(r"^hfo_bot_lease_pauses_total [1-9]", metrics, re.M), metrics
    assert re.search(r"^hfo_bot_lease_refusals_total [1-9]", metrics, re.M)
    assert "hfo_bot_lease_held 0.0" in metrics
    _ask_site(discord, expect_answer=False, wait=1.0)  # its old session is closed: nothing reaches it

    agent.script.grant(epoch=4)  # the lease comes home
    wait_until(lambda: discord.count("IDENTIFY") == 2, timeout=10, what="a new IDENTIFY")
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=10, what="ready again")
    _ask_site(discord, expect_answer=True)
    code, err = bot.stop()
    assert code == 0, err
    assert "pause detected: the process did not run for" in err
    assert "event not handled and gateway closed" in err
    assert "Traceback" not in err


def test_a_reconnect_asks_the_agent_before_it_resumes(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord, agent: LeaseAgent
) -> None:
    agent.script.grant(epoch=2, fresh_for_s=30)
    bot = start_bot(HFO_BOT_LEASE_URL=agent.url, HFO_BOT_LEASE_CHECK_S="30")  # no renewal in the way
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=15, what="ready")
    asked = len(agent.script.asked)
    discord.drop()  # a network blip while the lease is held: discord.py resumes the session
    wait_until(lambda: discord.count("RESUME") == 1, timeout=15, what="RESUME")
    assert len(agent.script.asked) > asked  # asked again for the reconnect
    _ask_site(discord, expect_answer=True)

    agent.script.withdraw(epoch=3)
    resumes, identifies = discord.count("RESUME"), discord.count("IDENTIFY")
    discord.drop()  # a blip while the lease is elsewhere: no RESUME, no IDENTIFY
    time.sleep(3.0)
    assert (discord.count("RESUME"), discord.count("IDENTIFY")) == (resumes, identifies)
    code, err = bot.stop()
    assert code == 0, err
    assert "sending RESUME: lease of epoch 2" in err


def test_agent_failures_keep_the_bot_offline_and_alive(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord, agent: LeaseAgent
) -> None:
    agent.script.raw = b'{"site": "primary", "holds": "yes"}'
    bot = start_bot(HFO_BOT_LEASE_URL=agent.url)
    wait_until(lambda: len(agent.script.asked) >= 3, timeout=10, what="retries")
    reason = bot.get("/readyz").json()["reason"]  # type: ignore[index]
    assert reason == "no lease: malformed answer: 'holds' is str, not a boolean"
    agent.script.raw = None
    agent.script.status = 500
    wait_until(lambda: "agent answered HTTP 500" in str(bot.get("/readyz").json()), timeout=10, what="the new reason")
    assert bot.get("/livez").status_code == 200  # liveness never depends on the agent
    assert discord.kinds() == []
    code, err = bot.stop()
    assert code == 0, err
    assert err.count("malformed answer: 'holds' is str") == 1  # one line per new reason, not one per retry


def test_without_a_lease_url_the_bot_connects_as_before_and_says_so_once(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord
) -> None:
    bot = start_bot()
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=15, what="ready")
    assert bot.get("/readyz").json()["lease"]["aware"] is False  # type: ignore[index]
    _ask_site(discord, expect_answer=True)
    code, err = bot.stop()
    assert code == 0, err
    assert err.count("not lease-aware") == 1


def test_every_shard_asks_before_its_own_identify(
    start_bot: Callable[..., BotProcess], discord: FakeDiscord, agent: LeaseAgent
) -> None:
    agent.script.grant(epoch=2, fresh_for_s=30)
    bot = start_bot(HFO_BOT_LEASE_URL=agent.url, SHARD_COUNT="2", SHARDS_PER_POD="2", HFO_BOT_LEASE_CHECK_S="30")
    wait_until(lambda: discord.count("IDENTIFY") == 2, timeout=20, what="both shards identified")
    wait_until(lambda: bot.get("/readyz").status_code == 200, timeout=15, what="ready")
    code, err = bot.stop()
    assert code == 0, err
    assert err.count("sending IDENTIFY: lease of epoch 2") == 2
    # start-up check, then one request right before each shard's IDENTIFY (renewal is 30 s away)
    assert len(agent.script.asked) >= 3
