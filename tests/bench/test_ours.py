"""Our design replayed through the real engine: what a user lives through on each kind of trace."""

from __future__ import annotations

import random

import pytest
from failover import boot, metrics, ours, policies, traces
from failover.traces import LEAD_S
from failover.world import EC2_CODE, LEASE_CODE
from hfo_watchdog.core.model import InstanceState

BOOT = boot.load()
DEFAULT, SPEED = policies.DEFAULT, policies.SPEED
PRICE = BOOT.price


def trace(name: str) -> traces.Trace:
    return traces.make(name, random.Random(0))


def replay(policy, name, tick_phase=0, hb_phase=0, **kw):
    run = ours.simulate(policy, BOOT, trace(name), tick_phase=tick_phase, hb_phase=hb_phase, **kw)
    return run, metrics.figures(run, PRICE)


def first_on(series, after: int) -> int:
    return next(t for t in range(after, len(series)) if series[t])


@pytest.mark.parametrize("tick_phase", [0, 17, 42, 59])
@pytest.mark.parametrize("hb_phase", [0, 3, 9])
def test_a_clean_outage_costs_detection_plus_boot_plus_a_short_handback(tick_phase, hb_phase):
    run, f = replay(DEFAULT, "outage-10m", tick_phase, hb_phase)
    q = DEFAULT.policy
    # Detection: 3 failed probes AND 180 s of heartbeat silence, seen at a tick.
    assert q.down_heartbeat_s - q.heartbeat_interval_s <= f.decision_s <= q.down_heartbeat_s + DEFAULT.tick_s
    first, *rest = metrics.downtime_spans(run)
    # Bot back on the standby exactly one boot after the decision: the lease already names the
    # standby, so its agent's first heartbeat starts the bot.
    assert first == (LEAD_S, LEAD_S + f.decision_s + BOOT.our_critical_path_s)
    assert f.back_s == f.decision_s + BOOT.our_critical_path_s
    # The handback is one gap of seconds (standby stops, then the laptop starts), never an overlap.
    assert len(rest) == 1
    gap = rest[0][1] - rest[0][0]
    assert 0 < gap <= 2 * q.heartbeat_interval_s + BOOT.bot_stop_s + BOOT.bot_start_s
    assert f.downtime_s == f.back_s + gap
    assert f.two_bots_s == 0 and run.lease_overlap_s == 0
    assert f.false_failovers == 0 and f.ec2_starts == 1 and len(run.ec2_stops) == 1
    assert run.ec2[-1] == EC2_CODE[InstanceState.STOPPED] and run.lease[-1] == LEASE_CODE["primary"]
    assert run.laptop_bot[-1] == 1 and run.standby_bot[-1] == 0


def test_the_failover_is_the_engines_own_decision_with_its_reasons():
    run, _ = replay(DEFAULT, "outage-10m")
    failover = next(t for t in run.transitions if t.to_phase == "failing_over")
    assert failover.t == run.failovers[0]
    assert failover.from_phase == "suspect" and failover.lease == "standby" and failover.epoch == 2
    # The probe at the outage's first second failed too: 4 in a row by the time silence hit 180 s.
    assert failover.reason == "probe failed 4 times in a row (connect_timeout)"
    assert [t.to_phase for t in run.transitions] == [
        "suspect",
        "failing_over",
        "on_standby",
        "recovering",
        "handing_back",
        "healthy",
    ]


def test_the_speed_profile_decides_within_its_shorter_windows():
    q = SPEED.policy
    for tick_phase in (0, 30, 59):
        _, f = replay(SPEED, "outage-10m", tick_phase, 2)
        assert q.down_heartbeat_s - q.heartbeat_interval_s <= f.decision_s <= q.down_heartbeat_s + SPEED.tick_s


def test_every_run_starts_settled_on_the_laptop():
    run, _ = replay(DEFAULT, "outage-2m", tick_phase=0, hb_phase=7)
    assert all(run.laptop_bot[:LEAD_S]) and not any(run.standby_bot[:LEAD_S])
    assert set(run.lease[:LEAD_S]) == {LEASE_CODE["primary"]} and set(run.epoch[:LEAD_S]) == {1}
    assert not [t for t in run.transitions if t.t < LEAD_S] and run.ec2_starts == []


def test_a_two_minute_outage_never_fails_over_and_costs_the_outage_plus_a_restart():
    _, f = replay(DEFAULT, "outage-2m", hb_phase=4)
    assert f.decision_s is None and f.ec2_starts == 0
    # Back: the fresh agent heartbeats at once, hears its lease, starts the bot.
    assert f.downtime_s == 120 + BOOT.bot_start_s


def test_a_funnel_outage_alone_never_fails_over():
    run, f = replay(DEFAULT, "funnel-only-30m")
    assert f.decision_s is None and f.ec2_starts == 0 and f.downtime_s == 0 and f.two_bots_s == 0
    probe_down = ours.PROBE_SIGNALS.index("down")
    assert probe_down in run.probe_signal  # the engine did see the probe down ...
    assert all(t.lease == "primary" for t in run.transitions)  # ... and kept the lease home


