"""The ledger analysis: parsing, runs, downtime and overlap, on hand-written ledgers for the exact
figures, and on ledgers written by real bot processes (the overlap check must catch two bots)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hfo_drill.ledger import LedgerError, LedgerTail, Run, by_instance, moves, parse, runs, summarize
from testsupport.net import wait_until

BOT = [sys.executable, "-m", "hfo_drill.bot"]


def ledger(*rows: tuple[float, str, str, int]) -> str:
    return "".join(f"{at:.3f} {site} {event} {pid}\n" for at, site, event, pid in rows)


def beats(site: str, pid: int, start: float, end: float, *, stop: bool) -> list[tuple[float, str, str, int]]:
    rows = [(start, site, "start", pid)]
    t = start + 1
    while t <= end:
        rows.append((t, site, "run", pid))
        t += 1
    if stop:
        rows.append((end + 0.2, site, "stop", pid))
    return rows


# --- parsing


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1.0 primary start", "ledger line 1: expected '<time> <site> <event> <pid> [<instance>] [count=<n>]'"),
        (
            "1.0 primary start 12 bot-a extra",
            "ledger line 1: expected '<time> <site> <event> <pid> [<instance>] [count=<n>]'",
        ),
        ("1.0 primary start 12 Bot_A", "ledger line 1: instance 'Bot_A' is not a lowercase DNS label"),
        ("soon primary start 12", "ledger line 1: time 'soon' is not a number"),
        ("1.0 laptop start 12", "ledger line 1: site 'laptop' is not one of primary, standby"),
        ("1.0 primary pause 12", "ledger line 1: event 'pause' is not one of start, run, stop"),
        ("1.0 primary start -3", "ledger line 1: pid '-3' is not a positive integer"),
    ],
)
def test_malformed_lines_are_refused_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(LedgerError, match=re.escape(message)):
        parse(line + "\n")


def test_a_partial_last_line_is_left_for_later() -> None:
    records = parse("1.000 primary start 7\n2.000 primary run 7\n3.0 prim")
    assert [(r.at, r.event) for r in records] == [(1.0, "start"), (2.0, "run")]


def test_runs_group_lines_by_process_and_tell_stopped_from_killed() -> None:
    text = ledger(*beats("primary", 10, 0, 5, stop=False), *beats("standby", 20, 9, 15, stop=True))
    assert runs(parse(text)) == [
        Run("primary", 10, 0.0, 5.0, False),
        Run("standby", 20, 9.0, 15.2, True),
    ]


# --- figures


def test_failover_and_handback_gaps_are_measured_from_last_record_to_next_start() -> None:
    text = ledger(
        *beats("primary", 10, 0, 10, stop=False),  # killed: last record at 10
        *beats("standby", 20, 22.5, 40, stop=True),  # stopped at 40.2
        *beats("primary", 30, 41.7, 50, stop=False),
    )
    s = summarize(parse(text), period_s=1.0)
    assert [(g.before, g.after, round(g.seconds, 3)) for g in s.gaps] == [
        ("primary", "standby", 12.5),
        ("standby", "primary", 1.5),
    ]
    assert s.downtime_s == pytest.approx(14.0)
    assert s.overlap_s == 0
    assert s.window == (0.0, pytest.approx(49.7))  # the ledger's last line
    assert s.starts == {"primary": 2, "standby": 1}


def test_a_killed_bot_counts_one_period_past_its_last_record_for_overlap() -> None:
    # The primary's last record is at 10.0; killed, it may have lived until 11.0. A standby
    # starting at 10.4 may have overlapped it by 0.6 s: counted. Downtime takes the other side
    # (it may have died right after its last record): 0.4 s. Both figures are upper bounds.
    text = ledger(*beats("primary", 10, 0, 10, stop=False), *beats("standby", 20, 10.4, 15, stop=False))
    s = summarize(parse(text), period_s=1.0)
    assert s.overlap_s == pytest.approx(0.6)
    assert [round(g.seconds, 3) for g in s.gaps] == [0.4]


def test_an_orderly_stop_ends_exactly_at_its_stop_line() -> None:
    text = ledger(*beats("standby", 20, 0, 10, stop=True), *beats("primary", 30, 10.3, 15, stop=False))
    s = summarize(parse(text), period_s=1.0)
    assert s.overlap_s == 0
    assert [round(g.seconds, 3) for g in s.gaps] == [0.1]


def test_an_empty_ledger_has_no_figures() -> None:
    s = summarize([], period_s=1.0)
    assert (s.runs, s.gaps, s.overlaps, s.downtime_s, s.overlap_s) == ((), (), (), 0, 0)


# --- with real bots


def _bot(path: Path, site: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*BOT, "--site", site, "--ledger", str(path), "--period", "0.1"])


def _count(path: Path, site: str) -> int:
    return sum(1 for r in LedgerTail(str(path)).poll_all() if r.site == site) if path.exists() else 0


def test_real_bots_one_after_the_other_leave_a_gap_and_no_overlap(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    first = _bot(path, "primary")
    wait_until(lambda: _count(path, "primary") >= 3, timeout=20, what="primary bot lines")
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=10)
    second = _bot(path, "standby")
    try:
        wait_until(lambda: _count(path, "standby") >= 3, timeout=20, what="standby bot lines")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
    s = summarize(parse(path.read_text()), period_s=0.1)
    assert s.overlap_s == 0
    assert [(g.before, g.after) for g in s.gaps] == [("primary", "standby")]
    assert 0 < s.downtime_s < 10


def test_real_bots_running_together_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    bots = [_bot(path, "primary"), _bot(path, "standby")]
    try:
        wait_until(lambda: _count(path, "primary") >= 5 and _count(path, "standby") >= 5, timeout=20, what="both bots")
    finally:
        for bot in bots:
            bot.kill()
            bot.wait(timeout=10)
    s = summarize(parse(path.read_text()), period_s=0.1)
    assert s.overlap_s >= 0.3
    assert s.overlaps


def test_the_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    tail = LedgerTail(str(path))
    assert tail.poll() == []  # no file yet
    path.write_text("1.000 primary start 7\n2.000 primary ru")
    assert [r.event for r in tail.poll()] == ["start"]
    with path.open("a") as f:
        f.write("n 7\n3.000 primary stop 7\n")
    assert [r.event for r in tail.poll()] == ["run", "stop"]
    assert tail.poll() == []
    assert tail.running(now=3.1, period_s=1.0) == []  # stopped


# --- several bot instances on one ledger


def named(instance: str, rows: list[tuple[float, str, str, int]]) -> str:
    return "".join(f"{at:.3f} {site} {event} {pid} {instance}\n" for at, site, event, pid in rows)


def test_each_instance_gets_its_own_failover_handback_and_overlap() -> None:
    """bot-a moves 10 s -> 14 s and back; bot-b moves later (16 s), so the site as a whole shows a shorter
    gap than bot-b alone: per-instance figures are the ones a user of bot-b sees."""
    text = named("bot-a", [*beats("primary", 10, 0, 10, stop=False), *beats("standby", 20, 14, 30, stop=True)]) + named(
        "bot-b", [*beats("primary", 11, 0, 10, stop=False), *beats("standby", 21, 16, 30, stop=True)]
    )
    text += named("bot-a", beats("primary", 30, 31, 40, stop=False)) + named(
        "bot-b", beats("primary", 31, 31, 40, stop=False)
    )
    records = parse(text)
    assert {r.instance for r in records} == {"bot-a", "bot-b"}
    per = by_instance(records, period_s=1.0)
    assert sorted(per) == ["bot-a", "bot-b"]
    assert [round(g.seconds, 1) for g in per["bot-a"].gaps] == [4.0, 0.8]
    assert [round(g.seconds, 1) for g in per["bot-b"].gaps] == [6.0, 0.8]
    assert per["bot-a"].overlap_s == per["bot-b"].overlap_s == 0
    assert [round(g.seconds, 1) for g in summarize(records, period_s=1.0).gaps] == [4.0, 0.8]
    assert {r.instance for r in runs(records)} == {"bot-a", "bot-b"}


def test_one_instance_on_both_sites_is_an_overlap_of_that_instance_only() -> None:
    text = named("bot-a", [*beats("primary", 10, 0, 10, stop=False), *beats("standby", 20, 14, 30, stop=True)])
    text += named("bot-b", [*beats("primary", 11, 0, 20, stop=False), *beats("standby", 21, 15, 30, stop=True)])
    per = by_instance(parse(text), period_s=1.0)
    assert per["bot-a"].overlap_s == 0
    assert per["bot-b"].overlap_s == pytest.approx(6.0)  # 15 .. 21 (killed: one period past its last line)
    # the site-wide check sees any bot on both sites at once
    assert summarize(parse(text), period_s=1.0).overlap_s == pytest.approx(7.0)  # 14 .. 21


def test_lines_without_an_instance_still_parse() -> None:
    records = parse("1.000 primary start 7\n2.000 primary run 7 bot-a\n")
    assert [r.instance for r in records] == ["", "bot-a"]


def test_the_tail_tells_which_instance_runs_where(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    path.write_text(
        named("bot-a", beats("primary", 10, 0, 3, stop=False)) + named("bot-b", beats("standby", 11, 0, 3, stop=True))
    )
    tail = LedgerTail(str(path))
    tail.poll()
    assert tail.running_instances(3.5, 1.0) == {("primary", "bot-a")}


# --- the counter (state handoff)


def test_counts_are_read_and_a_bad_count_is_refused() -> None:
    records = parse("1.0 primary start 12 bot-a count=7\n2.0 primary run 12 count=8\n")
    assert [(r.instance, r.count) for r in records] == [("bot-a", 7), ("", 8)]
    with pytest.raises(LedgerError, match=re.escape("ledger line 1: count 'x' is not a non-negative integer")):
        parse("1.0 primary start 12 bot-a count=x\n")


def _counted(site: str, pid: int, start: float, end: float, first: int, *, stop: bool) -> str:
    """A run of instance bot-a, one line a second, counting from ``first``."""
    out, count, t = [], first, start
    while t <= end:
        out.append(f"{t:.3f} {site} {'start' if t == start else 'run'} {pid} bot-a count={count}")
        count, t = count + 1, t + 1
    if stop:
        out.append(f"{end + 0.2:.3f} {site} stop {pid} bot-a count={count - 1}")
    return "\n".join(out) + "\n"


def test_moves_measure_what_each_handoff_carried() -> None:
    """The laptop killed at count 11 (t=10) whose last upload held 8 (t=7): 3 counts, 3 s lost.
    The standby stopped in order at count 23: the laptop goes on from 23, nothing lost."""
    text = (
        _counted("primary", 10, 0, 10, 1, stop=False)
        + _counted("standby", 20, 24, 38, 9, stop=True)  # restored 8, counts 9..23
        + _counted("primary", 30, 40, 45, 24, stop=False)
    )
    failover, handback = moves(parse(text))
    assert (failover.before, failover.after, failover.planned) == ("primary", "standby", False)
    assert (failover.last, failover.restored, failover.lost) == (11, 8, 3)
    assert failover.lost_s == pytest.approx(3.0)
    assert (handback.before, handback.after, handback.planned) == ("standby", "primary", True)
    assert (handback.last, handback.restored, handback.lost, handback.lost_s) == (23, 23, 0, 0.0)


def test_a_count_saved_but_not_yet_written_is_no_loss_and_bots_without_counts_have_no_moves() -> None:
    text = _counted("primary", 10, 0, 3, 1, stop=False) + _counted("standby", 20, 10, 12, 6, stop=False)
    (move,) = moves(parse(text))
    assert (move.last, move.restored, move.lost) == (4, 5, 0)  # killed between saving 5 and its line
    assert moves(parse("1.0 primary start 12 bot-a\n5.0 standby start 13 bot-a\n")) == []
