"""Modes: paused, pinned to primary, pinned to standby (planned move), drill; and set_mode()."""

from __future__ import annotations

import math

import pytest
from hfo_watchdog.core.engine import decide, set_mode
from hfo_watchdog.core.model import ActionKind, InstanceState, Lease, LeaseSite, Mode, Phase
from testsupport.engine import (
    POLICY,
    T0,
    down_obs,
    ec2_kinds,
    healthy_obs,
    notify_keys,
    rec,
    said,
    standby_rec,
    state,
    streak,
)


def tick(st, o):
    return decide(st, o, POLICY)


def transition_of(d):
    assert d.transition is not None, d.reasons
    return (d.transition.from_phase, d.transition.to_phase)


# ------------------------------------------------------------------ PAUSED


def test_paused_observes_a_down_primary_but_changes_nothing():
    st = streak(state(Phase.SUSPECT, mode=Mode.PAUSED), fails=2)
    d = tick(st, down_obs())
    assert d.transition is None
    assert (d.state.phase, d.state.lease) == (st.phase, st.lease)
    assert ec2_kinds(d) == []
    assert d.state.last_start_at is None
    assert d.state.probe_fail_streak == 3  # streaks and signals still follow the world
    assert (d.probe_signal, d.heartbeat_signal) == ("down", "down")
    assert said(d, "paused: auto mode would go suspect -> failing_over (")
    assert said(d, "paused: auto mode would start the standby (failing_over)")
    assert notify_keys(d) == ["primary_down_no_failover"]


def test_paused_does_not_hand_back_or_stop_the_standby():
    st = streak(state(Phase.RECOVERING, lease=LeaseSite.STANDBY, mode=Mode.PAUSED), oks=5)
    d = tick(st, healthy_obs(standby=standby_rec(epoch=5), instance=InstanceState.RUNNING))
    assert d.transition is None and d.state.lease == st.lease
    assert said(d, "paused: auto mode would go recovering -> handing_back with lease standby -> none")

    healthy = state(Phase.HEALTHY, mode=Mode.PAUSED)
    d2 = tick(healthy, healthy_obs(instance=InstanceState.RUNNING))
    assert ec2_kinds(d2) == []
    assert said(d2, "paused: auto mode would stop the standby: it is running while the primary holds the lease")


def test_paused_with_nothing_to_do_says_so():
    d = tick(state(mode=Mode.PAUSED), healthy_obs())
    assert said(d, "paused: auto mode would change nothing now")
    assert d.actions == ()


def test_paused_still_raises_anomalies():
    st = streak(state(mode=Mode.PAUSED), fails=5)
    d = tick(st, healthy_obs(probe=None))
    assert "degraded:probe" in notify_keys(d)


# ------------------------------------------------------------------ PIN_PRIMARY


def test_pinned_primary_never_fails_over():
    st = streak(state(Phase.SUSPECT, mode=Mode.PIN_PRIMARY), fails=2)
    d = tick(st, down_obs())
    assert d.transition is None
    assert d.state.lease == st.lease
    assert ec2_kinds(d) == []
    assert said(d, "pinned to primary: no failover although the primary is down")
    assert notify_keys(d) == ["primary_down_no_failover"]


@pytest.mark.parametrize("phase", [Phase.ON_STANDBY, Phase.RECOVERING, Phase.FAILING_OVER])
def test_pinned_primary_hands_back_without_the_recovery_window(phase):
    st = state(phase, lease=LeaseSite.STANDBY, epoch=6, in_phase=1, mode=Mode.PIN_PRIMARY)
    d = tick(st, healthy_obs(primary=rec(steady_for=5), instance=InstanceState.RUNNING))
    assert transition_of(d) == (phase, Phase.HANDING_BACK)
    assert d.state.lease == Lease(LeaseSite.NONE, 7, T0)
    assert said(d, "pinned to primary: handing back without waiting for the recovery window")


def test_pinned_primary_calls_off_a_planned_move():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.PRIMARY, mode=Mode.PIN_PRIMARY)
    d = tick(st, healthy_obs(instance=InstanceState.PENDING))
    assert transition_of(d) == (Phase.FAILING_OVER, Phase.HEALTHY)
    assert said(d, "pinned to primary: the move to the standby is called off")
    assert ec2_kinds(d) == [ActionKind.STOP_STANDBY]


def test_pinned_primary_resumes_a_handover_left_at_none():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.NONE, mode=Mode.PIN_PRIMARY)
    d = tick(st, healthy_obs())
    assert transition_of(d) == (Phase.FAILING_OVER, Phase.HANDING_BACK)
    assert d.state.lease == st.lease


