"""EC2 follows the phase (docs/state-machine.md#ec2-follows-the-phase): the start and stop actions
a decision asks for, the start cooldown, the runtime clock, and what EC2 outcomes change."""

from __future__ import annotations

from hfo_watchdog.core import alerts
from hfo_watchdog.core.draft import Draft, Tick, fields
from hfo_watchdog.core.model import (
    ActionKind,
    ControlState,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Phase,
    Policy,
    StartPurpose,
)
from hfo_watchdog.core.prewarm import keep_warm
from hfo_watchdog.core.signals import secs

WANT_RUNNING = frozenset({Phase.FAILING_OVER, Phase.ON_STANDBY, Phase.RECOVERING})
WANT_STOPPED = frozenset({Phase.HEALTHY, Phase.SUSPECT})
GONE = frozenset({InstanceState.TERMINATED, InstanceState.MISSING, InstanceState.SHUTTING_DOWN})
UP = frozenset({InstanceState.RUNNING, InstanceState.PENDING})
_NOT_RUNNING = frozenset(
    {InstanceState.STOPPED, InstanceState.TERMINATED, InstanceState.MISSING, InstanceState.SHUTTING_DOWN}
)
# EC2 outcomes after which an instance start really was requested (the cooldown stamp stays).
_STARTED = frozenset({"start_requested", "already_running"})


def _cooldown_left(state: ControlState, now: float, policy: Policy) -> float:
    if state.last_start_at is None:
        return 0.0
    return max(0.0, state.last_start_at + policy.start_cooldown_s - now)


def plan_instance(d: Draft, t: Tick) -> None:
    """The EC2 instance follows the phase: stopped while the primary holds the lease, running from
    the failover until the handback (left as it is during HANDING_BACK)."""
    phase, inst, st = d.state.phase, t.obs.instance, d.state
    if phase in WANT_STOPPED:
        if st.start_failures:
            d.update(start_failures=0)
        if d.wants(ActionKind.START_STANDBY):
            return  # a pre-warm start this tick
        if inst in UP and st.lease.site == LeaseSite.PRIMARY and not keep_warm(d, inst):
            stop_standby(d, inst)
        return
    if phase not in WANT_RUNNING:
        return
    if inst == InstanceState.STOPPED:
        left = _cooldown_left(st, d.now, d.policy)
        if st.start_failures >= d.policy.max_start_failures:
            d.reasons.append(f"not starting the standby again: {st.start_failures} start attempts failed in a row")
        elif left > 0:
            d.start_blocked = (
                f"starting the standby is held back by the start cooldown for {secs(left)} more"
                f" (last start {secs(d.now - (st.last_start_at or d.now))} ago)"
            )
            d.reasons.append(d.start_blocked)
        else:
            d.update(last_start_at=d.now, start_count=st.start_count + 1)
            d.act_start(StartPurpose.FAILOVER, f"start the standby ({phase})")
    elif inst == InstanceState.STOPPING:
        d.reasons.append("waiting for the standby instance to finish stopping before starting it")
    elif inst in GONE:
        d.reasons.append(f"the standby instance is {inst}: it cannot be started")
    elif inst == InstanceState.UNKNOWN:
        d.reasons.append("the standby instance's state is unknown: no EC2 action this tick")


def stop_standby(d: Draft, inst: InstanceState) -> None:
    d.update(warm_until=None)
    d.act(ActionKind.STOP_STANDBY, f"stop the standby: it is {inst} while the primary holds the lease")


def track_runtime(d: Draft, instance: InstanceState) -> None:
    since = d.state.standby_running_since
    if instance in UP and since is None:
        d.update(standby_running_since=d.now)
    elif instance in _NOT_RUNNING and since is not None:
        d.update(standby_running_since=None)


def fold_start(d: Draft, outcome: Ec2Outcome, purpose: StartPurpose | None = StartPurpose.FAILOVER) -> None:
    st, ctx = d.state, fields(d.state)
    if purpose == StartPurpose.PREWARM:
        _fold_prewarm(d, outcome)
        return
    if outcome.ok and outcome.action in _STARTED:
        how = f" as {outcome.instance_type}" if outcome.instance_type else ""
        d.reasons.append(f"standby start: {outcome.action}{how} (instance {outcome.state})")
        opened = st.open_alerts
        for key in (alerts.START_FAILED, alerts.START_GAVE_UP):
            opened, actions = alerts.resolve(opened, key, ctx)
            d.notify(actions)
        d.update(start_failures=0, open_alerts=opened)
        if outcome.state in UP and st.standby_running_since is None:
            d.update(standby_running_since=d.now)
        return
    # No instance start was made: give the cooldown stamp back so the next tick may try again.
    # (A start is emitted only once the cooldown has passed, so None allows exactly what the
    # previous stamp allowed.)
    d.update(last_start_at=None)
    if outcome.ok:
        d.reasons.append(f"standby start not made ({outcome.action}, instance {outcome.state}); next tick decides")
        return
    failures = st.start_failures + 1
    detail = f" - {outcome.detail}" if outcome.detail else ""
    body = f"start of the standby failed ({outcome.error}){detail}"
    opened = st.open_alerts
    if outcome.error in ("terminated", "missing"):
        opened, actions = alerts.raise_once(opened, alerts.INSTANCE_MISSING, body, ctx)
    else:
        opened, actions = alerts.raise_once(opened, alerts.START_FAILED, body, ctx)
    d.notify(actions)
    if failures >= d.policy.max_start_failures:
        opened, actions = alerts.raise_once(
            opened, alerts.START_GAVE_UP, f"{failures} start attempts failed in a row; no more retries", ctx
        )
        d.notify(actions)
        d.reasons.append(f"{body}; giving up after {failures} attempts in a row")
    else:
        d.reasons.append(f"{body}; retrying next tick ({failures} of {d.policy.max_start_failures} attempts)")
    d.update(start_failures=failures, open_alerts=opened)


def _fold_prewarm(d: Draft, outcome: Ec2Outcome) -> None:
    """A pre-warm start touches neither the failover's cooldown nor its failure count: a failed
    pre-warm only ends the hold (the failover, if it comes, makes its own start)."""
    if outcome.ok and outcome.action in _STARTED:
        how = f" as {outcome.instance_type}" if outcome.instance_type else ""
        d.reasons.append(f"pre-warm start: {outcome.action}{how} (instance {outcome.state})")
        if outcome.state in UP and d.state.standby_running_since is None:
            d.update(standby_running_since=d.now)
        return
    d.update(warm_until=None)
    detail = outcome.error or outcome.action
    d.reasons.append(f"pre-warm start not made ({detail}, instance {outcome.state})")


def fold_stop(d: Draft, outcome: Ec2Outcome) -> None:
    ctx = fields(d.state)
    if outcome.ok:
        d.reasons.append(f"standby stop: {outcome.action} (instance {outcome.state})")
        opened, actions = alerts.resolve(d.state.open_alerts, alerts.STOP_FAILED, ctx)
    else:
        detail = f" - {outcome.detail}" if outcome.detail else ""
        body = f"stop of the standby failed ({outcome.error}){detail}"
        d.reasons.append(f"{body}; retrying next tick")
        opened, actions = alerts.raise_once(d.state.open_alerts, alerts.STOP_FAILED, body, ctx)
    d.update(open_alerts=opened)
    d.notify(actions)
