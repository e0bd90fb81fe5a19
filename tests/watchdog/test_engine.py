"""decide() in AUTO mode: every phase's transitions, the lease moves, EC2 following the phase."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hfo_watchdog.core.engine import decide
from hfo_watchdog.core.model import (
    ActionKind,
    InstanceState,
    Lease,
    LeaseSite,
    Phase,
    Policy,
    Severity,
)
from testsupport.engine import (
    POLICY,
    T0,
    down_obs,
    ec2_kinds,
    fail,
    healthy_obs,
    notify_keys,
    obs,
    ok,
    rec,
    said,
    standby_rec,
    state,
    streak,
)


def tick(st, o, policy=POLICY):
    return decide(st, o, policy)


def assert_transition(d, frm: Phase, to: Phase, *reasons: str):
    assert d.transition is not None, d.reasons
    assert (d.transition.from_phase, d.transition.to_phase) == (frm, to)
    assert d.state.phase == to
    for r in reasons:
        assert r in d.transition.reasons, d.transition.reasons
        assert r in d.reasons
    keys = [k for k in notify_keys(d) if k.startswith("transition:")]
    assert keys == [f"transition:{frm}->{to}"]


def assert_stays(d, phase: Phase):
    assert d.transition is None, d.transition
    assert d.state.phase == phase
    assert not [k for k in notify_keys(d) if k.startswith("transition:")]


# ------------------------------------------------------------------ every tick


def test_every_decision_bumps_the_version_stamps_the_tick_and_reports_both_signals():
    st = state()
    d = tick(st, healthy_obs())
    assert d.state.version == st.version + 1
    assert d.state.last_tick_at == T0
    assert (d.probe_signal, d.heartbeat_signal) == ("alive", "alive")
    assert d.reasons[:2] == ("probe ok (1 in a row)", "last heartbeat from primary 5 s ago")


def test_decide_is_deterministic_and_leaves_its_input_alone():
    st = streak(state(Phase.SUSPECT), fails=2)
    o = down_obs(standby=standby_rec(age=400, workload="stopped"))
    first, second = tick(st, o), tick(st, o)
    assert first == second
    assert st.probe_fail_streak == 2 and st.phase == Phase.SUSPECT


def test_healthy_primary_stays_healthy_and_the_standby_stays_stopped():
    d = tick(state(), healthy_obs())
    assert_stays(d, Phase.HEALTHY)
    assert d.actions == ()
    assert d.state.lease == state().lease


# ------------------------------------------------------------------ HEALTHY / SUSPECT


def test_one_failed_probe_makes_a_healthy_primary_suspect():
    d = tick(state(), healthy_obs(probe=fail()))
    assert_transition(d, Phase.HEALTHY, Phase.SUSPECT, "probe failed 1 time in a row (connect_timeout)")
    assert d.state.phase_since == T0
    assert d.state.lease == state().lease
    assert d.probe_signal == "failing"


def test_suspect_waits_for_min_state_s_in_healthy():
    d = tick(state(in_phase=30), healthy_obs(probe=fail()))
    assert_stays(d, Phase.HEALTHY)
    assert said(d, "staying healthy (would go suspect): in this phase for 30 s of the minimum 120 s")


def test_missing_heartbeats_alone_make_it_suspect_but_never_fail_over():
    st = state()
    for i in range(10):
        d = tick(st, obs(now=T0 + 60 * i, probe=ok(), primary=rec(age=200 + 60 * i, now=T0 + 60 * i)))
        st = d.state
        assert st.lease.site == LeaseSite.PRIMARY
        assert ActionKind.START_STANDBY not in ec2_kinds(d)
    assert st.phase == Phase.SUSPECT


def test_probe_down_alone_makes_it_suspect_but_never_fails_over():
    st = streak(state(), fails=10)
    d = tick(st, healthy_obs(probe=fail()))
    assert_transition(d, Phase.HEALTHY, Phase.SUSPECT, "probe failed 11 times in a row (connect_timeout)")
    assert d.state.lease.site == LeaseSite.PRIMARY
    assert d.actions[0].kind == ActionKind.NOTIFY and not ec2_kinds(d)


def test_suspect_returns_to_healthy_when_both_signals_are_alive_again():
    d = tick(state(Phase.SUSPECT), healthy_obs())
    assert_transition(d, Phase.SUSPECT, Phase.HEALTHY, "probe ok and heartbeats arriving again")


def test_suspect_stays_while_no_probe_result_exists_yet():
    d = tick(state(Phase.SUSPECT), obs(primary=rec()))
    assert_stays(d, Phase.SUSPECT)
    assert d.probe_signal == "unknown"


@pytest.mark.parametrize("phase", [Phase.HEALTHY, Phase.SUSPECT])
@pytest.mark.parametrize("in_phase", [1.0, 1000.0])
def test_primary_down_fails_over_at_once_the_lease_waiting_on_the_primary_for_the_standby(phase, in_phase):
    st = streak(state(phase, in_phase=in_phase, epoch=5), fails=2)
    d = tick(st, down_obs())
    assert_transition(
        d,
        phase,
        Phase.FAILING_OVER,
        "probe failed 3 times in a row (connect_timeout)",
        "no heartbeat from primary for 200 s",
    )
    assert d.state.lease == st.lease  # a primary that comes back keeps its bot: the failover is called off
    assert said(d, "the lease stays on the primary until the standby may take it")
    assert ec2_kinds(d) == [ActionKind.START_STANDBY]
    assert (d.state.last_start_at, d.state.start_count) == (T0, st.start_count + 1)
    note = next(a.notification for a in d.actions if a.notification)
    assert note.severity == Severity.CRITICAL
    assert note.title == f"{phase} -> failing_over"
    assert (d.probe_signal, d.heartbeat_signal) == ("down", "down")


def test_primary_down_with_a_warm_ready_standby_moves_the_lease_straight_to_it():
    st = streak(state(epoch=5), fails=2)
    d = tick(st, down_obs(standby=standby_rec(age=1, epoch=5, workload="stopped"), instance=InstanceState.RUNNING))
    assert_transition(d, Phase.HEALTHY, Phase.FAILING_OVER, "lease primary -> standby (epoch 6)")
    assert d.state.lease == Lease(LeaseSite.STANDBY, 6, T0)
    assert ec2_kinds(d) == []


def test_failover_does_not_start_an_instance_already_running():
    d = tick(streak(state(), fails=2), down_obs(instance=InstanceState.RUNNING))
    assert d.state.phase == Phase.FAILING_OVER
    assert ec2_kinds(d) == []
    assert d.state.last_start_at is None


def test_failover_keeps_the_lease_on_the_primary_while_it_may_still_hold_it():
    # A policy that breaks the timing rule (config refuses it; the engine still stays safe).
    policy = replace(POLICY, down_heartbeat_s=60.0)
    st = streak(state(epoch=5), fails=2)
    ready = standby_rec(age=1, epoch=5, workload="stopped")
    d = tick(st, down_obs(primary=rec(age=70), standby=ready, instance=InstanceState.RUNNING), policy)
    assert_transition(d, Phase.HEALTHY, Phase.FAILING_OVER)
    assert d.state.lease == st.lease
    assert said(d, "primary may still hold a fresh lease for 20 s")

    later = obs(
        now=T0 + 30,
        probe=fail(),
        primary=rec(age=100, now=T0 + 30),
        standby=standby_rec(age=1, now=T0 + 30, epoch=5, workload="stopped"),
        instance=InstanceState.RUNNING,
    )
    d2 = tick(d.state, later, policy)
    assert_transition(d2, Phase.FAILING_OVER, Phase.FAILING_OVER, "lease primary -> standby (epoch 6)")
    assert d2.state.lease == Lease(LeaseSite.STANDBY, 6, T0 + 30)


def test_failover_through_none_waits_while_the_bound_has_not_passed():
    policy = replace(POLICY, down_heartbeat_s=60.0)
    st = streak(state(Phase.FAILING_OVER, lease=LeaseSite.NONE, changed_ago=5), fails=3)
    d = tick(st, down_obs(primary=rec(age=75), instance=InstanceState.PENDING), policy)
    assert_stays(d, Phase.FAILING_OVER)
    assert d.state.lease == st.lease
    assert said(d, "waiting before giving the lease to the standby: primary may still hold a fresh lease for 15 s")


# ------------------------------------------------------------------ FAILING_OVER


def _failing_over(in_phase=100.0, **kw):
    return state(Phase.FAILING_OVER, lease=LeaseSite.STANDBY, epoch=6, changed_ago=100, in_phase=in_phase, **kw)


def test_failing_over_becomes_on_standby_when_the_standby_runs_under_the_current_epoch():
    st = streak(_failing_over(), fails=5)
    d = tick(st, down_obs(standby=standby_rec(age=3, epoch=6), instance=InstanceState.RUNNING))
    assert_transition(d, Phase.FAILING_OVER, Phase.ON_STANDBY, "the standby runs the workload under epoch 6")
    assert ec2_kinds(d) == []


@pytest.mark.parametrize(
    ("standby", "why"),
    [
        (None, "waiting for the standby's first heartbeat (epoch 6)"),
        (
            standby_rec(age=3, epoch=5),
            "waiting for the standby to run the workload under epoch 6"
            " (last heard: workload running, epoch 5, 3 s ago)",
        ),
        (
            standby_rec(age=3, epoch=6, workload="starting"),
            "waiting for the standby to run the workload under epoch 6"
            " (last heard: workload starting, epoch 6, 3 s ago)",
        ),
    ],
)
def test_failing_over_waits_for_the_standby_workload(standby, why):
    d = tick(streak(_failing_over(), fails=5), down_obs(standby=standby, instance=InstanceState.RUNNING))
    assert_stays(d, Phase.FAILING_OVER)
    assert said(d, why)


def test_failing_over_moves_to_recovering_when_the_primary_comes_back_first():
    st = streak(_failing_over(in_phase=200), fails=5)
    d = tick(st, healthy_obs(instance=InstanceState.TERMINATED))
    assert_transition(d, Phase.FAILING_OVER, Phase.RECOVERING, "the primary shows life again")
    assert d.state.lease.site == LeaseSite.STANDBY


def test_failing_over_with_lease_none_hands_back_when_the_primary_is_no_longer_down():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.NONE)
    d = tick(st, healthy_obs())
    assert_transition(
        d, Phase.FAILING_OVER, Phase.HANDING_BACK, "the primary is no longer down: the lease goes back to it"
    )
    assert d.state.lease == st.lease


def test_auto_calls_off_a_planned_move_that_has_not_moved_the_lease_yet():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.PRIMARY)
    d = tick(st, healthy_obs(instance=InstanceState.RUNNING))
    assert_transition(
        d,
        Phase.FAILING_OVER,
        Phase.HEALTHY,
        "the primary is not down any more: the failover is called off, the lease never left it",
    )
    assert ec2_kinds(d) == [ActionKind.STOP_STANDBY]


# ------------------------------------------------------------------ ON_STANDBY / RECOVERING


def _on_standby(phase=Phase.ON_STANDBY, in_phase=1000.0, **kw):
    return state(phase, lease=LeaseSite.STANDBY, epoch=6, changed_ago=3000, in_phase=in_phase, **kw)


def test_on_standby_stays_while_the_primary_is_down():
    st = streak(_on_standby(), fails=30)
    d = tick(st, down_obs(primary=rec(age=2000), standby=standby_rec(epoch=6), instance=InstanceState.RUNNING))
    assert_stays(d, Phase.ON_STANDBY)
    assert said(d, "the primary is still down")
    assert ec2_kinds(d) == []


@pytest.mark.parametrize(
    ("probe", "primary", "why"),
    [
        (ok(), rec(age=2000), "probe ok (1 in a row)"),
        (fail(), rec(age=1, steady_for=1), "last heartbeat from primary 1 s ago"),
    ],
)
def test_on_standby_starts_recovering_when_either_signal_shows_life(probe, primary, why):
    st = streak(_on_standby(), fails=30)
    d = tick(st, obs(probe=probe, primary=primary, standby=standby_rec(epoch=6), instance=InstanceState.RUNNING))
    assert_transition(d, Phase.ON_STANDBY, Phase.RECOVERING, "the primary shows life again", why)


def test_recovering_waits_for_min_state_s_in_on_standby():
    d = tick(streak(_on_standby(in_phase=60), fails=30), healthy_obs(instance=InstanceState.RUNNING))
    assert_stays(d, Phase.ON_STANDBY)
    assert said(d, "staying on_standby (would go recovering): in this phase for 60 s of the minimum 120 s")


def test_recovering_hands_back_when_the_recovery_window_is_met():
    st = streak(_on_standby(Phase.RECOVERING), oks=2)
    d = tick(st, healthy_obs(primary=rec(steady_for=200), standby=standby_rec(epoch=6), instance=InstanceState.RUNNING))
    assert_transition(
        d,
        Phase.RECOVERING,
        Phase.HANDING_BACK,
        "recovery window met",
        "3 good probes in a row",
        "heartbeats steady for 200 s",
        "primary reports ready",
        "lease standby -> none (epoch 7)",
    )
    assert d.state.lease == Lease(LeaseSite.NONE, 7, T0)
    assert ec2_kinds(d) == []  # the standby keeps running until it has stopped its workload


@pytest.mark.parametrize(
    ("oks", "primary", "missing"),
    [
        (1, rec(steady_for=500), "2 of 3 good probes in a row"),
        (5, rec(steady_for=60), "heartbeats steady for 60 s of 180 s"),
        (5, rec(ready=False), "primary does not report ready"),
    ],
)
def test_recovering_keeps_the_standby_until_the_window_is_met(oks, primary, missing):
    st = streak(_on_standby(Phase.RECOVERING), oks=oks)
    d = tick(st, healthy_obs(primary=primary, instance=InstanceState.RUNNING))
    assert_stays(d, Phase.RECOVERING)
    assert d.state.lease.site == LeaseSite.STANDBY
    assert said(d, missing)


def test_recovering_waits_min_state_s_before_handing_back():
    st = streak(_on_standby(Phase.RECOVERING, in_phase=100), oks=10)
    d = tick(st, healthy_obs(instance=InstanceState.RUNNING))
    assert_stays(d, Phase.RECOVERING)


def test_recovering_falls_back_to_on_standby_when_the_primary_shows_no_life():
    st = streak(_on_standby(Phase.RECOVERING), oks=2)
    d = tick(st, obs(probe=fail(), primary=rec(age=400), instance=InstanceState.RUNNING))
    assert_transition(d, Phase.RECOVERING, Phase.ON_STANDBY, "the primary shows no life again")


# ------------------------------------------------------------------ HANDING_BACK


def _handing_back(changed_ago=10.0, **kw):
    return state(Phase.HANDING_BACK, lease=LeaseSite.NONE, epoch=7, changed_ago=changed_ago, in_phase=changed_ago, **kw)


def test_handback_completes_when_the_standby_acknowledges():
    st = streak(_handing_back(), oks=5)
    standby = standby_rec(age=2, workload="stopped", epoch=7)
    d = tick(st, healthy_obs(standby=standby, instance=InstanceState.RUNNING))
    assert_transition(
        d,
        Phase.HANDING_BACK,
        Phase.HEALTHY,
        "standby acknowledged epoch 7 with its workload stopped",
        "lease none -> primary (epoch 8)",
    )
    assert d.state.lease == Lease(LeaseSite.PRIMARY, 8, T0)
    assert ec2_kinds(d) == [ActionKind.STOP_STANDBY]


def test_handback_waits_while_the_standby_may_still_run():
    st = streak(_handing_back(changed_ago=30), oks=5)
    # Last heard 40 s ago, before the change: its lease lasts at most until then + 60 s + 30 s.
    primary = rec(workload="stopped", epoch=7)
    d = tick(st, healthy_obs(primary=primary, standby=standby_rec(age=40, epoch=6), instance=InstanceState.RUNNING))
    assert_stays(d, Phase.HANDING_BACK)
    assert d.state.lease.site == LeaseSite.NONE
    assert said(d, "waiting before giving the lease to the primary: standby may still hold a fresh lease for 50 s")
    assert ec2_kinds(d) == []


def test_handback_completes_once_the_ttl_bound_has_passed_without_an_ack():
    st = streak(_handing_back(changed_ago=90), oks=5)
    d = tick(st, healthy_obs(standby=standby_rec(age=85, epoch=6), instance=InstanceState.RUNNING))
    assert_transition(d, Phase.HANDING_BACK, Phase.HEALTHY, "lease none -> primary (epoch 8)")


@pytest.mark.parametrize(
    ("instance", "done"),
    [
        (InstanceState.STOPPED, True),
        (InstanceState.TERMINATED, True),
        (InstanceState.MISSING, True),
        (InstanceState.STOPPING, False),
    ],
)
def test_handback_completes_at_once_when_the_standby_instance_cannot_run(instance, done):
    st = streak(_handing_back(changed_ago=5), oks=5)
    d = tick(st, healthy_obs(standby=standby_rec(age=6, epoch=6), instance=instance))
    assert (d.state.phase == Phase.HEALTHY) is done
    if done:
        assert said(d, f"the standby instance is {instance}")
        assert ec2_kinds(d) == []  # nothing left to stop


def test_handback_ends_suspect_when_a_signal_is_not_alive():
    st = streak(_handing_back(), fails=1)
    standby = standby_rec(age=2, workload="stopped", epoch=7)
    d = tick(st, obs(probe=fail(), primary=rec(), standby=standby, instance=InstanceState.RUNNING))
    assert_transition(d, Phase.HANDING_BACK, Phase.SUSPECT, "lease none -> primary (epoch 8)")


def test_primary_down_during_handback_returns_the_lease_to_the_standby():
    st = streak(_handing_back(), fails=2)
    d = tick(st, down_obs(standby=standby_rec(age=2, workload="stopped", epoch=7), instance=InstanceState.RUNNING))
    assert_transition(
        d,
        Phase.HANDING_BACK,
        Phase.ON_STANDBY,
        "the primary went down during the handback",
        "lease none -> standby (epoch 8)",
    )
    assert d.state.lease == Lease(LeaseSite.STANDBY, 8, T0)


# ------------------------------------------------------------------ consistency


@pytest.mark.parametrize(
    ("phase", "lease", "to"),
    [
        (Phase.HEALTHY, LeaseSite.STANDBY, Phase.ON_STANDBY),
        (Phase.SUSPECT, LeaseSite.NONE, Phase.HANDING_BACK),
        (Phase.ON_STANDBY, LeaseSite.PRIMARY, Phase.SUSPECT),
        (Phase.HANDING_BACK, LeaseSite.STANDBY, Phase.ON_STANDBY),
    ],
)
def test_a_phase_that_contradicts_the_lease_is_corrected_without_moving_the_lease(phase, lease, to):
    st = state(phase, lease=lease)
    d = tick(st, healthy_obs(instance=InstanceState.RUNNING))
    assert_transition(d, phase, to, f"phase {phase} does not match the lease on {lease}: phase corrected")
    assert d.state.lease == st.lease


# ------------------------------------------------------------------ EC2 follows the phase


@pytest.mark.parametrize(
    ("instance", "kinds"),
    [
        (InstanceState.RUNNING, [ActionKind.STOP_STANDBY]),
        (InstanceState.PENDING, [ActionKind.STOP_STANDBY]),
        (InstanceState.STOPPING, []),
        (InstanceState.STOPPED, []),
        (InstanceState.UNKNOWN, []),
    ],
)
@pytest.mark.parametrize("phase", [Phase.HEALTHY, Phase.SUSPECT])
def test_standby_is_stopped_while_the_primary_holds_the_lease(phase, instance, kinds):
    d = tick(state(phase, start_failures=2), healthy_obs(instance=instance))
    assert ec2_kinds(d) == kinds
    assert d.state.start_failures == 0  # a later failover gets a fresh set of attempts


@pytest.mark.parametrize(
    ("instance", "kinds", "why"),
    [
        (InstanceState.STOPPED, [ActionKind.START_STANDBY], "start the standby (on_standby)"),
        (InstanceState.PENDING, [], None),
        (InstanceState.RUNNING, [], None),
        (
            InstanceState.STOPPING,
            [],
            "waiting for the standby instance to finish stopping before starting it",
        ),
        (InstanceState.TERMINATED, [], "the standby instance is terminated: it cannot be started"),
        (InstanceState.MISSING, [], "the standby instance is missing: it cannot be started"),
        (InstanceState.UNKNOWN, [], "the standby instance's state is unknown: no EC2 action this tick"),
    ],
)
def test_standby_is_kept_running_while_it_holds_the_lease(instance, kinds, why):
    st = streak(_on_standby(), fails=30)
    d = tick(st, down_obs(primary=rec(age=2000), instance=instance))
    assert ec2_kinds(d) == kinds
    if why:
        assert said(d, why)


def test_at_most_one_start_per_cooldown():
    st = streak(_on_standby(last_start_at=T0 - 100, start_count=1), fails=30)
    d = tick(st, down_obs(primary=rec(age=2000)))
    assert ec2_kinds(d) == []
    assert d.state.last_start_at == T0 - 100 and d.state.start_count == 1
    assert said(d, "starting the standby is held back by the start cooldown for 800 s more (last start 100 s ago)")

    later = obs(now=T0 + 800, probe=fail(), primary=rec(age=2800, now=T0 + 800))
    d2 = tick(d.state, later)
    assert ec2_kinds(d2) == [ActionKind.START_STANDBY]
    assert d2.state.last_start_at == T0 + 800 and d2.state.start_count == 2


def test_no_start_after_max_start_failures():
    st = streak(_on_standby(start_failures=POLICY.max_start_failures), fails=30)
    d = tick(st, down_obs(primary=rec(age=2000)))
    assert ec2_kinds(d) == []
    assert said(d, "not starting the standby again: 5 start attempts failed in a row")


def test_handing_back_leaves_the_instance_alone():
    st = streak(_handing_back(changed_ago=5), oks=5)
    d = tick(st, healthy_obs(standby=standby_rec(age=1, epoch=6), instance=InstanceState.RUNNING))
    assert d.state.phase == Phase.HANDING_BACK
    assert ec2_kinds(d) == []


def test_standby_runtime_is_tracked_from_the_first_running_sight_to_the_stop():
    st = streak(_on_standby(), fails=30)
    d = tick(st, down_obs(primary=rec(age=2000), instance=InstanceState.PENDING))
    assert d.state.standby_running_since == T0
    later = obs(now=T0 + 500, probe=fail(), primary=rec(age=2500, now=T0 + 500), instance=InstanceState.RUNNING)
    d2 = tick(d.state, later)
    assert d2.state.standby_running_since == T0
    d3 = tick(replace(d2.state, phase=Phase.HEALTHY, lease=Lease()), healthy_obs(instance=InstanceState.STOPPED))
    assert d3.state.standby_running_since is None


def test_default_policy_satisfies_the_timing_rule_the_engine_relies_on():
    p = Policy()
    assert p.lease_ttl_s + p.stop_grace_s + p.heartbeat_interval_s < p.down_heartbeat_s
