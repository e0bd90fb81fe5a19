"""on_heartbeat(): a heartbeat that makes a handover safe completes it at once."""

from __future__ import annotations

import pytest
from hfo_watchdog.core.engine import on_heartbeat
from hfo_watchdog.core.model import ActionKind, Lease, LeaseSite, Mode, Phase, Site
from testsupport.engine import POLICY, T0, ec2_kinds, notify_keys, rec, said, standby_rec, state, streak


def _handing_back(mode=Mode.AUTO, **kw):
    st = state(Phase.HANDING_BACK, lease=LeaseSite.NONE, epoch=7, changed_ago=15, in_phase=15, mode=mode, **kw)
    return streak(st, oks=6)


ACK = standby_rec(age=0, workload="stopped", epoch=7)
PRIMARY_UP = rec(age=3, workload="stopped", epoch=7)


def test_standby_acknowledgement_completes_the_handback():
    st = _handing_back()
    d = on_heartbeat(st, ACK, PRIMARY_UP, T0, POLICY)
    assert d is not None
    assert d.state.version == st.version + 1
    assert (d.state.phase, d.state.lease) == (Phase.HEALTHY, Lease(LeaseSite.PRIMARY, 8, T0))
    assert d.transition is not None and d.transition.from_phase == Phase.HANDING_BACK
    assert ec2_kinds(d) == [ActionKind.STOP_STANDBY]
    assert notify_keys(d) == ["transition:handing_back->healthy"]
    assert said(d, "heartbeat from the standby")
    assert said(d, "standby acknowledged epoch 7 with its workload stopped")
    assert (d.probe_signal, d.heartbeat_signal) == ("alive", "alive")


def test_a_primary_heartbeat_completes_it_too_once_the_standby_has_acknowledged():
    d = on_heartbeat(_handing_back(), PRIMARY_UP, ACK, T0, POLICY)
    assert d is not None and d.state.lease.site == LeaseSite.PRIMARY


@pytest.mark.parametrize(
    "standby",
    [
        standby_rec(age=0, workload="stopping", epoch=7),
        standby_rec(age=0, workload="running", epoch=7),
        standby_rec(age=0, workload="stopped", epoch=6),  # has not heard the none epoch yet
    ],
)
def test_no_decision_until_the_standby_is_stopped_under_the_current_epoch(standby):
    assert on_heartbeat(_handing_back(), standby, PRIMARY_UP, T0, POLICY) is None


def test_auto_does_not_hand_back_to_a_primary_without_heartbeats():
    assert on_heartbeat(_handing_back(), ACK, rec(age=400, workload="stopped"), T0, POLICY) is None
    assert on_heartbeat(_handing_back(), ACK, None, T0, POLICY) is None


def test_pinned_primary_hands_back_even_without_primary_heartbeats():
    d = on_heartbeat(_handing_back(Mode.PIN_PRIMARY), ACK, None, T0, POLICY)
    assert d is not None
    assert (d.state.phase, d.state.lease.site) == (Phase.SUSPECT, LeaseSite.PRIMARY)


def test_handback_with_a_failing_probe_ends_suspect():
    st = streak(_handing_back(), fails=1)
    d = on_heartbeat(st, ACK, PRIMARY_UP, T0, POLICY)
    assert d is not None and d.state.phase == Phase.SUSPECT


@pytest.mark.parametrize(
    ("phase", "lease", "mode"),
    [
        (Phase.HEALTHY, LeaseSite.PRIMARY, Mode.AUTO),
        (Phase.ON_STANDBY, LeaseSite.STANDBY, Mode.AUTO),
        (Phase.RECOVERING, LeaseSite.STANDBY, Mode.AUTO),
        (Phase.FAILING_OVER, LeaseSite.NONE, Mode.AUTO),  # a failover via none is the tick's job
        (Phase.HANDING_BACK, LeaseSite.NONE, Mode.PAUSED),
    ],
)
def test_other_heartbeats_change_nothing(phase, lease, mode):
    st = state(phase, lease=lease, epoch=7, changed_ago=15, mode=mode)
    assert on_heartbeat(st, ACK, PRIMARY_UP, T0, POLICY) is None


@pytest.mark.parametrize("mode", [Mode.PIN_STANDBY, Mode.DRILL])
def test_primary_acknowledgement_completes_a_planned_move(mode):
    until = T0 + 600 if mode == Mode.DRILL else None
    st = state(Phase.FAILING_OVER, lease=LeaseSite.NONE, epoch=7, changed_ago=12, mode=mode, mode_until=until)
    standby = standby_rec(age=4, workload="stopped", epoch=7)
    d = on_heartbeat(st, rec(age=0, workload="stopped", epoch=7), standby, T0, POLICY)
    assert d is not None
    assert (d.state.phase, d.state.lease) == (Phase.FAILING_OVER, Lease(LeaseSite.STANDBY, 8, T0))
    assert ec2_kinds(d) == []
    assert said(d, "heartbeat from the primary")


def test_planned_move_waits_while_the_primary_still_runs():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.NONE, epoch=7, changed_ago=12, mode=Mode.PIN_STANDBY)
    assert on_heartbeat(st, rec(age=0, workload="stopping", epoch=7), None, T0, POLICY) is None


def test_an_ended_drill_is_left_to_the_tick():
    st = state(Phase.FAILING_OVER, lease=LeaseSite.NONE, epoch=7, changed_ago=12, mode=Mode.DRILL, mode_until=T0)
    assert on_heartbeat(st, rec(age=0, workload="stopped", epoch=7), None, T0, POLICY) is None


def test_a_heartbeat_never_takes_the_lease_from_a_holder():
    for site in (LeaseSite.PRIMARY, LeaseSite.STANDBY):
        for mode in Mode:
            st = state(Phase.HANDING_BACK, lease=site, mode=mode, mode_until=T0 + 60)
            for record in (ACK, PRIMARY_UP):
                other = PRIMARY_UP if record.site == Site.STANDBY else ACK
                assert on_heartbeat(st, record, other, T0, POLICY) is None
