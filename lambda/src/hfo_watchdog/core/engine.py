"""The watchdog's decision engine: pure functions from (state, observations, policy) to a Decision.

No I/O, no clock reads, no randomness: the same inputs always give the same Decision. The
handlers write the Decision's state (conditionally, docs/state.md) and only then perform its
actions. docs/state-machine.md describes every rule; the work is split into signals.py (the two
signals), lease.py (the fencing rule), phases.py (each mode's transitions), ec2_plan.py (EC2
follows the phase), anomalies.py and alerts.py (notified once), draft.py (the decision builder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from hfo_watchdog.core import anomalies, ec2_plan, phases, prewarm, renewal
from hfo_watchdog.core import lease as leases
from hfo_watchdog.core.draft import Draft, Tick, fields
from hfo_watchdog.core.model import (
    Action,
    ActionKind,
    ControlState,
    Decision,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Mode,
    Notification,
    Observations,
    Phase,
    Policy,
    Severity,
    Site,
    SiteRecord,
)
from hfo_watchdog.core.signals import Signals, heartbeat_signal, probe_signal, read_signals, record_probe

__all__ = ["answer_interval", "apply_outcomes", "decide", "on_heartbeat", "set_mode"]


def _describe_shadow(d: Draft, shadow: Draft) -> None:
    """PAUSED: say what AUTO would have done, do none of it."""
    said = False
    if shadow.transition is not None:
        tr = shadow.transition
        what = f"{tr.from_phase} -> {tr.to_phase}"
        if tr.to_lease != tr.from_lease:
            what += f" with lease {tr.from_lease.site} -> {tr.to_lease.site}"
        d.reasons.append(f"paused: auto mode would go {what} ({'; '.join(tr.reasons)})")
        said = True
    for action in shadow.actions:
        if action.kind != ActionKind.NOTIFY:
            d.reasons.append(f"paused: auto mode would {action.reason}")
            said = True
    if not said:
        d.reasons.append("paused: auto mode would change nothing now")


def _arm(d: Draft, primary: SiteRecord) -> None:
    """The primary's first accepted heartbeat arms the watchdog (notified once)."""
    d.update(armed_at=d.now)
    why = f"armed: the primary's first heartbeat was accepted ({primary.workload}, epoch {primary.epoch_seen})"
    d.reasons.append(why)
    note = Notification(
        key="armed",
        severity=Severity.INFO,
        title="watchdog armed",
        body=f"{why}; from now on a primary that goes down fails over to the standby",
        fields=fields(d.state),
    )
    d.notify([Action(kind=ActionKind.NOTIFY, reason="armed", notification=note)])


def _unarmed(d: Draft, t: Tick) -> None:
    """Before the primary's first heartbeat: no failover, no lease move, no EC2 start; a standby
    found running (started by hand) is stopped, since the primary holds the lease."""
    d.reasons.append("unarmed: waiting for the primary's first heartbeat; no failover and no EC2 start until then")
    inst = t.obs.instance
    if inst in ec2_plan.UP and d.state.lease.site == LeaseSite.PRIMARY:
        ec2_plan.stop_standby(d, inst)


def _auto_rules(d: Draft, t: Tick) -> None:
    phases.RULES[d.state.mode](d, t)
    renewal.plan_renewal(d, t)
    prewarm.plan_prewarm(d, t)
    ec2_plan.plan_instance(d, t)


def decide(state: ControlState, obs: Observations, policy: Policy) -> Decision:
    """One tick: fold in the probe, read both signals, follow the mode's rules (at most one
    transition), renew the primary over the probe path, pre-warm, drive EC2 toward the phase,
    raise or resolve anomalies."""
    d = Draft(state, obs.now, policy)
    d.update(last_tick_at=obs.now)
    d.state = record_probe(d.state, obs.probe)
    sig = read_signals(d.state, obs.primary, obs.now, policy)
    t = Tick(obs=obs, sig=sig)
    d.reasons.extend(sig.reasons)
    if d.state.armed_at is None and obs.primary is not None:
        _arm(d, obs.primary)  # heartbeats were accepted before this version stored armed_at
    if d.state.mode == Mode.DRILL and (d.state.mode_until is None or obs.now >= d.state.mode_until):
        d.update(mode=Mode.AUTO, mode_until=None)
        d.reasons.append("drill ended: back to auto mode, which hands back through the normal recovery rules")
    if d.state.armed_at is None:
        _unarmed(d, t)
    elif d.state.mode == Mode.PAUSED:
        shadow = Draft(replace(d.state, mode=Mode.AUTO), obs.now, policy)
        _auto_rules(shadow, t)
        _describe_shadow(d, shadow)
    else:
        _auto_rules(d, t)
    ec2_plan.track_runtime(d, obs.instance)
    anomalies.check(d, t)
    return d.finish(sig.probe, sig.heartbeat)


def apply_outcomes(
    state: ControlState, outcomes: Sequence[tuple[Action, Ec2Outcome]], now: float, policy: Policy
) -> Decision:
    """Fold what the handler's EC2 actions did into the state (after it performed them)."""
    d = Draft(state, now, policy)
    for action, outcome in outcomes:
        if action.kind == ActionKind.START_STANDBY:
            ec2_plan.fold_start(d, outcome, action.purpose)
        elif action.kind == ActionKind.STOP_STANDBY:
            ec2_plan.fold_stop(d, outcome)
    if not d.reasons:
        d.reasons.append("no EC2 outcome to record")
    return d.finish(probe_signal(state, policy)[0], "unknown")


