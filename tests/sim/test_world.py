"""The simulator's world, on stories a user lives through: the shipped watchdog and agent rule
decide; the world only carries out what they decide, with the boot model's times."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hfo_drill.sim.model import Outage, TraceError
from hfo_drill.sim.run import simulate
from hfo_drill.sim.spans import length
from hfo_drill.sim.world import RECHECK_S
from sim.helpers import FIXED, LEAD_S, REALISTIC, setup, trace

TAIL = 2400.0


def test_a_quiet_day_keeps_the_bot_on_the_laptop_and_ec2_stopped():
    r = simulate(trace(Outage("funnel", LEAD_S, 1.0)), REALISTIC, setup(), seed=1)
    assert r.downtime_s == 0 and r.two_bots_s == 0 and r.ec2_starts == {}
    assert r.rec.history == [] and r.rec.refusals == [] and r.failovers == ()
    # The laptop heartbeats on its interval, jittered down by up to 10 % (hfo_site.agent).
    beats = [t for t in r.rec.heartbeats if t > r.warmup_s]
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    interval = setup().policy.heartbeat_interval_s
    assert min(gaps) >= 0.9 * interval - 1e-6 and max(gaps) <= interval + 1e-6


def test_a_dead_laptop_fails_over_and_comes_home_without_two_bots():
    s = setup()
    r = simulate(trace(Outage("laptop", LEAD_S, 600.0), tail_s=TAIL), FIXED, s, seed=2)
    assert len(r.failovers) == 1 and r.false_failovers == 0
    assert sum(r.ec2_starts.values()) >= 1 and r.rec.ec2_stops, "the standby starts, then stops after the handback"
    assert r.two_bots_s == 0 and r.lease_overlap_s == 0
    # Both signals must be down: at least down_heartbeat_s after the laptop's last heartbeat.
    assert r.decision_s is not None and r.decision_s >= s.policy.down_heartbeat_s - s.policy.heartbeat_interval_s
    # The bot is back on the standby before the laptop returns, and home at the end.
    assert r.back_s is not None and r.back_s < 600.0
    assert r.rec.bot_spans["primary"][-1][1] == r.warmup_s + r.trace.duration
    assert r.rec.history[-1].to_lease.site.value == "primary"
    assert r.rec.refusals == []


def test_the_seed_and_ours_bring_a_returning_laptop_back_alike():
    """A short death neither design fails over for: the laptop's bot is back after the same pod
    start and Discord connect in both (ours: its agent's first heartbeat gets the lease at once)."""
    t = trace(Outage("laptop", LEAD_S, 20.0))
    ours = simulate(t, FIXED, setup(), seed=3)
    seed = simulate(t, FIXED, setup(), design="seed", seed=3)
    assert ours.failovers == () and seed.failovers == ()
    assert ours.downtime_s == pytest.approx(seed.downtime_s, abs=0.01)
    assert seed.downtime_s == pytest.approx(20.0 + FIXED.pod_start_s + FIXED.gateway_connect_s)


@pytest.mark.parametrize("asleep_s", [45.0, 600.0])
def test_a_sleeping_laptop_wakes_with_its_lease_counted_through_the_sleep(asleep_s):
    """The agent's lease clock is CLOCK_BOOTTIME: a lease granted before the lid closed has run
    out when it opens, so the two sites never hold a fresh lease at once."""
    r = simulate(trace(Outage("laptop", LEAD_S, asleep_s, asleep=True)), FIXED, setup(lease_aware_bot=True), seed=4)
    assert r.lease_overlap_s == 0
    assert r.two_bots_s == 0, "a lease-aware bot asks its agent before it reconnects after the freeze"


def test_without_the_lease_check_a_thawed_bot_answers_until_its_agent_stops_it():
    """The case the lease-aware bot fixes: frozen bot and agent thaw together; the bot carries on
    at once and the agent stops it within its re-check (RECHECK_S) plus the bot's stop."""
    r = simulate(trace(Outage("laptop", LEAD_S, 600.0, asleep=True)), FIXED, setup(lease_aware_bot=False), seed=4)
    assert r.failovers, "10 minutes asleep: the standby took over"
    assert r.lease_overlap_s == 0
    assert 0 < r.two_bots_s <= RECHECK_S + FIXED.bot_stop_s


def test_signed_heartbeats_and_the_handler_past_its_checks_give_the_same_run():
    """The benchmark's fast path (heartbeat.handle past its stateless checks) answers every
    heartbeat as the signed Function URL path does: the same history, bots and leases."""
    t = trace(
        Outage("laptop", LEAD_S, 600.0),
        Outage("laptop", LEAD_S + 2000.0, 300.0, asleep=True),
        Outage("aws", LEAD_S + 3000.0, 400.0),
        tail_s=TAIL,
    )
    signed = simulate(t, FIXED, setup(signed=True), seed=5)
    fast = simulate(t, FIXED, setup(signed=False), seed=5)
    assert signed.rec.history == fast.rec.history and len(fast.rec.history) >= 4
    assert signed.rec.bot_spans == fast.rec.bot_spans
    assert signed.rec.hold_spans == fast.rec.hold_spans
    assert signed.rec.ec2_starts == fast.rec.ec2_starts
    assert signed.rec.refusals == fast.rec.refusals == []


def test_a_run_repeats_exactly_from_its_seed_and_not_from_another():
    t = trace(Outage("laptop", LEAD_S, 600.0))
    a, b = simulate(t, REALISTIC, setup(), seed=7), simulate(t, REALISTIC, setup(), seed=7)
    assert (a.downtime_s, a.rec.bot_spans, a.rec.history) == (b.downtime_s, b.rec.bot_spans, b.rec.history)
    c = simulate(t, REALISTIC, setup(), seed=8)
    assert c.rec.bot_spans != a.rec.bot_spans


def test_a_changed_image_delays_the_standby_bot_by_what_the_pull_adds_to_the_agents_start():
    """The boot's pre-pull starts at K3s ready, beside the agent's own pod: the bot (whose lease
    is already there) waits only for the part of the pull that outlasts the agent's start."""
    t = trace(Outage("laptop", LEAD_S, 1200.0))
    same = simulate(t, FIXED, setup(), seed=9)
    changed = simulate(t, replace(FIXED, image_changed=True), setup(), seed=9)
    first = same.rec.bot_spans["standby"][0][0]
    extra = FIXED.image_pull_s - FIXED.pod_start_s - FIXED.agent_start_s
    assert changed.rec.bot_spans["standby"][0][0] == pytest.approx(first + extra, abs=0.01)


def test_figures_count_only_the_trace_not_the_warm_up():
    r = simulate(trace(Outage("net", LEAD_S, 5.0)), FIXED, setup(), seed=10)
    # Offline 5 s (its lease still fresh): the laptop's bot cannot answer, then reconnects.
    assert r.downtime_s == pytest.approx(5.0 + FIXED.gateway_connect_s, abs=0.01)
    assert length(r.rec.bot_spans["primary"]) > r.trace.duration


@pytest.mark.parametrize(
    ("outages", "message"),
    [
        ([Outage("laptop", 10, 100), Outage("laptop", 50, 100, asleep=True)], "mix asleep and dead"),
    ],
)
def test_an_impossible_trace_is_refused(outages, message):
    with pytest.raises(TraceError, match=message):
        trace(*outages)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "wifi", "start": 0, "seconds": 1}, "channel 'wifi' must be one of"),
        ({"channel": "net", "start": 0, "seconds": 0}, "length > 0"),
        ({"channel": "aws", "start": 0, "seconds": 5, "asleep": True}, "only the laptop can be asleep"),
    ],
)
def test_a_bad_outage_says_why(kwargs, message):
    with pytest.raises(TraceError, match=message):
        Outage(**kwargs)
