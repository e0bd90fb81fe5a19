"""Anomalies: raised once, kept open while they last, resolved with one notification."""

from __future__ import annotations

from dataclasses import replace

from hfo_watchdog.core import alerts
from hfo_watchdog.core.engine import decide
from hfo_watchdog.core.model import InstanceState, LeaseSite, Mode, Phase, Severity
from hfo_watchdog.core.steady import steady_gap_s
from testsupport.engine import (
    POLICY,
    T0,
    fail,
    healthy_obs,
    notify_keys,
    obs,
    ok,
    rec,
    standby_rec,
    state,
    streak,
)

FIELDS = {"mode": "auto"}


def _note(d, key):
    return next(a.notification for a in d.actions if a.notification is not None and a.notification.key == key)


def test_reconcile_raises_new_keys_once_and_resolves_cleared_ones():
    opened, actions = alerts.reconcile(frozenset(), {"both_running": "why"}, alerts.KINDS, FIELDS)
    assert opened == {"both_running"}
    assert [a.notification.key for a in actions] == ["both_running"]
    again, actions = alerts.reconcile(opened, {"both_running": "why"}, alerts.KINDS, FIELDS)
    assert (again, actions) == (opened, [])
    cleared, actions = alerts.reconcile(opened, {}, alerts.KINDS, FIELDS)
    assert cleared == frozenset()
    assert [a.notification.key for a in actions] == ["both_running:resolved"]


def test_reconcile_leaves_keys_it_does_not_manage():
    opened, actions = alerts.reconcile(frozenset({"start_failed"}), {}, {"both_running"}, FIELDS)
    assert (opened, actions) == (frozenset({"start_failed"}), [])


def test_funnel_outage_is_a_degraded_probe_alert_notified_once_then_resolved():
    st = streak(state(), fails=2)
    keys = []
    for i in range(4):
        now = T0 + 60 * i
        d = decide(st, obs(now=now, probe=fail(now), primary=rec(age=4, now=now)), POLICY)
        keys += notify_keys(d)
        st = d.state
        assert st.lease.site == LeaseSite.PRIMARY
    note = _note(decide(streak(state(), fails=2), obs(probe=fail(), primary=rec(age=4)), POLICY), "degraded:probe")
    assert note.severity == Severity.WARNING
    assert note.body == (
        "probe failed 3 times in a row (connect_timeout), but last heartbeat from primary 4 s ago: no failover"
    )
    assert note.fields["lease"] == "primary"
    assert keys.count("degraded:probe") == 1
    back = decide(st, obs(now=T0 + 300, probe=ok(T0 + 300), primary=rec(now=T0 + 300)), POLICY)
    assert "degraded:probe:resolved" in notify_keys(back)
    assert "degraded:probe" not in back.state.open_alerts


def test_a_probe_outage_with_an_old_heartbeat_is_not_called_a_funnel_problem():
    st = streak(state(), fails=2)
    d = decide(st, obs(probe=fail(), primary=rec(age=POLICY.lease_ttl_s + 1)), POLICY)
    assert "degraded:probe" not in notify_keys(d)


def test_lost_heartbeats_with_a_passing_probe_are_a_degraded_heartbeat_alert():
    d = decide(streak(state(), oks=5), obs(probe=ok(), primary=rec(age=200)), POLICY)
    note = _note(d, "degraded:heartbeat")
    assert note.body == "no heartbeat from primary for 200 s, but probe ok (6 in a row): no failover"


def test_both_sites_running_is_a_critical_split_brain_alert():
    d = decide(state(), healthy_obs(standby=standby_rec(age=10), instance=InstanceState.RUNNING), POLICY)
    note = _note(d, "both_running")
    assert note.severity == Severity.CRITICAL
    stale = decide(state(), healthy_obs(standby=standby_rec(age=61), instance=InstanceState.RUNNING), POLICY)
    assert "both_running" not in notify_keys(stale)
    starting = decide(
        state(), healthy_obs(standby=standby_rec(workload="starting"), instance=InstanceState.PENDING), POLICY
    )
    assert "both_running" in notify_keys(starting)


def test_a_stopped_standby_instance_is_not_a_split_brain_whatever_its_last_record_said():
    # The instance was stopped from outside before its agent could report the workload stopped:
    # its last record still says running and is younger than the TTL, but nothing can run there.
    for gone in (InstanceState.STOPPED, InstanceState.TERMINATED, InstanceState.MISSING):
        d = decide(state(), healthy_obs(standby=standby_rec(age=2), instance=gone), POLICY)
        assert "both_running" not in notify_keys(d), gone
    # While it is stopping, the OS may still run the bot: that still counts.
    d = decide(state(), healthy_obs(standby=standby_rec(age=2), instance=InstanceState.STOPPING), POLICY)
    assert "both_running" in notify_keys(d)


