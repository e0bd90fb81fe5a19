"""The architecture's safety invariants, property-tested on the shared simulator (the shipped tick,
heartbeat endpoint, DynamoDB store and agent lease rule) over random health histories, random
settings accepted by the watchdog's own configuration, and random EC2 failures.

1. Never two sites holding a fresh lease at once (each agent's LeaseTracker, on its lease clock,
   sleep included); with the lease-aware bot never two bots answering.
2. Never a failover (the lease leaving the primary in auto mode) while either signal says the
   primary is alive, by ground truth: its last heartbeat delivered at least down_heartbeat_s
   before, and its last down_probes probes failed.
3. EC2 starts are bounded: failover starts at least start_cooldown_s apart; pre-warm starts at
   most prewarm_max_per_hour in any hour (when the watchdog pre-warms).
4. Unarmed (no heartbeat of the primary ever accepted), the watchdog never starts EC2 and never
   moves the lease (when the watchdog has arming).
5. Every decision carries reasons; every transition carries reasons and exactly one notification;
   every anomaly is notified once until it is resolved; a lease change bumps the epoch by one.
And liveness: once the primary stays up in auto mode, the bot is back home and the standby stopped.
Operator commands (the CLI's own conditional write) and a policy outside the timing rule keep them.

Examples: HFO_SIM_EXAMPLES (default 12) per property; derandomized under CI=true.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import fields

from hfo_drill.sim.model import Outage, Trace
from hfo_drill.sim.run import Result, simulate
from hfo_drill.sim.world import RECHECK_S, T0, Command, Setup
from hfo_watchdog.config import SettingsError
from hfo_watchdog.core.model import ControlState, LeaseSite, Mode, Policy
from hfo_watchdog.core.model import Phase as EnginePhase
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from sim.helpers import FIXED, REALISTIC, setup, trace

_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SETTINGS = settings(
    max_examples=int(os.environ.get("HFO_SIM_EXAMPLES", "12")),
    deadline=None,
    derandomize=_CI,
    # No shrinking: each example is a whole simulated run (a second or so); a failure prints its
    # example, which replays exactly (every draw comes from it).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
HAS_ARMING = "armed_at" in {f.name for f in fields(ControlState)}
HAS_PREWARM = "prewarm_max_per_hour" in {f.name for f in fields(Policy)}


@st.composite
def outages(draw: st.DrawFn) -> list[Outage]:
    asleep = draw(st.booleans())  # one kind of laptop outage per history (they may overlap)
    out = []
    for _ in range(draw(st.integers(1, 5))):
        channel = draw(st.sampled_from(["laptop", "laptop", "net", "funnel", "aws"]))
        start = float(draw(st.integers(0, 3600)))
        seconds = float(draw(st.integers(5, 1500)))
        out.append(Outage(channel, 600.0 + start, seconds, asleep and channel == "laptop"))
    return out


@st.composite
def envs(draw: st.DrawFn) -> dict[str, str]:
    """Settings a user may deploy: drawn, then judged by the watchdog's own configuration."""
    interval = draw(st.integers(2, 15))
    env = {
        "HFO_HEARTBEAT_INTERVAL_S": str(interval),
        "HFO_LEASE_TTL_S": str(draw(st.integers(3 * interval, 90))),
        "HFO_DOWN_HEARTBEAT_S": str(draw(st.integers(60, 300))),
        "HFO_DOWN_PROBES": str(draw(st.integers(1, 4))),
        "HFO_RECOVERY_PROBES": str(draw(st.integers(1, 4))),
        "HFO_START_COOLDOWN_S": str(draw(st.integers(0, 1200))),
        "HFO_TICK_INTERVAL_S": str(draw(st.sampled_from([60, 60, 120]))),
    }
    return env


def world(
    env: dict[str, str],
    history: list[Outage],
    *,
    lease_aware_bot: bool,
    failing_starts: frozenset[int] = frozenset(),
    external_stops: list[int] | None = None,
) -> tuple[Result, Policy]:
    try:
        s = setup(env, lease_aware_bot=lease_aware_bot)
    except SettingsError:
        assume(False)
        raise
    t = trace(*history, tail_s=2400.0)
    stops = [float(x) for x in external_stops or []]
    r = simulate(t, REALISTIC, s, seed=repr((env, history)), failing_starts=failing_starts, external_stops=stops)
    return r, s.policy


def wakes(t: Trace) -> int:
    return sum(1 for _s, _e, asleep in t.down_spans("laptop") if asleep)


# ------------------------------------------------------------------ the checks


