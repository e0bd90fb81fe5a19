"""apply_outcomes(): what the handler's EC2 start/stop did, folded back into the state."""

from __future__ import annotations

from hfo_watchdog.core.engine import apply_outcomes, decide
from hfo_watchdog.core.model import (
    Action,
    ActionKind,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Notification,
    Phase,
    Severity,
)
from testsupport.engine import POLICY, T0, down_obs, ec2_kinds, notify_keys, obs, rec, said, state, streak

START = Action(ActionKind.START_STANDBY, "start the standby (failing_over)")
STOP = Action(ActionKind.STOP_STANDBY, "stop the standby")
STARTED = Ec2Outcome(ok=True, action="start_requested", state=InstanceState.PENDING, instance_type="t3.small")
NO_CAPACITY = Ec2Outcome(
    ok=False,
    action="none",
    state=InstanceState.STOPPED,
    error="insufficient_capacity",
    detail="no capacity for t3.small, t3a.small",
)


def _after_start(**kw):
    """The state decide() wrote when it asked for the start at T0."""
    base = state(Phase.FAILING_OVER, lease=LeaseSite.STANDBY, last_start_at=T0, start_count=1, **kw)
    return streak(base, fails=3)


def _notes(d):
    return [a.notification for a in d.actions if a.notification is not None]


def test_a_started_standby_keeps_its_cooldown_stamp_and_starts_its_runtime_clock():
    st = _after_start()
    d = apply_outcomes(st, [(START, STARTED)], T0, POLICY)
    assert d.state.version == st.version + 1
    assert (d.state.last_start_at, d.state.start_failures) == (T0, 0)
    assert d.state.standby_running_since == T0
    assert d.reasons == ("standby start: start_requested as t3.small (instance pending)",)
    assert d.actions == () and d.transition is None


def test_a_failed_start_gives_back_the_cooldown_so_the_next_tick_retries():
    st = _after_start()
    d = apply_outcomes(st, [(START, NO_CAPACITY)], T0, POLICY)
    assert (d.state.last_start_at, d.state.start_failures) == (None, 1)
    assert said(
        d,
        "start of the standby failed (insufficient_capacity) - no capacity for t3.small, t3a.small;"
        " retrying next tick (1 of 5 attempts)",
    )
    [note] = _notes(d)
    assert (note.key, note.severity) == ("start_failed", Severity.WARNING)

    retry = decide(d.state, down_obs(now=T0 + 60, primary=rec(age=260, now=T0 + 60)), POLICY)
    assert ec2_kinds(retry) == [ActionKind.START_STANDBY]
    assert "start_failed" not in notify_keys(retry)  # still open: not notified again


def test_repeated_failures_alert_once_then_give_up_after_max_start_failures():
    st = _after_start()
    keys = []
    for i in range(POLICY.max_start_failures):
        d = apply_outcomes(st, [(START, NO_CAPACITY)], T0 + 60 * i, POLICY)
        keys += notify_keys(d)
        st = d.state
    assert keys == ["start_failed", "start_gave_up"]
    assert st.start_failures == POLICY.max_start_failures
    assert said(d, "giving up after 5 attempts in a row")
    assert next(n for n in _notes(d) if n.key == "start_gave_up").severity == Severity.CRITICAL
    later = decide(st, down_obs(now=T0 + 600, primary=rec(age=800, now=T0 + 600)), POLICY)
    assert ec2_kinds(later) == []


def test_a_start_after_failures_resolves_the_alerts():
    st = _after_start(start_failures=5, open_alerts=frozenset({"start_failed", "start_gave_up"}))
    d = apply_outcomes(st, [(START, STARTED)], T0, POLICY)
    assert d.state.start_failures == 0
    assert d.state.open_alerts == frozenset()
    assert notify_keys(d) == ["start_failed:resolved", "start_gave_up:resolved"]
    assert all(n.severity == Severity.INFO for n in _notes(d))


def test_a_terminated_or_missing_instance_is_a_critical_alert():
    gone = Ec2Outcome(ok=False, action="none", state=InstanceState.TERMINATED, error="terminated")
    d = apply_outcomes(_after_start(), [(START, gone)], T0, POLICY)
    [note] = _notes(d)
    assert (note.key, note.severity) == ("instance_missing", Severity.CRITICAL)
    assert note.body == "start of the standby failed (terminated)"


def test_a_start_that_was_not_made_gives_back_the_cooldown_without_counting_a_failure():
    waiting = Ec2Outcome(ok=True, action="waiting", state=InstanceState.STOPPING)
    d = apply_outcomes(_after_start(), [(START, waiting)], T0, POLICY)
    assert (d.state.last_start_at, d.state.start_failures) == (None, 0)
    assert said(d, "standby start not made (waiting, instance stopping); next tick decides")


def test_a_failed_stop_alerts_once_and_a_later_stop_resolves_it():
    st = state(Phase.HEALTHY)
    failed = Ec2Outcome(ok=False, action="none", state=InstanceState.RUNNING, error="aws_error", detail="throttled")
    d = apply_outcomes(st, [(STOP, failed)], T0, POLICY)
    assert notify_keys(d) == ["stop_failed"]
    assert said(d, "stop of the standby failed (aws_error) - throttled; retrying next tick")
    again = apply_outcomes(d.state, [(STOP, failed)], T0 + 60, POLICY)
    assert notify_keys(again) == []
    done = apply_outcomes(again.state, [(STOP, Ec2Outcome(True, "stop_requested", InstanceState.STOPPING))], T0, POLICY)
    assert notify_keys(done) == ["stop_failed:resolved"]


def test_a_stop_failure_clears_when_a_tick_sees_the_standby_stopped():
    st = state(Phase.HEALTHY, open_alerts=frozenset({"stop_failed"}))
    healthy = obs(primary=rec(), instance=InstanceState.STOPPED)
    d = decide(st, healthy, POLICY)
    assert "stop_failed:resolved" in notify_keys(d)
    still = decide(st, obs(primary=rec(), instance=InstanceState.RUNNING), POLICY)
    assert "stop_failed" in still.state.open_alerts


def test_no_outcomes_still_bumps_the_version_and_ignores_notifications():
    st = _after_start()
    note = Action(ActionKind.NOTIFY, "x", Notification("k", Severity.INFO, "t", "b"))
    d = apply_outcomes(st, [], T0, POLICY)
    d2 = apply_outcomes(st, [(note, STARTED)], T0, POLICY)
    assert d.state.version == d2.state.version == st.version + 1
    assert d.actions == d2.actions == ()
    assert d.reasons == d2.reasons == ("no EC2 outcome to record",)
    assert d2.state.start_failures == st.start_failures
    assert d.probe_signal == "down"