def test_standby_overtime_is_notified_once_and_resolved_when_it_stops():
    since = T0 - POLICY.standby_max_runtime_s - 1
    st = streak(state(Phase.ON_STANDBY, lease=LeaseSite.STANDBY, standby_running_since=since), fails=50)
    running = obs(probe=fail(), primary=rec(age=9999), instance=InstanceState.RUNNING)
    d = decide(st, running, POLICY)
    assert _note(d, "standby_overtime").body == "the standby has run for 86401 s, more than 86400 s"
    assert "standby_overtime" not in notify_keys(decide(d.state, running, POLICY))
    stopped = decide(d.state, obs(probe=fail(), primary=rec(age=9999), instance=InstanceState.STOPPED), POLICY)
    assert "standby_overtime:resolved" in notify_keys(stopped)
    assert stopped.state.standby_running_since is None


def test_a_start_held_back_by_the_cooldown_is_alerted_once():
    st = streak(state(Phase.ON_STANDBY, lease=LeaseSite.STANDBY, last_start_at=T0 - 60), fails=50)
    down = obs(probe=fail(), primary=rec(age=9999))
    d = decide(st, down, POLICY)
    assert _note(d, "start_blocked_by_cooldown").body.startswith(
        "starting the standby is held back by the start cooldown for 840 s more"
    )
    assert "start_blocked_by_cooldown" not in notify_keys(decide(d.state, down, POLICY))
    later = obs(now=T0 + 900, probe=fail(), primary=rec(age=9999, now=T0 + 900))
    assert "start_blocked_by_cooldown:resolved" in notify_keys(decide(d.state, later, POLICY))


def test_a_missing_standby_instance_is_critical_even_while_healthy():
    d = decide(state(), healthy_obs(instance=InstanceState.MISSING), POLICY)
    note = _note(d, "instance_missing")
    assert note.severity == Severity.CRITICAL
    assert note.body == "the standby instance is missing: a failover cannot start it"


def test_a_down_primary_under_a_mode_that_forbids_failover_is_critical():
    st = streak(state(Phase.SUSPECT, mode=Mode.PIN_PRIMARY), fails=5)
    d = decide(st, obs(probe=fail(), primary=rec(age=500)), POLICY)
    assert _note(d, "primary_down_no_failover").body == "the primary is down and the mode is pin_primary"


def test_every_alert_key_has_a_title_and_severity():
    for key, kind in alerts.KINDS.items():
        assert kind.title and isinstance(kind.severity, Severity), key


# -- the Funnel-outage diagnosis needs heartbeats that keep arriving (issue 10) ------------------


def test_a_dead_laptop_whose_last_heartbeat_is_still_young_is_not_called_a_funnel_outage():
    """The laptop died 25 s ago; the probes have failed since (3 in a row). Its last heartbeat
    is younger than the lease TTL, which used to be enough for `degraded:probe`."""
    st = streak(state(), fails=2)
    st = replace(st, probe_failing_since=T0 - 20)
    d = decide(st, obs(probe=fail(), primary=rec(age=25)), POLICY)
    assert "degraded:probe" not in notify_keys(d)


def test_heartbeats_that_came_back_after_the_probes_failed_need_the_recovery_window():
    """The laptop is back (its heartbeats steady for 60 s) while its probe still fails: not yet a
    Funnel diagnosis; after the recovery window of steady heartbeats, it is."""
    st = streak(state(), fails=5)  # failing for 5 minutes
    young = decide(st, obs(probe=fail(), primary=rec(age=3, steady_for=60)), POLICY)
    assert "degraded:probe" not in notify_keys(young)
    settled = decide(st, obs(probe=fail(), primary=rec(age=3, steady_for=POLICY.recovery_steady_s)), POLICY)
    assert "degraded:probe" in notify_keys(settled)


def test_a_heartbeat_gap_longer_than_the_steady_gap_clears_the_funnel_diagnosis():
    st = streak(state(), fails=3)
    d = decide(st, obs(probe=fail(), primary=rec(age=steady_gap_s(POLICY) + 1)), POLICY)
    assert "degraded:probe" not in notify_keys(d)


def test_the_first_failure_of_a_streak_is_remembered_until_a_probe_passes():
    st = state()
    for i in range(3):
        st = decide(st, obs(now=T0 + 60 * i, probe=fail(T0 + 60 * i), primary=rec(now=T0 + 60 * i)), POLICY).state
    assert (st.probe_fail_streak, st.probe_failing_since) == (3, T0)
    st = decide(st, obs(now=T0 + 180, probe=ok(T0 + 180), primary=rec(now=T0 + 180)), POLICY).state
    assert st.probe_failing_since is None