def check_one_lease_at_a_time(r: Result, lease_aware: bool) -> None:
    assert r.lease_overlap_s == 0, (r.rec.hold_spans, r.rec.history)
    if lease_aware:
        assert r.two_bots_s == 0, (r.rec.bot_spans, r.rec.history)
    else:  # only a thawed bot, until its agent has stopped it
        assert r.two_bots_s <= wakes(r.trace) * (RECHECK_S + REALISTIC.bot_stop_s) + 1e-6, r.rec.bot_spans


def check_no_failover_while_alive(r: Result, policy: Policy) -> None:
    for h in r.rec.history:
        if h.mode != "auto" or h.from_lease.site.value != "primary" or h.to_lease.site.value == "primary":
            continue
        t = h.at - T0
        delivered = [b for b in r.rec.heartbeats if b <= t]
        assert not delivered or t - delivered[-1] >= policy.down_heartbeat_s - 1e-6, (t, delivered[-1:], h.reasons)
        recent = [ok for at, ok in r.rec.probes if at <= t][-policy.down_probes :]
        assert len(recent) == policy.down_probes and not any(recent), (t, recent, h.reasons)


def check_starts_bounded(r: Result, policy: Policy) -> None:
    failover = [t for t, purpose in r.rec.ec2_starts if purpose == "failover"]
    assert all(b - a >= policy.start_cooldown_s - 1e-3 for a, b in itertools.pairwise(failover)), failover
    if HAS_PREWARM:
        warm = [t for t, purpose in r.rec.ec2_starts if purpose == "prewarm"]
        limit = int(policy.prewarm_max_per_hour)
        for i, t in enumerate(warm):
            assert sum(1 for u in warm[i:] if u - t < 3600) <= limit, warm


def check_reasons_and_notifications(r: Result) -> None:
    for _t, extra in r.rec.decisions:
        assert extra.get("reasons") and all(isinstance(x, str) and x for x in extra["reasons"]), extra
    notes: dict[tuple[float, str], int] = defaultdict(int)
    for t, n in r.rec.notifications:
        if n.key.startswith("transition:"):
            notes[(round(t, 2), n.key)] += 1
    expected: dict[tuple[float, str], int] = defaultdict(int)
    prev_epoch = 1
    for h in r.rec.history:
        assert h.reasons and all(h.reasons), h
        if h.to_lease != h.from_lease:
            assert h.to_lease.epoch == h.from_lease.epoch + 1 and h.to_lease.changed_at == h.at, h
        assert h.to_lease.epoch >= prev_epoch
        prev_epoch = h.to_lease.epoch
        if not h.reasons[0].startswith("operator:"):
            expected[(round(h.at - T0, 2), f"transition:{h.from_phase}->{h.to_phase}")] += 1
    assert dict(notes) == dict(expected), "one notification per transition, at its time"
    open_: dict[str, bool] = defaultdict(bool)
    for t, n in r.rec.notifications:
        if n.key.startswith("transition:"):
            continue
        if n.key.endswith(":resolved"):
            key = n.key.removesuffix(":resolved")
            assert open_[key], f"{key} resolved at {t} without being raised"
            open_[key] = False
        else:
            assert not open_[n.key], f"{n.key} notified twice at {t}"
            open_[n.key] = True


def check_back_home(r: Result) -> None:
    assert r.world is not None
    ours = r.world.controller
    state = ours.tick_store.load_control()  # type: ignore[attr-defined]
    home = (Mode.AUTO, EnginePhase.HEALTHY, LeaseSite.PRIMARY)
    assert (state.mode, state.phase, state.lease.site) == home, r.rec.history[-4:]
    end = r.warmup_s + r.trace.duration
    assert r.rec.bot_spans["primary"] and r.rec.bot_spans["primary"][-1][1] == end, "the laptop's bot answers"
    assert not r.rec.bot_spans["standby"] or r.rec.bot_spans["standby"][-1][1] < end
    assert r.world.instance.state().value in ("stopped", "stopping")


def check_no_refusal(r: Result) -> None:
    assert r.rec.refusals == [], "the agents' heartbeats are all well-formed, fresh and in order"


# ------------------------------------------------------------------ properties


@SETTINGS
@given(env=envs(), history=outages(), lease_aware=st.booleans())
def test_every_history_keeps_the_safety_invariants(env, history, lease_aware):
    r, policy = world(env, history, lease_aware_bot=lease_aware)
    check_one_lease_at_a_time(r, lease_aware)
    check_no_failover_while_alive(r, policy)
    check_starts_bounded(r, policy)
    check_reasons_and_notifications(r)
    check_back_home(r)
    check_no_refusal(r)


