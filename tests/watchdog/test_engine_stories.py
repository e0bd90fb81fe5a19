"""Scripted stories on the simulator with the default configuration (60 s ticks, down after
3 failed probes AND 180 s without heartbeat, lease TTL 60 s + 30 s grace, cooldown 900 s):
the timelines a user lives through."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hfo_watchdog.core.model import InstanceState, LeaseSite, Mode, Phase, Policy
from watchdog.sim import Command, Segment, Sim, Timing

POLICY = Policy()


def first(sim: Sim, to: str, after: int = -1) -> int:
    return next(t for t, _, phase, _, _ in sim.transitions if phase == to and t > after)


def when_running(sim: Sim, site: str, after: int = -1) -> int:
    col = 1 if site == "primary" else 2
    return next(t for t, *w in sim.timeline if w[col - 1] == "running" and t > after)


def when_stopped(sim: Sim, site: str, after: int = -1) -> int:
    col = 1 if site == "primary" else 2
    return next(t for t, *w in sim.timeline if w[col - 1] == "stopped" and t > after)


def gap_after(sim: Sim, t0: int) -> int:
    """Seconds, from t0, during which neither site's workload runs (the handover gap)."""
    down = None
    for t, pw, sw in sim.timeline:
        if t < t0:
            continue
        running = "running" in (pw, sw)
        if not running and down is None:
            down = t
        if running and down is not None:
            return t - down
    raise AssertionError("the workload never came back")


def anomaly_keys(sim: Sim) -> list[str]:
    return [n.key for _, n in sim.notifications if not n.key.startswith("transition:")]


def test_clean_outage_fails_over_then_hands_back():
    sim = Sim(POLICY, segments=[Segment("up", 600), Segment("dead", 1200)]).run(3000)
    assert sim.phases == ["healthy", "suspect", "failing_over", "on_standby", "recovering", "handing_back", "healthy"]
    # Last heartbeat at 590; 3rd failed probe at 720; 180 s of silence at 770: the 780 tick fails over.
    assert first(sim, "failing_over") == 780
    assert [(t, site, epoch) for t, _, _, site, epoch in sim.transitions if site != "primary" or epoch > 1] == [
        (780, "standby", 2),
        (900, "standby", 2),
        (1860, "standby", 2),
        (2040, "none", 3),
        (2060, "primary", 4),
    ]
    assert sim.ec2.starts == [780] and sim.ec2.stops == [2060]
    assert sim.violations == []
    # The bot is back on the standby about 4 minutes after the laptop died ...
    assert when_running(sim, "standby") - 600 <= 300
    # ... and the handback gap is seconds, not a tick (the standby's heartbeat completes it).
    assert gap_after(sim, 2040) <= 30
    assert sim.state.lease.site == LeaseSite.PRIMARY and sim.ec2.state == InstanceState.STOPPED
    assert anomaly_keys(sim) == []
    transition_notes = [n.key for _, n in sim.notifications if n.key.startswith("transition:")]
    assert len(transition_notes) == len(sim.transitions) == 6


def test_funnel_outage_alone_never_fails_over():
    sim = Sim(POLICY, segments=[Segment("up", 300), Segment("funnel_out", 1800)]).run(2700)
    assert {site for *_, site, _ in sim.transitions} == {"primary"}
    assert sim.phases == ["healthy", "suspect", "healthy"]
    assert sim.ec2.starts == []
    # The bot never stopped: one start at boot, running ever since.
    assert [w for _, w, _ in sim.timeline] == ["starting", "running"]
    assert anomaly_keys(sim) == ["degraded:probe", "degraded:probe:resolved"]


def test_heartbeat_path_outage_fences_the_primary_but_never_fails_over():
    sim = Sim(POLICY, segments=[Segment("up", 300), Segment("heartbeat_out", 900)]).run(1800)
    assert sim.ec2.starts == [] and sim.state.lease.site == LeaseSite.PRIMARY
    assert {site for *_, site, _ in sim.transitions} == {"primary"}
    # Cut off from AWS, the agent stops its bot once its lease runs out (self-fencing) ...
    stopped = when_stopped(sim, "primary", after=300)
    assert 300 + POLICY.lease_ttl_s - POLICY.heartbeat_interval_s <= stopped <= 300 + POLICY.lease_ttl_s + 5
    # ... and runs it again as soon as it hears the lease.
    assert 1200 <= when_running(sim, "primary", after=stopped) <= 1200 + 20
    assert anomaly_keys(sim) == ["degraded:heartbeat", "degraded:heartbeat:resolved"]


def test_partitioned_primary_has_stopped_its_bot_before_the_standby_starts_one():
    sim = Sim(POLICY, segments=[Segment("up", 600), Segment("partitioned", 1200)]).run(3000)
    assert sim.violations == []
    primary_stop = when_stopped(sim, "primary", after=600)
    standby_start = next(t for t, _, sw in sim.timeline if sw == "starting")
    assert primary_stop < 700 < first(sim, "failing_over") < standby_start
    # Healed, it keeps its bot stopped while the standby holds the lease, then takes it back.
    assert first(sim, "handing_back") > 1800
    assert sim.state.lease.site == LeaseSite.PRIMARY
    assert sim.primary.workload == "running" and sim.standby.workload == "stopped"


def test_short_flaps_never_fail_over_and_notify_at_most_once_per_min_state():
    segs = [Segment("dead" if i % 2 else "up", 120) for i in range(60)]
    sim = Sim(POLICY, segments=segs).run(7200)
    assert {site for *_, site, _ in sim.transitions} == {"primary"}
    assert sim.ec2.starts == []
    times = [t for t, *_ in sim.transitions]
    assert times, "the flaps must be noticed"
    assert all(b - a >= POLICY.min_state_s for a, b in itertools.pairwise(times))