def test_pinned_primary_completes_the_handback_even_with_the_primary_down():
    st = streak(state(Phase.HANDING_BACK, lease=LeaseSite.NONE, epoch=7, changed_ago=5, mode=Mode.PIN_PRIMARY), fails=9)
    acked = standby_rec(age=1, workload="stopped", epoch=7)
    d = tick(st, down_obs(standby=acked, instance=InstanceState.RUNNING))
    assert transition_of(d) == (Phase.HANDING_BACK, Phase.SUSPECT)
    assert d.state.lease == Lease(LeaseSite.PRIMARY, 8, T0)
    assert ec2_kinds(d) == [ActionKind.STOP_STANDBY]


def test_pinned_primary_does_not_send_a_handback_back_to_the_standby():
    st = streak(state(Phase.HANDING_BACK, lease=LeaseSite.NONE, epoch=7, changed_ago=5, mode=Mode.PIN_PRIMARY), fails=9)
    d = tick(st, down_obs(standby=standby_rec(age=10, epoch=6), instance=InstanceState.RUNNING))
    assert d.transition is None
    assert d.state.lease.site == LeaseSite.NONE
    assert said(d, "waiting before giving the lease to the primary")


# ------------------------------------------------------------------ PIN_STANDBY: a planned move


def _move(lease=LeaseSite.PRIMARY, epoch=5, **kw):
    return streak(state(Phase.FAILING_OVER, lease=lease, epoch=epoch, mode=Mode.PIN_STANDBY, **kw), oks=9)


def test_planned_move_starts_the_standby_before_touching_the_lease():
    st = streak(state(mode=Mode.PIN_STANDBY), oks=9)
    d = tick(st, healthy_obs())
    assert transition_of(d) == (Phase.HEALTHY, Phase.FAILING_OVER)
    assert d.state.lease == st.lease
    assert ec2_kinds(d) == [ActionKind.START_STANDBY]
    assert said(d, "pinned to standby: starting the standby before moving the lease")


@pytest.mark.parametrize(
    ("instance", "standby", "why"),
    [
        (InstanceState.PENDING, None, "waiting for the standby instance to run (it is pending)"),
        (InstanceState.RUNNING, None, "waiting for the standby's first heartbeat"),
        (
            InstanceState.RUNNING,
            standby_rec(age=70),
            "waiting for a fresh heartbeat from the standby (last one 70 s ago)",
        ),
        (InstanceState.RUNNING, standby_rec(ready=False), "waiting for the standby to report ready"),
    ],
)
def test_planned_move_waits_for_a_ready_standby(instance, standby, why):
    d = tick(_move(), healthy_obs(standby=standby, instance=instance))
    assert d.transition is None
    assert d.state.lease.site == LeaseSite.PRIMARY
    assert said(d, why)


def test_planned_move_takes_the_lease_from_the_primary_once_the_standby_is_ready():
    standby = standby_rec(age=3, workload="stopped", epoch=5)
    d = tick(_move(), healthy_obs(standby=standby, instance=InstanceState.RUNNING))
    assert transition_of(d) == (Phase.FAILING_OVER, Phase.FAILING_OVER)
    assert d.state.lease == Lease(LeaseSite.NONE, 6, T0)
    assert said(d, "the standby reports ready (3 s ago)")
    assert notify_keys(d) == ["transition:failing_over->failing_over"]


def test_planned_move_gives_the_standby_the_lease_when_the_primary_acknowledges():
    primary = rec(age=1, workload="stopped", epoch=6)
    st = _move(lease=LeaseSite.NONE, epoch=6, changed_ago=12)
    d = tick(st, healthy_obs(primary=primary, standby=standby_rec(workload="stopped", epoch=6)))
    assert transition_of(d) == (Phase.FAILING_OVER, Phase.FAILING_OVER)
    assert d.state.lease == Lease(LeaseSite.STANDBY, 7, T0)
    assert said(d, "primary acknowledged epoch 6 with its workload stopped")


def test_planned_move_waits_for_the_primary_to_stop():
    st = _move(lease=LeaseSite.NONE, epoch=6, changed_ago=12)
    d = tick(st, healthy_obs(primary=rec(age=2, workload="stopping", epoch=6), instance=InstanceState.RUNNING))
    assert d.transition is None
    assert said(d, "waiting before giving the lease to the standby: primary may still hold a fresh lease for 78 s")


def test_planned_move_ends_on_standby_when_the_standby_runs():
    st = _move(lease=LeaseSite.STANDBY, epoch=7, changed_ago=30)
    d = tick(st, healthy_obs(standby=standby_rec(epoch=7, age=2), instance=InstanceState.RUNNING))
    assert transition_of(d) == (Phase.FAILING_OVER, Phase.ON_STANDBY)


def test_pinned_standby_never_hands_back():
    st = streak(state(Phase.ON_STANDBY, lease=LeaseSite.STANDBY, mode=Mode.PIN_STANDBY), oks=50)
    d = tick(st, healthy_obs(primary=rec(steady_for=9999), instance=InstanceState.RUNNING))
    assert d.transition is None
    assert said(d, "pinned to standby: staying on the standby")

    recovering = state(Phase.RECOVERING, lease=LeaseSite.STANDBY, mode=Mode.PIN_STANDBY)
    d2 = tick(streak(recovering, oks=50), healthy_obs(instance=InstanceState.RUNNING))
    assert transition_of(d2) == (Phase.RECOVERING, Phase.ON_STANDBY)
    assert said(d2, "pinned to standby: no handback")


