"""The drill's stand-in bot as a real process: what it writes while it runs, when it is stopped
and when it is killed, and how it refuses bad arguments."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hfo_drill.ledger import parse, summarize
from testsupport.lease_agent import AgentScript, lease_agent
from testsupport.net import wait_until

BOT = [sys.executable, "-m", "hfo_drill.bot"]


def lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def start(ledger: Path, site: str = "primary", period: str = "0.1") -> subprocess.Popen[bytes]:
    return subprocess.Popen([*BOT, "--site", site, "--ledger", str(ledger), "--period", period])


def test_records_start_then_a_line_per_period_with_site_and_pid(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    before = time.time()
    bot = start(ledger)
    try:
        wait_until(lambda: len(lines(ledger)) >= 6, timeout=20, what="six ledger lines")
    finally:
        bot.kill()
        bot.wait(timeout=10)
    records = lines(ledger)
    assert records[0][1:] == ["primary", "start", str(bot.pid)]
    assert all(r[1:] == ["primary", "run", str(bot.pid)] for r in records[1:])
    times = [float(r[0]) for r in records]
    assert before - 1 <= times[0] <= time.time()
    assert times == sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.05 and sorted(gaps)[len(gaps) // 2] < 0.5  # about one period apart


def test_sigterm_writes_a_stop_line_and_exits_0(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    bot = start(ledger, site="standby")
    wait_until(lambda: len(lines(ledger)) >= 2, timeout=20, what="bot running")
    stopped_at = time.time()
    bot.send_signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0
    last = lines(ledger)[-1]
    assert last[1:] == ["standby", "stop", str(bot.pid)]
    assert abs(float(last[0]) - stopped_at) < 2
    count = len(lines(ledger))
    time.sleep(0.3)
    assert len(lines(ledger)) == count  # nothing written after the stop


def test_a_named_instance_writes_its_name_on_every_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    bot = subprocess.Popen(
        [*BOT, "--site", "standby", "--ledger", str(ledger), "--period", "0.1", "--instance", "bot-b"]
    )
    wait_until(lambda: len(lines(ledger)) >= 3, timeout=20, what="bot running")
    bot.send_signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0
    records = lines(ledger)
    assert records[0][1:] == ["standby", "start", str(bot.pid), "bot-b"]
    assert records[-1][1:] == ["standby", "stop", str(bot.pid), "bot-b"]
    assert {r[4] for r in records} == {"bot-b"}
    assert {r.instance for r in parse(ledger.read_text())} == {"bot-b"}


def test_sigkill_leaves_no_stop_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    bot = start(ledger)
    wait_until(lambda: len(lines(ledger)) >= 2, timeout=20, what="bot running")
    bot.kill()
    bot.wait(timeout=10)
    assert all(r[2] != "stop" for r in lines(ledger))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "laptop"], "invalid choice: 'laptop'"),
        (["--site", "primary", "--period", "0"], "--period: must be from 0.05 to 60 seconds, got 0"),
        (["--site", "primary", "--period", "soon"], "--period: must be a number of seconds from 0.05 to 60"),
        (["--site", "primary", "--instance", "Bot A"], "--instance: must be a lowercase DNS label"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(tmp_path: Path, args: list[str], message: str) -> None:
    ledger = tmp_path / "ledger"
    done = subprocess.run([*BOT, "--ledger", str(ledger), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
    assert not ledger.exists()


def test_an_unwritable_ledger_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "ledger"
    done = subprocess.run(
        [*BOT, "--site", "primary", "--ledger", str(target)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert f"cannot open the ledger '{target}'" in done.stderr


# -- lease-aware (docs/kubernetes.md#lease-aware-bot): the exec backend's agent passes HFO_BOT_LEASE_URL ---------------
def start_leased(ledger: Path, url: str, period: str = "0.1", **env: str) -> subprocess.Popen[str]:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HFO_")},
        "HFO_BOT_LEASE_URL": url,
        "HFO_BOT_LEASE_CHECK_S": "0.5",
        **env,
    }
    return subprocess.Popen(
        [*BOT, "--site", "primary", "--ledger", str(ledger), "--period", period],
        env=full_env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_writes_nothing_until_its_agent_grants_the_lease(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with lease_agent(AgentScript(holds=False, fresh_for_s=0.0)) as agent:
        bot = start_leased(ledger, agent.url)
        try:
            wait_until(lambda: len(agent.script.asked) >= 3, timeout=20, what="the stand-in asking its agent")
            assert lines(ledger) == []
            agent.script.grant(epoch=2, fresh_for_s=30)
            wait_until(lambda: len(lines(ledger)) >= 3, timeout=20, what="the stand-in running")
        finally:
            bot.send_signal(signal.SIGTERM)
            _, err = bot.communicate(timeout=10)
    events = [r[2] for r in lines(ledger)]
    assert events[0] == "start" and set(events[1:-1]) == {"run"} and events[-1] == "stop"
    assert err.count("no lease: site primary does not hold the lease (epoch 1)") == 1


def test_a_thawed_stand_in_writes_nothing_until_the_lease_is_back(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with lease_agent(AgentScript(epoch=2, fresh_for_s=30)) as agent:
        bot = start_leased(ledger, agent.url)
        try:
            wait_until(lambda: len(lines(ledger)) >= 3, timeout=20, what="the stand-in running")
            bot.send_signal(signal.SIGSTOP)  # the laptop sleeps; the lease moves to the standby meanwhile
            try:
                time.sleep(0.3)
                frozen = len(lines(ledger))
                agent.script.withdraw(epoch=3)
                time.sleep(1.5)
            finally:
                bot.send_signal(signal.SIGCONT)
            time.sleep(1.5)
            assert len(lines(ledger)) == frozen, "the thawed stand-in ran without a lease"
            agent.script.grant(epoch=4)
            wait_until(lambda: len(lines(ledger)) >= frozen + 2, timeout=20, what="the stand-in running again")
        finally:
            bot.send_signal(signal.SIGTERM)
            _, err = bot.communicate(timeout=10)
    records = lines(ledger)
    assert records[frozen][2] == "start"  # a new run of the same process, after the gap
    summary = summarize(parse(ledger.read_text()), period_s=0.1)
    assert len(summary.runs) == 2 and {r.pid for r in summary.runs} == {bot.pid}
    gap = summary.gaps[0]
    assert gap.seconds > 2.5  # frozen 1.8 s, then refused until the lease came back
    assert "pause detected: the process did not run for" in err
    assert "no lease: site primary does not hold the lease (epoch 3)" in err


def test_a_bad_lease_url_exits_2(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    bot = start_leased(ledger, "hfo-site-lease:9102/v1/lease")
    _, err = bot.communicate(timeout=30)
    assert bot.returncode == 2
    assert "HFO_BOT_LEASE_URL='hfo-site-lease:9102/v1/lease' must start with http:// or https://" in err
    assert not ledger.exists()


def test_a_stop_that_arrives_with_the_thaw_does_not_extend_the_run(tmp_path: Path) -> None:
    """The agent stopped the workload while the laptop slept: SIGTERM waits for the thaw. The run ended at the
    bot's last line before the freeze; a `stop` line stamped at the thaw would claim it served meanwhile."""
    ledger = tmp_path / "ledger"
    with lease_agent(AgentScript(epoch=2, fresh_for_s=30)) as agent:
        bot = start_leased(ledger, agent.url)
        wait_until(lambda: len(lines(ledger)) >= 3, timeout=20, what="the stand-in running")
        bot.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        before = lines(ledger)
        bot.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        bot.send_signal(signal.SIGCONT)
        _, err = bot.communicate(timeout=10)
    assert bot.returncode == 0
    assert lines(ledger) == before and before[-1][2] == "run"
    assert "stopped after a pause: no stop line" in err


