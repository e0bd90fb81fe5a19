"""The figures' definitions, on hand-built timelines."""

from __future__ import annotations

import pytest
from failover import boot, metrics, traces
from failover.world import Run

PRICE = boot.load().price


def timeline(laptop_bot: str, standby_bot: str, *, outage=(2, 3), failovers=(), billed_s=0, running_s=0) -> Run:
    """A run whose bots follow the strings ('1' answering, '.' not), on a trace with one laptop
    outage [start, start + length)."""
    start, length = outage
    tr = traces.build("t", "t", [traces.Outage(start, length, ("laptop",))], tail_s=len(laptop_bot) - start - length)
    run = Run.empty("p", tr)
    run.laptop_bot[:] = bytes(c == "1" for c in laptop_bot)
    run.standby_bot[:] = bytes(c == "1" for c in standby_bot)
    run.failovers = list(failovers)
    run.billed_s, run.running_s = billed_s, running_s
    return run


def test_downtime_counts_every_second_without_a_bot_including_the_laptops_own_outage():
    run = timeline("11.....111", "....111...", outage=(2, 5))
    assert metrics.downtime_spans(run) == [(2, 4)]
    f = metrics.figures(run, PRICE)
    assert f.downtime_s == 2 and f.two_bots_s == 0


def test_two_bots_counts_the_overlap():
    f = metrics.figures(timeline("111111....", "...1111111", outage=(6, 2)), PRICE)
    assert f.two_bots_s == 3 and f.downtime_s == 0 and f.back_s is None


def test_decision_and_bot_back_are_measured_from_the_first_incident():
    run = timeline("11........", ".....11111", outage=(2, 8), failovers=[1, 4])  # a failover before the incident
    f = metrics.figures(run, PRICE)
    assert f.decision_s == 2  # the first one at or after the incident
    assert f.back_s == 3 and f.downtime_s == 3


def test_a_failover_while_the_laptop_was_fine_is_false():
    run = timeline("1111111111", "..........", outage=(5, 2), failovers=[3, 5])
    f = metrics.figures(run, PRICE)
    assert f.false_failovers == 1  # at 3 the laptop was up; at 5 it was down


def test_cost_uses_the_billed_seconds():
    f = metrics.figures(timeline("1111111111", "..........", billed_s=3600, running_s=1800), PRICE)
    assert f.cost_usd == pytest.approx(PRICE.usd_per_hour) and f.ec2_running_min == 30


def test_mean_averages_counts_and_takes_decisions_from_the_runs_that_have_one():
    a = metrics.Figures(100, 180, 200, 1, 1, 10, 0.01, 5, worst_downtime_s=200, decided_runs=1, back_runs=1)
    b = metrics.Figures(None, None, 100, 0, 0, 0, 0.0, 0, worst_downtime_s=100)
    m = metrics.mean([a, b])
    assert (m.decision_s, m.decided_runs, m.back_s, m.back_runs, m.runs) == (100, 1, 180, 1, 2)
    assert (m.downtime_s, m.worst_downtime_s, m.false_failovers, m.two_bots_s) == (150, 200, 0.5, 2.5)
    with pytest.raises(ValueError, match="no runs to average"):
        metrics.mean([])