def test_long_flaps_fail_over_but_start_ec2_at_most_once_per_cooldown():
    segs = [Segment("dead" if i % 2 else "up", 400) for i in range(24)]
    sim = Sim(POLICY, segments=segs).run(9600 + 1800)
    starts = sim.ec2.starts
    assert len(starts) >= 2
    assert all(b - a >= POLICY.start_cooldown_s for a, b in itertools.pairwise(starts))
    assert "start_blocked_by_cooldown" in anomaly_keys(sim)
    assert sim.violations == []
    assert sim.state.phase == Phase.HEALTHY and sim.state.lease.site == LeaseSite.PRIMARY


def test_drill_moves_to_the_standby_and_back_with_short_gaps():
    sim = Sim(POLICY, commands=[Command(at=600, mode=Mode.DRILL, drill_s=1800)]).run(4000)
    assert sim.violations == [] and sim.mode_errors == []
    leases = [(site, epoch) for *_, site, epoch in sim.transitions]
    assert leases == [
        ("primary", 1),  # healthy -> failing_over: the standby boots first
        ("none", 2),  # the standby reports ready
        ("standby", 3),  # the primary acknowledged, its bot stopped
        ("standby", 3),  # -> on_standby
        ("standby", 3),  # drill ended: -> recovering
        ("none", 4),  # -> handing_back
        ("primary", 5),  # the standby acknowledged
    ]
    move = next(t for t, *_, site, _ in sim.transitions if site == "none")
    assert gap_after(sim, move) <= 30
    back = first(sim, "handing_back")
    assert back >= 600 + 1800
    assert gap_after(sim, back) <= 30
    assert sim.state.mode == Mode.AUTO and sim.ec2.starts == [600]
    assert sim.ec2.state in (InstanceState.STOPPED, InstanceState.STOPPING)


def test_standby_stopped_by_hand_during_a_handback_is_not_trusted_while_stopping():
    """`stopping` is not proof the bot is down: the lease waits for `stopped` (or the TTL bound)."""
    policy = replace(POLICY, stop_grace_s=90.0)
    timing = Timing(ec2_stop_s=120, workload_stop_s=80)
    sim = Sim(
        policy,
        timing,
        segments=[Segment("up", 600), Segment("dead", 2400)],
        commands=[Command(at=3000, mode=Mode.PIN_PRIMARY)],
        external_stops=[3000],
    ).run(3600)
    assert first(sim, "on_standby") < 3000
    assert first(sim, "handing_back", after=2999) == 3000
    # Trusting `stopping` would hand the lease over at 3060 while the standby's bot still runs.
    assert sim.violations == []
    back_home = next(t for t, *_, site, _ in sim.transitions if site == "primary" and t > 3000)
    assert back_home == 3120  # the tick that sees the instance stopped


def test_capacity_failures_are_retried_every_tick_and_alerted_once():
    sim = Sim(POLICY, segments=[Segment("up", 600), Segment("dead", 1500)], failing_starts=[0, 1]).run(3300)
    assert sim.ec2.attempts == 3 and sim.ec2.starts == [900]
    assert anomaly_keys(sim).count("start_failed") == 1
    assert "start_failed:resolved" in anomaly_keys(sim)
    assert first(sim, "on_standby") > 900
    assert sim.violations == []


def test_a_missing_standby_instance_is_alerted_once_and_the_handback_does_not_wait_for_it():
    segs = [Segment("up", 600), Segment("dead", 1200)]
    sim = Sim(POLICY, segments=segs, instance=InstanceState.MISSING).run(3000)
    assert anomaly_keys(sim) == ["instance_missing"]
    assert sim.ec2.attempts == 0
    assert first(sim, "failing_over") == 780  # the lease still leaves the dead primary
    # The primary returns: recovering straight from failing_over, and the handback completes at
    # once because a missing instance runs nothing.
    assert sim.phases == ["healthy", "suspect", "failing_over", "recovering", "handing_back", "healthy"]
    back = first(sim, "handing_back")
    assert first(sim, "healthy", after=back) - back <= POLICY.heartbeat_interval_s  # the next primary heartbeat
    assert sim.primary.workload == "running"


# At the drill's speed (one production minute a second: 1 s ticks and heartbeats, 5 s lease).
DRILL_POLICY = Policy(
    down_probes=3,
    down_heartbeat_s=10,
    recovery_probes=3,
    recovery_steady_s=0,
    lease_ttl_s=5,
    stop_grace_s=0,
    heartbeat_interval_s=1,
    start_cooldown_s=0,
    min_state_s=0,
)
DRILL_WORLD = Timing(tick_s=1, ec2_boot_s=2, ec2_stop_s=1, agent_boot_s=1, workload_start_s=1, workload_stop_s=0)


def test_at_drill_speed_a_laptop_death_raises_no_funnel_alert():
    """Issue 10: the drill raised "Probe down while the primary's heartbeats arrive" two seconds
    into every real laptop death and resolved it three seconds later."""
    sim = Sim(DRILL_POLICY, DRILL_WORLD, segments=[Segment("up", 30), Segment("dead", 60)]).run(90)
    assert sim.state.lease.site == LeaseSite.STANDBY  # it did fail over
    assert "degraded:probe" not in anomaly_keys(sim)


def test_at_drill_speed_a_funnel_outage_is_diagnosed_once():
    segments = [Segment("up", 30), Segment("funnel_out", 30), Segment("up", 30)]
    sim = Sim(DRILL_POLICY, DRILL_WORLD, segments=segments).run(90)
    assert sim.ec2.starts == []
    assert anomaly_keys(sim) == ["degraded:probe", "degraded:probe:resolved"]