def test_a_heartbeat_path_outage_fences_the_laptop_and_does_not_fail_over():
    """The price of the lease: cut off from AWS, the laptop stops its bot once its lease runs out,
    and the watchdog, hearing the probe, never fails over (degraded). The bot is down until the
    path heals."""
    run, f = replay(DEFAULT, "heartbeat-only-30m", hb_phase=5)
    q = DEFAULT.policy
    assert f.decision_s is None and f.ec2_starts == 0
    stopped = next(t for t in range(LEAD_S, run.trace.duration) if not run.laptop_bot[t])
    assert LEAD_S + q.lease_ttl_s - q.heartbeat_interval_s <= stopped <= LEAD_S + q.lease_ttl_s + BOOT.bot_stop_s
    back = first_on(run.laptop_bot, stopped)
    assert LEAD_S + 1800 <= back <= LEAD_S + 1800 + q.heartbeat_interval_s + BOOT.bot_start_s
    assert f.downtime_s == back - stopped


def test_an_offline_laptop_has_stopped_its_bot_before_the_standby_runs_one():
    run, f = replay(DEFAULT, "offline-10m", tick_phase=11, hb_phase=6)
    assert f.two_bots_s == 0 and run.lease_overlap_s == 0 and f.false_failovers == 0
    assert f.decision_s is not None
    # The laptop's agent self-fenced long before the decision (its own bot is unreachable anyway).
    assert run.standby_bot[LEAD_S + int(f.decision_s)] == 0


def test_a_laptop_back_during_the_failover_waits_for_the_handback():
    run, f = replay(DEFAULT, "return-mid-failover", tick_phase=30)
    assert f.decision_s is not None and f.decision_s < 240  # decided before the laptop came back
    standby_up = first_on(run.standby_bot, LEAD_S)
    assert standby_up > LEAD_S + 240  # the standby was still booting when the laptop returned
    assert not any(run.laptop_bot[LEAD_S:standby_up])  # the laptop's agent heard the lease and waited
    assert f.two_bots_s == 0 and f.false_failovers == 0
    assert run.laptop_bot[-1] == 1 and run.ec2[-1] == EC2_CODE[InstanceState.STOPPED]


def test_a_sleeping_laptop_wakes_with_a_lease_it_still_believes_fresh():
    """hfo_site measures the lease on time.monotonic, which stands still while Linux is suspended:
    the frozen bot resumes next to the standby's until the agent's next heartbeat answer."""
    run, f = replay(DEFAULT, "sleep-10m", tick_phase=30, hb_phase=5)
    wake = LEAD_S + 600
    assert f.decision_s is not None and run.standby_bot[wake] == 1
    assert run.laptop_bot[wake] == 1  # the frozen bot is back at once
    assert run.lease_overlap_s > 0
    assert 0 < f.two_bots_s <= DEFAULT.policy.heartbeat_interval_s + BOOT.bot_stop_s


def test_an_agent_on_a_clock_that_counts_sleep_fences_at_once_on_waking():
    run, f = replay(DEFAULT, "sleep-10m", tick_phase=30, hb_phase=5, agent_clock="boottime")
    assert run.lease_overlap_s == 0
    # What is left is the bot's own stop: it thawed running, and its agent stops it at once.
    assert 0 < f.two_bots_s <= BOOT.bot_stop_s


@pytest.mark.parametrize("policy", [DEFAULT, SPEED], ids=lambda p: p.name)
def test_never_two_bots_nor_two_leases_on_any_trace_but_a_sleep(policy):
    for name in traces.CATALOGUE:
        if name == "sleep-10m":
            continue
        for run_no in range(2):
            rng = random.Random(f"test:{name}:{run_no}")
            tr = traces.make(name, rng)
            interval = int(policy.policy.heartbeat_interval_s)
            run = ours.simulate(
                policy, BOOT, tr, tick_phase=rng.randrange(policy.tick_s), hb_phase=rng.randrange(interval)
            )
            f = metrics.figures(run, PRICE)
            assert (name, run.lease_overlap_s, f.two_bots_s) == (name, 0, 0)
            assert f.false_failovers == 0


def test_out_of_range_phases_and_clocks_are_refused():
    tr = trace("outage-2m")
    with pytest.raises(ValueError, match="tick_phase 60 is out of range: 0-59 s"):
        ours.simulate(DEFAULT, BOOT, tr, tick_phase=60)
    with pytest.raises(ValueError, match="hb_phase 10 is out of range: 0-9 s"):
        ours.simulate(DEFAULT, BOOT, tr, hb_phase=10)
    with pytest.raises(ValueError, match="agent_clock 'wall' must be one of: monotonic, boottime"):
        ours.simulate(DEFAULT, BOOT, tr, agent_clock="wall")