def test_pinned_standby_takes_back_a_lease_left_at_none_by_a_handback():
    st = state(Phase.HANDING_BACK, lease=LeaseSite.NONE, epoch=8, changed_ago=20, mode=Mode.PIN_STANDBY)
    primary = rec(age=1, workload="stopped", epoch=8)
    d = tick(streak(st, oks=5), healthy_obs(primary=primary, instance=InstanceState.RUNNING))
    assert transition_of(d) == (Phase.HANDING_BACK, Phase.ON_STANDBY)
    assert d.state.lease == Lease(LeaseSite.STANDBY, 9, T0)


def test_pinned_standby_with_the_primary_down_fails_over_at_once():
    st = streak(state(mode=Mode.PIN_STANDBY), fails=2)
    d = tick(st, down_obs())
    assert transition_of(d) == (Phase.HEALTHY, Phase.FAILING_OVER)
    assert d.state.lease.site == LeaseSite.PRIMARY  # until the standby is ready, as in auto
    assert ec2_kinds(d) == [ActionKind.START_STANDBY]


# ------------------------------------------------------------------ DRILL


def test_drill_behaves_like_a_planned_move_and_says_how_long_it_lasts():
    st = streak(state(mode=Mode.DRILL, mode_until=T0 + 1800), oks=9)
    d = tick(st, healthy_obs())
    assert transition_of(d) == (Phase.HEALTHY, Phase.FAILING_OVER)
    assert said(d, "drill for 1800 s more: starting the standby before moving the lease")
    assert d.state.mode == Mode.DRILL


def test_drill_end_returns_to_auto_which_follows_the_recovery_rules():
    st = state(Phase.ON_STANDBY, lease=LeaseSite.STANDBY, mode=Mode.DRILL, mode_until=T0)
    d = tick(streak(st, oks=30), healthy_obs(instance=InstanceState.RUNNING))
    assert (d.state.mode, d.state.mode_until) == (Mode.AUTO, None)
    assert said(d, "drill ended")
    assert transition_of(d) == (Phase.ON_STANDBY, Phase.RECOVERING)
    assert d.state.lease.site == LeaseSite.STANDBY  # the handback keeps its own window


def test_drill_without_an_end_time_ends_at_once():
    st = state(mode=Mode.DRILL, mode_until=None)
    d = tick(st, healthy_obs())
    assert d.state.mode == Mode.AUTO
    assert d.transition is None


# ------------------------------------------------------------------ set_mode


@pytest.mark.parametrize("mode", [Mode.AUTO, Mode.PIN_PRIMARY, Mode.PIN_STANDBY, Mode.PAUSED])
def test_set_mode_sets_the_mode_and_bumps_the_version(mode):
    st = state(mode=Mode.DRILL, mode_until=T0 + 50, start_failures=4)
    new = set_mode(st, mode, T0)
    assert (new.mode, new.mode_until, new.version) == (mode, None, st.version + 1)
    assert new.start_failures == 0
    assert (new.phase, new.lease) == (st.phase, st.lease)


def test_set_mode_accepts_the_mode_by_name():
    assert set_mode(state(), "pin_primary", T0).mode == Mode.PIN_PRIMARY


def test_drill_takes_a_future_end_time():
    new = set_mode(state(), Mode.DRILL, T0, until=T0 + 600)
    assert (new.mode, new.mode_until) == (Mode.DRILL, T0 + 600)


@pytest.mark.parametrize(
    ("mode", "until", "message"),
    [
        (Mode.DRILL, None, "drill mode needs an end time: until (epoch seconds) must be given"),
        (Mode.DRILL, T0, f"drill end time until={T0!r} must be a finite time after now ({T0!r})"),
        (Mode.DRILL, T0 - 1, "must be a finite time after now"),
        (Mode.DRILL, math.inf, "drill end time until=inf must be a finite time after now"),
        (Mode.DRILL, math.nan, "drill end time until=nan must be a finite time after now"),
        (Mode.DRILL, "tomorrow", "drill end time until='tomorrow' must be a number (epoch seconds)"),
        (Mode.PAUSED, T0 + 60, "until is only for drill mode; mode paused must not have one"),
        (Mode.AUTO, T0 + 60, "until is only for drill mode; mode auto must not have one"),
        ("sideways", None, "mode 'sideways' is not one of: auto, pin_primary, pin_standby, paused, drill"),
    ],
)
def test_set_mode_refuses_bad_input_and_names_the_problem(mode, until, message):
    st = state()
    with pytest.raises(ValueError) as err:
        set_mode(st, mode, T0, until)
    assert message in str(err.value)
    assert st == state()  # nothing changed
