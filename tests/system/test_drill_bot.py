"""The drill's stand-in bot as a real process: what it writes while it runs, when it is stopped
and when it is killed, and how it refuses bad arguments."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
