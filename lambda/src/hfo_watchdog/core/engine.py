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

from hfo_watchdog.core import anomalies, ec2_plan, phases
from hfo_watchdog.core import lease as leases
from hfo_watchdog.core.draft import Draft, Tick
from hfo_watchdog.core.model import (
    Action,
    ActionKind,
    ControlState,
    Decision,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Mode,
    Observations,
    Phase,
    Policy,
    Site,
    SiteRecord,
)
from hfo_watchdog.core.signals import heartbeat_signal, probe_signal, read_signals, record_probe

__all__ = ["apply_outcomes", "decide", "on_heartbeat", "set_mode"]


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


def decide(state: ControlState, obs: Observations, policy: Policy) -> Decision:
    """One tick: fold in the probe, read both signals, follow the mode's rules (at most one
    transition), drive EC2 toward the phase, raise or resolve anomalies."""
    d = Draft(state, obs.now, policy)
    d.update(last_tick_at=obs.now)
    d.state = record_probe(d.state, obs.probe)
    sig = read_signals(d.state, obs.primary, obs.now, policy)
    t = Tick(obs=obs, sig=sig)
    d.reasons.extend(sig.reasons)
    if d.state.mode == Mode.DRILL and (d.state.mode_until is None or obs.now >= d.state.mode_until):
        d.update(mode=Mode.AUTO, mode_until=None)
        d.reasons.append("drill ended: back to auto mode, which hands back through the normal recovery rules")
    if d.state.mode == Mode.PAUSED:
        shadow = Draft(replace(d.state, mode=Mode.AUTO), obs.now, policy)
        phases.auto(shadow, t)
        ec2_plan.plan_instance(shadow, t)
        _describe_shadow(d, shadow)
    else:
        phases.RULES[d.state.mode](d, t)
        ec2_plan.plan_instance(d, t)
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
            ec2_plan.fold_start(d, outcome)
        elif action.kind == ActionKind.STOP_STANDBY:
            ec2_plan.fold_stop(d, outcome)
    if not d.reasons:
        d.reasons.append("no EC2 outcome to record")
    return d.finish(probe_signal(state, policy)[0], "unknown")


def on_heartbeat(
    state: ControlState, record: SiteRecord, other: SiteRecord | None, now: float, policy: Policy
) -> Decision | None:
    """After the heartbeat handler recorded `record`: complete a handover that this heartbeat
    makes safe (the gap is then seconds instead of a tick). Otherwise None."""
    if state.lease.site != LeaseSite.NONE or state.mode == Mode.PAUSED:
        return None
    if state.mode == Mode.DRILL and (state.mode_until is None or now >= state.mode_until):
        return None  # the tick ends the drill first
    records = {record.site: record, other.site: other} if other is not None else {record.site: record}
    primary = records.get(Site.PRIMARY)
    heartbeat, heartbeat_reason = heartbeat_signal(primary, now, policy)
    probe_status = "unknown"
    if state.mode in (Mode.PIN_STANDBY, Mode.DRILL):
        if state.phase not in (Phase.FAILING_OVER, Phase.HANDING_BACK):
            return None
        target = Site.STANDBY
        to = Phase.FAILING_OVER if state.phase == Phase.FAILING_OVER else Phase.ON_STANDBY
    else:
        if state.phase != Phase.HANDING_BACK:
            return None
        if state.mode == Mode.AUTO and heartbeat != "alive":
            return None  # AUTO hands back only to a primary that heartbeats; the tick judges the rest
        target = Site.PRIMARY
        sig = read_signals(state, primary, now, policy)
        probe_status = sig.probe
        to = phases.signal_phase(sig)
    fence = leases.may_grant(target, state.lease, records, InstanceState.UNKNOWN, now, policy)
    if not fence.fenced:
        return None
    d = Draft(state, now, policy)
    d.go(to, [f"heartbeat from the {record.site}", fence.reason], lease_to=LeaseSite(target.value))
    if target == Site.PRIMARY:
        d.act(ActionKind.STOP_STANDBY, "stop the standby: the primary holds the lease again")
    d.reasons.append(heartbeat_reason)
    return d.finish(probe_status, heartbeat)


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