def test_with_a_state_directory_the_counter_continues_across_processes(tmp_path: Path) -> None:
    """The counter a bot keeps in HFO_STATE_DIR: saved before each line, every start/run line adds one
    and carries it, the stop line carries the last one; the next bot on that directory goes on from it."""
    ledger, state = tmp_path / "ledger", tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "HFO_STATE_DIR": str(state)}
    env.pop("HFO_BOT_LEASE_URL", None)
    first = subprocess.Popen([*BOT, "--site", "primary", "--ledger", str(ledger), "--period", "0.05"], env=env)
    wait_until(lambda: len(lines(ledger)) >= 5, timeout=20, what="five lines")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    counts = [r.count for r in parse(ledger.read_text())]
    assert counts[:-1] == list(range(1, len(counts)))  # one per line, from 1
    assert counts[-1] == counts[-2] == int((state / "counter").read_text())  # the stop line adds none
    second = subprocess.Popen([*BOT, "--site", "standby", "--ledger", str(ledger), "--period", "0.05"], env=env)
    wait_until(lambda: len(lines(ledger)) >= len(counts) + 2, timeout=20, what="the second bot's lines")
    second.kill()
    second.wait(timeout=10)
    after = [r for r in parse(ledger.read_text()) if r.pid == second.pid]
    assert after[0].event == "start" and after[0].count == counts[-1] + 1


def test_a_bad_counter_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("twelve")
    env = {**os.environ, "HFO_STATE_DIR": str(tmp_path)}
    env.pop("HFO_BOT_LEASE_URL", None)
    done = subprocess.run(
        [*BOT, "--site", "primary", "--ledger", str(tmp_path / "ledger")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot read its counter" in done.stderr and "'twelve'" in done.stderr
    assert not (tmp_path / "ledger").exists() or not (tmp_path / "ledger").read_text()
