"""The architecture's invariants, checked on the simulator (tests/watchdog/sim.py) over random
worlds: random policies (within the configuration's rules, or deliberately outside the timing
rule), random primary conditions over time, random failed EC2 starts, random stops of the instance
by someone else, and random operator commands.

1. Never two sites active (holding a fresh lease, or a workload not fully stopped) at once,
   sampled every simulated second.
2. Never a failover (the lease leaving the primary in auto mode) while either signal says the
   primary is alive, by the engine's own signals and by the simulator's ground truth.
3. No more than one EC2 start per start_cooldown_s.
5. Every decision carries reasons; every transition carries reasons and exactly one notification;
   every anomaly is notified once until it is resolved.
And liveness: once the primary is up for long enough in auto mode, the workload is back home and
the standby is stopped.

Examples: HFO_ENGINE_EXAMPLES (default 100) per property; derandomized under CI=true, random
otherwise (a failure prints the example and `@reproduce_failure`).
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict

from hfo_watchdog.core.model import ActionKind, InstanceState, LeaseSite, Mode, Phase, Policy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watchdog.sim import Command, Segment, Sim, Timing

_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SETTINGS = settings(
    max_examples=int(os.environ.get("HFO_ENGINE_EXAMPLES", "100")),
    deadline=None,
    derandomize=_CI,
    suppress_health_check=[HealthCheck.too_slow],
)

# Up and dead most often; the partial outages often enough to matter.
_CONDITIONS = ["up", "up", "dead", "dead", "funnel_out", "heartbeat_out", "partitioned"]


@st.composite
def policies(draw: st.DrawFn, misconfigured: bool = False) -> Policy:
    interval = draw(st.integers(1, 3))
    ttl = draw(st.integers(3 * interval, 20))
    grace = draw(st.integers(1, 10))
    slack = ttl + grace + interval
    # misconfigured: breaks lease_ttl_s + stop_grace_s + heartbeat_interval_s < down_heartbeat_s
    down_hb = draw(st.integers(2 * interval, slack) if misconfigured else st.integers(slack + 1, slack + 40))
    return Policy(
        down_probes=draw(st.integers(1, 4)),
        down_heartbeat_s=float(down_hb),
        recovery_probes=draw(st.integers(1, 4)),
        recovery_steady_s=float(draw(st.integers(0, 60))),
        lease_ttl_s=float(ttl),
        stop_grace_s=float(grace),
        heartbeat_interval_s=float(interval),
        start_cooldown_s=float(draw(st.integers(0, 300))),
        min_state_s=float(draw(st.integers(0, 60))),
        standby_max_runtime_s=float(draw(st.integers(60, 2000))),
        max_start_failures=draw(st.integers(1, 4)),
    )


@st.composite
def timings(draw: st.DrawFn, policy: Policy) -> Timing:
    return Timing(
        tick_s=draw(st.integers(1, 20)),
        ec2_boot_s=draw(st.integers(1, 30)),
        ec2_stop_s=draw(st.integers(1, 15)),
        agent_boot_s=draw(st.integers(1, 10)),
        workload_start_s=draw(st.integers(0, 3)),
        workload_stop_s=draw(st.integers(0, int(policy.stop_grace_s))),  # the agent rule
    )


segments = st.lists(
    st.builds(Segment, st.sampled_from(_CONDITIONS), st.integers(1, 300)),
    min_size=1,
    max_size=12,
)
commands = st.lists(
    st.builds(
        Command,
        at=st.integers(0, 2500),
        mode=st.sampled_from(list(Mode)),
        drill_s=st.integers(1, 600),
    ),
    max_size=5,
)


def settle_time(policy: Policy, timing: Timing) -> int:
    """Generous time for auto mode to bring the workload home once the primary stays up."""
    return int(
        2 * (policy.lease_ttl_s + policy.stop_grace_s)
        + policy.down_heartbeat_s
        + timing.tick_s * (policy.recovery_probes + policy.down_probes + 8)
        + 4 * policy.min_state_s
        + policy.recovery_steady_s
        + timing.ec2_boot_s
        + timing.ec2_stop_s
        + 2 * timing.agent_boot_s
        + 120
    )


def run_world(
    policy: Policy,
    timing: Timing,
    segs: list[Segment],
    cmds: list[Command],
    failing: frozenset[int],
    stops: frozenset[int] = frozenset(),
) -> Sim:
    story = sum(s.seconds for s in segs)
    cmds = [c for c in cmds if c.at < story] + [Command(at=story, mode=Mode.AUTO)]
    sim = Sim(
        policy,
        timing,
        segments=segs,
        commands=cmds,
        failing_starts=failing,
        external_stops=frozenset(t for t in stops if t < story),
    )
    return sim.run(story + settle_time(policy, timing))


# ------------------------------------------------------------------ the checks


def check_one_site_at_a_time(sim: Sim) -> None:
    assert sim.violations == [], f"both sites active at t={sim.violations[:5]}; timeline {sim.timeline}"
    assert sim.alerts_raised("both_running") == []


def check_no_failover_while_alive(sim: Sim) -> None:
    p = sim.policy
    probes = sim.probes
    for e in sim.log:
        before, after = e.before.lease.site, e.decision.state.lease.site
        if before != LeaseSite.PRIMARY or after == LeaseSite.PRIMARY:
            continue
        if e.decision.state.mode != Mode.AUTO:
            continue
        assert e.source == "tick", f"{e.source} moved the lease off the primary at {e.t}"
        assert (e.decision.probe_signal, e.decision.heartbeat_signal) == ("down", "down"), e.decision.reasons
        # Ground truth: no primary heartbeat delivered for down_heartbeat_s ...
        delivered = [t for t in sim.primary_heartbeats if t <= e.t]
        assert not delivered or e.t - delivered[-1] >= p.down_heartbeat_s, (e.t, delivered[-1:])
        # ... and the last down_probes probes all failed.
        recent = [ok for t, ok in probes if t <= e.t][-p.down_probes :]
        assert len(recent) == p.down_probes and not any(recent), (e.t, recent)


def check_start_cooldown(sim: Sim) -> None:
    starts = sim.ec2.starts
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= sim.policy.start_cooldown_s for g in gaps), (starts, sim.policy.start_cooldown_s)


def check_reasons_and_notifications(sim: Sim) -> None:
    prev_epoch = 1
    for e in sim.log:
        d = e.decision
        assert d.reasons and all(isinstance(r, str) and r for r in d.reasons), e
        keys = [a.notification.key for a in d.actions if a.kind == ActionKind.NOTIFY and a.notification]
        transition_keys = [k for k in keys if k.startswith("transition:")]
        before, after = e.before.lease, d.state.lease
        if d.transition is None:
            assert transition_keys == []
            assert after == before, f"lease changed without a transition at {e.t}"
            assert d.state.phase == e.before.phase
        else:
            tr = d.transition
            assert tr.reasons and all(tr.reasons)
            assert transition_keys == [f"transition:{tr.from_phase}->{tr.to_phase}"]
            assert (tr.from_lease, tr.to_lease) == (before, after)
            if after != before:
                assert after.epoch == before.epoch + 1 and after.changed_at == e.t
            assert tr.at == e.t
        assert after.epoch >= prev_epoch
        prev_epoch = after.epoch
    # Anomalies alternate raise, resolve, raise, ... per key: each is notified once while open.
    state: dict[str, bool] = defaultdict(bool)
    for t, note in sim.notifications:
        if note.key.startswith("transition:"):
            continue
        if note.key.endswith(":resolved"):
            key = note.key.removesuffix(":resolved")
            assert state[key], f"{key} resolved at {t} without being raised"
            state[key] = False
        else:
            assert not state[note.key], f"{note.key} notified twice at {t}"
            state[note.key] = True


def check_back_home(sim: Sim) -> None:
    st_ = sim.state
    assert (st_.mode, st_.phase, st_.lease.site) == (Mode.AUTO, Phase.HEALTHY, LeaseSite.PRIMARY), (
        sim.transitions[-6:],
        sim.log[-1].decision.reasons,
    )
    assert sim.primary.workload == "running", sim.timeline[-4:]
    assert sim.standby.workload == "stopped"
    assert sim.ec2.state in (InstanceState.STOPPED, InstanceState.STOPPING), sim.ec2.state


def check_all(sim: Sim) -> None:
    check_one_site_at_a_time(sim)
    check_no_failover_while_alive(sim)
    check_start_cooldown(sim)
    check_reasons_and_notifications(sim)


# ------------------------------------------------------------------ properties


failures = st.frozensets(st.integers(0, 6), max_size=4)
external_stops = st.frozensets(st.integers(0, 2500), max_size=3)


@SETTINGS
@given(data=st.data(), segs=segments, failing=failures, stops=external_stops)
def test_auto_mode_keeps_every_invariant_and_comes_home(data, segs, failing, stops):
    policy = data.draw(policies())
    timing = data.draw(timings(policy))
    sim = run_world(policy, timing, segs, [], failing, stops)
    check_all(sim)
    check_back_home(sim)


@SETTINGS
@given(data=st.data(), segs=segments, cmds=commands, failing=failures, stops=external_stops)
def test_operator_commands_never_break_the_invariants(data, segs, cmds, failing, stops):
    policy = data.draw(policies())
    timing = data.draw(timings(policy))
    sim = run_world(policy, timing, segs, cmds, failing, stops)
    assert sim.mode_errors == []
    check_all(sim)
    check_back_home(sim)


@SETTINGS
@given(data=st.data(), segs=segments, cmds=commands, stops=external_stops)
def test_a_policy_breaking_the_timing_rule_is_still_safe(data, segs, cmds, stops):
    policy = data.draw(policies(misconfigured=True))
    timing = data.draw(timings(policy))
    sim = run_world(policy, timing, segs, cmds, frozenset(), stops)
    check_all(sim)
    check_back_home(sim)


def test_the_checks_catch_a_broken_world():
    """The property checks are not vacuous: an agent that ignores self-fencing is caught."""
    policy = Policy(down_probes=1, down_heartbeat_s=30, lease_ttl_s=9, stop_grace_s=3, heartbeat_interval_s=3)
    timing = Timing(tick_s=5, ec2_boot_s=5, ec2_stop_s=5, agent_boot_s=2, workload_start_s=0, workload_stop_s=1)
    sim = Sim(policy, timing, segments=[Segment("up", 50), Segment("partitioned", 200)])
    sim.primary.holds_fresh_lease = lambda t: sim.primary.answer is not None
    sim.run(300)
    assert sim.violations, "a primary that never fences itself must overlap with the standby"
