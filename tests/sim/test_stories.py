"""Scripted stories on the shared simulator (the shipped tick, heartbeat endpoint, store and agent
lease rule) with the shipped defaults: the timelines a user lives through. Each asserts what the
design promises (docs/state-machine.md), in terms of the settings, not of one engine's seconds."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hfo_drill.sim.model import Outage
from hfo_drill.sim.run import Result, simulate
from hfo_drill.sim.spans import complement
from hfo_drill.sim.world import T0, Command, Setup
from hfo_site.agent import RECHECK_S
from hfo_watchdog.core.model import Mode, Policy
from sim.helpers import FIXED, LEAD_S, setup, trace

S = setup(lease_aware_bot=True)
P = S.policy


def phases(r: Result) -> list[str]:
    seq = ["healthy"]
    for h in r.rec.history:
        if h.to_phase != seq[-1]:
            seq.append(h.to_phase)
    return seq


def lease_moves(r: Result) -> list[tuple[float, str, int]]:
    return [
        (h.at - T0 - r.warmup_s, h.to_lease.site.value, h.to_lease.epoch)
        for h in r.rec.history
        if h.to_lease != h.from_lease
    ]


def anomalies(r: Result) -> list[str]:
    """Alerts other than transitions, from the trace's start (not the warm-up's arming)."""
    return [n.key for t, n in r.rec.notifications if t >= r.warmup_s and not n.key.startswith("transition:")]


def downtimes(r: Result) -> list[tuple[float, float]]:
    """[start, end) of each spell without any bot, in trace seconds."""
    w0 = r.warmup_s
    bots = [*r.rec.bot_spans["primary"], *r.rec.bot_spans["standby"]]
    return [(s - w0, e - w0) for s, e in complement(bots, w0, w0 + r.trace.duration)]


def ends_home(r: Result) -> None:
    moved = [h for h in r.rec.history if h.to_lease != h.from_lease or h.to_phase != h.from_phase]
    if moved:
        assert moved[-1].to_lease.site.value == "primary" and moved[-1].to_phase == "healthy"
    assert r.rec.bot_spans["primary"][-1][1] == r.warmup_s + r.trace.duration
    assert r.world is not None and r.world.instance.state().value in ("stopped", "stopping", "missing")


def test_clean_outage_fails_over_then_hands_back():
    r = simulate(trace(Outage("laptop", LEAD_S, 1200.0)), FIXED, S, seed=1)
    seq = phases(r)
    assert seq[0] == "healthy" and seq[-1] == "healthy"
    assert {"on_standby", "handing_back"} <= set(seq)
    moves = lease_moves(r)
    assert [site for _, site, _ in moves] == ["standby", "none", "primary"]
    assert [epoch for *_, epoch in moves] == [2, 3, 4]
    # Both signals down first: no lease move before the silence window has run.
    assert moves[0][0] - LEAD_S >= P.down_heartbeat_s - P.heartbeat_interval_s
    assert sum(r.ec2_starts.values()) == 1 and len(r.rec.ec2_stops) == 1
    assert r.two_bots_s == 0 and r.lease_overlap_s == 0
    # The handback gap is seconds, not a tick: the standby's heartbeat completes it.
    handback = moves[1][0]
    gap = next(e - s for s, e in downtimes(r) if s >= handback - 1)
    assert gap <= 30
    ends_home(r)
    assert anomalies(r) == []


def test_funnel_outage_alone_never_fails_over():
    r = simulate(trace(Outage("funnel", LEAD_S, 1800.0)), FIXED, S, seed=2)
    assert lease_moves(r) == [] and r.ec2_starts == {}
    assert r.downtime_s == 0
    assert anomalies(r) == ["degraded:probe", "degraded:probe:resolved"]


def test_heartbeat_path_outage_never_fails_over_and_the_bot_comes_back_home():
    r = simulate(trace(Outage("aws", LEAD_S, 900.0)), FIXED, S, seed=3)
    assert lease_moves(r) == [] and r.ec2_starts == {}
    assert r.rec.bot_spans["primary"][-1][1] == r.warmup_s + r.trace.duration
    assert anomalies(r) == ["degraded:heartbeat", "degraded:heartbeat:resolved"]


def test_a_partitioned_primary_has_let_its_lease_run_out_before_the_standby_gets_one():
    r = simulate(trace(Outage("net", LEAD_S, 1200.0)), FIXED, S, seed=4)
    assert r.failovers and r.lease_overlap_s == 0 and r.two_bots_s == 0
    w0 = r.warmup_s
    laptop_hold_end = max(e for s, e in r.rec.hold_spans["primary"] if s < w0 + LEAD_S + 1)
    standby_first = min(s for s, _ in r.rec.hold_spans["standby"])
    assert laptop_hold_end <= standby_first
    ends_home(r)


def test_flaps_start_ec2_within_the_budgets_and_come_home():
    deaths = [Outage("laptop", LEAD_S + i * 800.0, 400.0) for i in range(12)]
    r = simulate(trace(*deaths), FIXED, S, seed=5)
    failover = [t for t, p in r.rec.ec2_starts if p == "failover"]
    assert all(b - a >= P.start_cooldown_s - 1e-3 for a, b in itertools.pairwise(failover))
    assert r.lease_overlap_s == 0 and r.two_bots_s == 0
    ends_home(r)


def test_a_drill_moves_to_the_standby_and_back_with_short_gaps():
    r = simulate(
        trace(Outage("funnel", LEAD_S + 4000.0, 1.0)),
        FIXED,
        S,
        seed=6,
        commands=[Command(at=LEAD_S, mode=Mode.DRILL, drill_s=1800.0)],
    )
    assert r.rec.mode_errors == [] and r.two_bots_s == 0 and r.lease_overlap_s == 0
    sites = [site for _, site, _ in lease_moves(r)]
    assert sites == ["none", "standby", "none", "primary"]
    for t, site, _ in lease_moves(r):
        if site == "none":  # each planned move: a gap of seconds
            assert next(e - s for s, e in downtimes(r) if s >= t - 1) <= 30
    back = next(t for t, site, _ in lease_moves(r)[2:] if site == "none")
    assert back >= LEAD_S + 1800.0
    assert sum(r.ec2_starts.values()) == 1
    ends_home(r)


def test_a_standby_stopped_by_hand_during_a_handback_is_not_trusted_while_stopping():
    """`stopping` is not proof the bot is down: with a bot that takes 80 s to stop, the lease
    goes home only once the instance is stopped (or its lease bound ran out)."""
    slow = replace(FIXED, bot_stop_s=80.0, ec2_stop_s=120.0)
    s = replace(S, policy=replace(P, stop_grace_s=90.0))
    r = simulate(
        trace(Outage("laptop", LEAD_S, 2400.0)),
        slow,
        s,
        seed=7,
        commands=[Command(at=LEAD_S + 2100.0, mode=Mode.PIN_PRIMARY)],
        external_stops=[LEAD_S + 2100.0],
    )
    assert r.two_bots_s == 0 and r.lease_overlap_s == 0
    ends_home(r)


def test_capacity_failures_are_retried_and_alerted_once():
    r = simulate(trace(Outage("laptop", LEAD_S, 1500.0)), FIXED, S, seed=8, failing_starts=frozenset({0, 1}))
    assert r.world is not None and r.world.instance.attempts == 3
    assert sum(r.ec2_starts.values()) == 1
    assert anomalies(r).count("start_failed") == 1 and "start_failed:resolved" in anomalies(r)
    assert r.lease_overlap_s == 0
    ends_home(r)


def test_a_missing_standby_is_alerted_once_and_the_handback_does_not_wait_for_it():
    """hfo_watchdog.ec2 answers a start or a stop of a missing instance with a failure (error
    `missing`): the failed stop is alerted too, once."""
    r = simulate(trace(Outage("laptop", LEAD_S, 1200.0)), FIXED, S, seed=9, instance_missing=True)
    every = [n.key for _, n in r.rec.notifications]  # seen missing from the first tick of the warm-up
    assert every.count("instance_missing") == 1 and "instance_missing:resolved" not in every
    assert r.ec2_starts == {} and r.two_bots_s == 0
    ends_home(r)


# At the drill's speed (one production minute a second: 1 s ticks and heartbeats, 5 s lease).
DRILL = Setup(
    policy=replace(
        Policy(),
        down_probes=3,
        down_heartbeat_s=10,
        recovery_probes=3,
        recovery_steady_s=0,
        lease_ttl_s=5,
        stop_grace_s=0,
        heartbeat_interval_s=1,
        start_cooldown_s=0,
        min_state_s=0,
        # scaled like the drill's timescale does: one renewal lasts past the next 1 s tick
        probe_lease_ttl_s=2,
        prewarm_silence_s=3,
        prewarm_hold_s=10,
        handover_heartbeat_interval_s=1,
    ),
    tick_s=1.0,
    lease_aware_bot=True,
    tick_describe_s=0.0,
)
DRILL_BOOT = replace(FIXED, ec2_start_s=2, os_boot_s=0, k3s_ready_s=(1, 1), pod_start_s=0, agent_start_s=0)


def test_at_drill_speed_a_laptop_death_raises_no_funnel_alert():
    r = simulate(trace(Outage("laptop", 30.0, 60.0), tail_s=1.0), DRILL_BOOT, DRILL, seed=10, warmup_s=30.0)
    assert r.failovers
    assert "degraded:probe" not in anomalies(r)


def test_at_drill_speed_a_funnel_outage_is_diagnosed_once():
    r = simulate(trace(Outage("funnel", 30.0, 30.0), tail_s=30.0), DRILL_BOOT, DRILL, seed=11, warmup_s=30.0)
    assert r.ec2_starts == {}
    assert anomalies(r) == ["degraded:probe", "degraded:probe:resolved"]


def test_a_short_sleep_past_the_lease_resumes_the_bot_without_a_restart():
    """sleep-45s (docs/benchmarks.md): the lease (30 s) lapses while the lid is closed; on waking
    the agent holds the stop for its wake heartbeat (hfo_site.agent.WAKE_HOLD_S), which renews the
    lease, so the bot process is never stopped: it only reconnects its gateway session after its
    lease check. Before the hold the wake cost a stop, a pod start and a connect on top."""
    asleep = 45.0
    r = simulate(trace(Outage("laptop", LEAD_S, asleep, asleep=True)), FIXED, S, seed=6)
    w0 = r.warmup_s
    assert [(site, outcome) for _, site, outcome in r.rec.wake_holds] == [("primary", "renewed")]
    (t_hold, _, _) = r.rec.wake_holds[0]
    assert w0 + LEAD_S + asleep <= t_hold <= w0 + LEAD_S + asleep + RECHECK_S
    assert lease_moves(r) == [] and r.two_bots_s == 0 and r.lease_overlap_s == 0
    (gap,) = [(s, e) for s, e in downtimes(r) if e > LEAD_S - 1]
    assert gap[0] == LEAD_S
    # asleep, the suspend seen within RECHECK_S, the gateway reconnect; no stop, no pod start
    assert gap[1] - gap[0] <= asleep + RECHECK_S + FIXED.gateway_connect_s + 1e-6
    assert gap[1] - gap[0] < asleep + FIXED.bot_stop_s + FIXED.pod_start_s
    assert r.world is not None and r.world.laptop_bot.process == "running"


def test_a_short_sleep_waking_without_aws_stops_the_bot_on_the_failed_wake_heartbeat():
    """The same nap, but the laptop wakes without a path to AWS: the wake heartbeat fails, and the
    agent stops the bot then, within RECHECK_S of waking, not after the whole WAKE_HOLD_S."""
    asleep = 45.0
    t = trace(Outage("laptop", LEAD_S, asleep, asleep=True), Outage("aws", LEAD_S + 10.0, 300.0))
    r = simulate(t, FIXED, S, seed=6)
    w0 = r.warmup_s
    assert [(site, outcome) for _, site, outcome in r.rec.wake_holds] == [("primary", "failed")]
    assert r.rec.wake_holds[0][0] <= w0 + LEAD_S + asleep + RECHECK_S
    assert r.two_bots_s == 0 and r.lease_overlap_s == 0
    # stopped, then started again once the probe path renewed the lease: a stop and a pod start
    (gap,) = [(s, e) for s, e in downtimes(r) if e > LEAD_S - 1]
    assert gap[1] - gap[0] >= asleep + FIXED.bot_stop_s + FIXED.pod_start_s + FIXED.gateway_connect_s
    ends_home(r)
