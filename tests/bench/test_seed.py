"""The seed tutorial's watchdog: one probe every 5 minutes, start on one failure, stop on one
success, no lease. Exact timelines, computed from the probe schedule and the boot figures."""

from __future__ import annotations

import random

import pytest
from failover import boot, metrics, policies, seed, traces
from failover.traces import LEAD_S

BOOT = boot.load()
SEED = policies.SEED


def replay(name: str, tick_phase: int):
    run = seed.simulate(SEED, BOOT, traces.make(name, random.Random(0)), tick_phase=tick_phase)
    return run, metrics.figures(run, BOOT.price)


def next_probe(after: int, phase: int) -> int:
    return after + (phase - after) % SEED.tick_s


@pytest.mark.parametrize("phase", [0, 60, 149, 299])
def test_a_ten_minute_outage_fails_over_on_the_first_failed_probe_and_runs_two_bots_after(phase):
    run, f = replay("outage-10m", phase)
    start = next_probe(LEAD_S, phase)
    back = LEAD_S + 600
    assert run.ec2_starts == [start] and f.decision_s == start - LEAD_S
    standby_up = start + BOOT.ec2_start_s + BOOT.seed_bot_ready_s
    assert f.back_s == standby_up - LEAD_S and f.downtime_s == standby_up - LEAD_S
    # Stop on the first good probe after the laptop's return; until the shutdown has stopped the
    # standby's bot, both answer: no lease tells either to stop.
    stop = next_probe(back, phase)
    assert run.ec2_stops == [stop]
    assert f.two_bots_s == stop + BOOT.bot_stop_s - back
    assert f.false_failovers == 0


def test_an_outage_between_two_probes_goes_unnoticed():
    phase = (LEAD_S - 60) % SEED.tick_s  # probes 60 s before and 240 s after the laptop dies
    run, f = replay("outage-2m", phase)
    assert run.ec2_starts == [] and f.decision_s is None and f.downtime_s == 120


def test_a_funnel_outage_starts_the_standby_and_two_bots_answer_for_its_whole_length():
    phase = 0
    run, f = replay("funnel-only-30m", phase)
    start = next_probe(LEAD_S, phase)
    stop = next_probe(LEAD_S + 1800, phase)
    assert run.ec2_starts == [start] and run.ec2_stops == [stop]
    assert f.false_failovers == 1 and f.downtime_s == 0
    assert f.two_bots_s == stop + BOOT.bot_stop_s - (start + BOOT.ec2_start_s + BOOT.seed_bot_ready_s)
    assert f.ec2_running_min * 60 == stop - (start + BOOT.ec2_start_s)


def test_a_one_minute_outage_caught_by_a_probe_costs_an_ec2_cycle_and_two_bots():
    phase = LEAD_S % SEED.tick_s + 1  # a probe 1 s after the laptop dies
    tr = traces.build("x", "t", [traces.Outage(LEAD_S, 60, ("laptop",))])
    run = seed.simulate(SEED, BOOT, tr, tick_phase=phase)
    f = metrics.figures(run, BOOT.price)
    start, stop = LEAD_S + 1, LEAD_S + 1 + SEED.tick_s
    assert run.ec2_starts == [start] and run.ec2_stops == [stop]
    standby_up = start + BOOT.ec2_start_s + BOOT.seed_bot_ready_s  # after the laptop is back
    assert f.downtime_s == 60  # the standby came too late to help ...
    assert f.two_bots_s == stop + BOOT.bot_stop_s - standby_up  # ... but early enough to double
    assert f.cost_usd == BOOT.price.cost(stop - (start + BOOT.ec2_start_s))


def test_the_heartbeat_path_means_nothing_to_the_seed():
    run, f = replay("heartbeat-only-30m", 10)
    assert run.ec2_starts == [] and f.downtime_s == 0 and f.two_bots_s == 0


def test_flapping_funnel_makes_the_seed_start_ec2_again_and_again():
    tr = traces.make("flap-20", random.Random("seed-test"))
    run = seed.simulate(SEED, BOOT, tr, tick_phase=7)
    f = metrics.figures(run, BOOT.price)
    failed = [t for t, ok in run.probes if not ok]
    assert f.false_failovers == len(run.ec2_starts) >= 3
    assert set(run.ec2_starts) <= set(failed)
    assert f.two_bots_s > 0 and f.downtime_s == 0


def test_a_bad_phase_is_refused():
    with pytest.raises(ValueError, match="tick_phase 300 is out of range: 0-299 s"):
        seed.simulate(SEED, BOOT, traces.make("outage-2m", random.Random(0)), tick_phase=300)
