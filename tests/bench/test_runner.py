"""Replaying every trace under every policy: like for like, and deterministic from one seed."""

from __future__ import annotations

import pytest
from failover import boot, policies, runner

BOOT = boot.load()
ALL = list(policies.POLICIES.values())


def test_the_same_seed_gives_the_same_table():
    a = runner.run_all(BOOT, ALL, ["flap-20", "outage-10m"], runs=2, seed_value=7)
    b = runner.run_all(BOOT, ALL, ["flap-20", "outage-10m"], runs=2, seed_value=7)
    assert [(r.trace.name, r.policy, r.figures) for r in a] == [(r.trace.name, r.policy, r.figures) for r in b]


def test_another_seed_draws_another_flapping_history():
    a = runner.run_all(BOOT, [policies.SEED], ["flap-20"], runs=1, seed_value=1)
    b = runner.run_all(BOOT, [policies.SEED], ["flap-20"], runs=1, seed_value=2)
    assert a[0].trace.funnel != b[0].trace.funnel
    assert a[0].figures != b[0].figures


def test_every_policy_replays_the_same_trace_in_a_run():
    trace, phases = runner.draw(3, "flap-5", 0)
    again, same = runner.draw(3, "flap-5", 0)
    assert trace == again and phases == same
    runs = [runner.replay(p, BOOT, trace, phases) for p in ALL]
    assert {id(r.trace) for r in runs} == {id(trace)}


def test_rows_come_per_trace_then_policy_and_average_the_runs():
    rows = runner.run_all(BOOT, ALL, ["outage-10m", "funnel-only-30m"], runs=3, seed_value=1)
    assert [(r.trace.name, r.policy) for r in rows] == [
        (t, p.name) for t in ("outage-10m", "funnel-only-30m") for p in ALL
    ]
    assert {r.figures.runs for r in rows} == {3}
    assert all(r.lease_overlap_s == 0 for r in rows)


def test_runs_out_of_range_are_refused():
    with pytest.raises(ValueError, match="runs 0 is out of range: 1-100"):
        runner.run_all(BOOT, ALL, ["outage-2m"], runs=0)