def on_heartbeat(
    state: ControlState, record: SiteRecord, other: SiteRecord | None, now: float, policy: Policy
) -> Decision | None:
    """After the heartbeat handler recorded `record`: what this heartbeat makes possible at once,
    instead of at the next tick. None when nothing changes. In order:

    - the primary's first heartbeat arms the watchdog;
    - a failover waiting with the lease on the primary: the primary's heartbeat calls it off; the
      standby's heartbeat takes the lease as soon as the primary is fenced and still down;
    - a handover waiting with the lease on none completes when this heartbeat makes it safe.
    """
    records = {record.site: record, other.site: other} if other is not None else {record.site: record}
    primary, standby = records.get(Site.PRIMARY), records.get(Site.STANDBY)
    d = Draft(state, now, policy)
    if state.armed_at is None:
        if record.site != Site.PRIMARY:
            return None
        _arm(d, record)
    heartbeat, heartbeat_reason = heartbeat_signal(primary, now, policy)
    sig = read_signals(state, primary, now, policy)
    if state.mode == Mode.PAUSED or (
        state.mode == Mode.DRILL and (state.mode_until is None or now >= state.mode_until)
    ):
        pass  # paused never moves the lease; the tick ends the drill first
    elif state.lease.site == LeaseSite.PRIMARY and state.phase == Phase.FAILING_OVER:
        _failover_at_heartbeat_speed(d, record, primary, standby, sig)
    elif state.lease.site == LeaseSite.NONE:
        _handover(d, record, records, sig)
    if d.transition is None and d.state == state and not d.actions:
        return None
    if d.transition is not None:
        d.reasons.append(heartbeat_reason)
    return d.finish(sig.probe if d.transition is not None else "unknown", heartbeat)


def _failover_at_heartbeat_speed(
    d: Draft, record: SiteRecord, primary: SiteRecord | None, standby: SiteRecord | None, sig: Signals
) -> None:
    if record.site == Site.PRIMARY:
        if d.state.mode == Mode.AUTO and not sig.down:
            d.go(
                phases.signal_phase(sig),
                ["heartbeat from the primary: the failover is called off, the lease never left it"],
            )
        return
    if not sig.down:
        return  # the tick decides; a planned move (pinned, drill) goes through none
    if d.state.mode not in (Mode.AUTO, Mode.PIN_STANDBY, Mode.DRILL):
        return
    take, why = phases.standby_may_take(d.state, primary, standby, InstanceState.UNKNOWN, d.now, d.policy)
    if take:
        d.go(
            Phase.FAILING_OVER,
            ["heartbeat from the standby", sig.probe_reason, why],
            lease_to=LeaseSite.STANDBY,
            severity=Severity.CRITICAL,
        )


def _handover(d: Draft, record: SiteRecord, records: dict[Site, SiteRecord], sig: Signals) -> None:
    state, now, policy = d.state, d.now, d.policy
    if state.mode in (Mode.PIN_STANDBY, Mode.DRILL):
        if state.phase not in (Phase.FAILING_OVER, Phase.HANDING_BACK):
            return
        target = Site.STANDBY
        to = Phase.FAILING_OVER if state.phase == Phase.FAILING_OVER else Phase.ON_STANDBY
    else:
        if state.phase != Phase.HANDING_BACK:
            return
        if state.mode == Mode.AUTO and sig.heartbeat != "alive":
            return  # AUTO hands back only to a primary that heartbeats; the tick judges the rest
        target = Site.PRIMARY
        to = phases.signal_phase(sig)
    fence = leases.may_grant(target, state.lease, records, InstanceState.UNKNOWN, now, policy, state.renewed_until)
    if not fence.fenced:
        return
    d.go(to, [f"heartbeat from the {record.site}", fence.reason], lease_to=LeaseSite(target.value))
    if target == Site.PRIMARY:
        d.act(ActionKind.STOP_STANDBY, "stop the standby: the primary holds the lease again")


def answer_interval(state: ControlState, site: Site, now: float, policy: Policy) -> float:
    """The heartbeat interval a lease answer asks of `site`: short while a lease move waits on its
    next heartbeat (a warm or failing-over standby, a handover), the usual one otherwise."""
    fast = min(policy.handover_heartbeat_interval_s, policy.heartbeat_interval_s)
    if state.lease.site == LeaseSite.NONE:
        return fast
    if site == Site.STANDBY and state.lease.site == LeaseSite.PRIMARY:
        warm = state.warm_until is not None and now < state.warm_until
        if warm or state.phase == Phase.FAILING_OVER:
            return fast
    return policy.heartbeat_interval_s


def set_mode(state: ControlState, mode: Mode, now: float, until: float | None = None) -> ControlState:
    """The operator's mode change (CLI). DRILL needs a future `until`; no other mode takes one.
    A mode change also gives EC2 a fresh set of start attempts (start_failures back to 0)."""
    try:
        mode = Mode(mode)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise ValueError(f"mode {mode!r} is not one of: {allowed}") from None
    if mode == Mode.DRILL:
        if until is None:
            raise ValueError("drill mode needs an end time: until (epoch seconds) must be given")
        if isinstance(until, bool) or not isinstance(until, int | float):
            raise ValueError(f"drill end time until={until!r} must be a number (epoch seconds)")
        if not math.isfinite(until) or until <= now:
            raise ValueError(f"drill end time until={until!r} must be a finite time after now ({now!r})")
    elif until is not None:
        raise ValueError(f"until is only for drill mode; mode {mode.value} must not have one (got {until!r})")
    return replace(state, mode=mode, mode_until=until, start_failures=0, version=state.version + 1)