failing = st.frozensets(st.integers(0, 4), max_size=3)
stops = st.lists(st.integers(600, 4000), max_size=2)


@SETTINGS
@given(env=envs(), history=outages(), failing=failing, stops=stops)
def test_failed_starts_and_stops_by_someone_else_keep_them_too(env, history, failing, stops):
    r, policy = world(env, history, lease_aware_bot=True, failing_starts=failing, external_stops=stops)
    check_one_lease_at_a_time(r, True)
    check_no_failover_while_alive(r, policy)
    check_starts_bounded(r, policy)
    check_reasons_and_notifications(r)


commands = st.lists(
    st.builds(
        Command,
        at=st.integers(0, 4000).map(float),
        mode=st.sampled_from(list(Mode)),
        drill_s=st.integers(1, 900).map(float),
    ),
    max_size=4,
)


@SETTINGS
@given(env=envs(), history=outages(), cmds=commands)
def test_operator_commands_never_break_them_and_auto_mode_comes_home(env, history, cmds):
    try:
        s = setup(env, lease_aware_bot=True)
    except SettingsError:
        assume(False)
        raise
    t = trace(*history, tail_s=3600.0)
    story_end = max(o.end for o in history)
    cmds = [*(c for c in cmds if c.at < story_end), Command(at=story_end, mode=Mode.AUTO)]
    r = simulate(t, REALISTIC, s, seed=repr((env, history, cmds)), commands=cmds)
    assert r.rec.mode_errors == []
    check_one_lease_at_a_time(r, True)
    check_starts_bounded(r, s.policy)
    check_reasons_and_notifications(r)
    check_back_home(r)


@SETTINGS
@given(history=outages(), grace=st.integers(1, 30), ttl=st.integers(30, 90))
def test_a_policy_breaking_the_timing_rule_is_still_safe(history, grace, ttl):
    """lease_ttl_s + stop_grace_s + heartbeat_interval_s >= down_heartbeat_s: refused by the
    configuration, and still no two leases (the engine's fencing rule waits the lease out)."""
    policy = Policy(lease_ttl_s=float(ttl), stop_grace_s=float(grace), heartbeat_interval_s=10.0, down_heartbeat_s=60.0)
    r = simulate(trace(*history, tail_s=2400.0), REALISTIC, Setup(policy=policy, lease_aware_bot=True), seed=1)
    check_one_lease_at_a_time(r, True)
    check_reasons_and_notifications(r)


@SETTINGS
@given(history=outages(), lease_aware=st.booleans())
def test_the_shipped_defaults_keep_them_on_every_history(history, lease_aware):
    r, policy = world({}, history, lease_aware_bot=lease_aware)
    check_one_lease_at_a_time(r, lease_aware)
    check_no_failover_while_alive(r, policy)
    check_starts_bounded(r, policy)
    check_no_refusal(r)


@SETTINGS
@given(env=envs(), gone=st.sampled_from(["laptop", "aws", "net"]), extra=outages())
def test_an_unarmed_watchdog_never_starts_ec2_nor_moves_the_lease(env, gone, extra):
    if not HAS_ARMING:
        return  # the watchdog has no arming yet: nothing to hold it to
    try:
        s = setup(env)
    except SettingsError:
        assume(False)
        raise
    # The primary's heartbeats never reach the watchdog: not in a warm-up, not ever.
    others = [o for o in extra if o.channel != "laptop"]  # the laptop is gone (or unheard) throughout
    t = trace(Outage(gone, 0.0, 7200.0), *others, tail_s=600.0)
    r = simulate(t, FIXED, s, seed=1, warmup_s=0.0)
    assert r.rec.ec2_starts == [] and r.rec.history == [], r.rec.history


def test_the_checks_catch_a_broken_agent():
    """The checks are not vacuous: an agent that never lets its lease run out overlaps with the
    standby, and is caught."""
    from hfo_site.lease import LeaseTracker

    original = LeaseTracker.expires_at

    def never(self: LeaseTracker) -> float | None:
        deadline = original(self)
        return None if deadline is None else deadline + 1e9

    LeaseTracker.expires_at = never  # type: ignore[method-assign]
    try:
        r = simulate(trace(Outage("aws", 1500.0, 1800.0), Outage("funnel", 1500.0, 1800.0)), FIXED, setup(), seed=1)
    finally:
        LeaseTracker.expires_at = original  # type: ignore[method-assign]
    assert r.failovers, "both signals down: the standby gets the lease"
    assert r.lease_overlap_s > 0
