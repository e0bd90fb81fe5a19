"""The watchdog's decision engine: pure functions from (state, observations, policy) to a Decision.

No I/O, no clock reads, no randomness: the same inputs always give the same Decision. The
handlers write the Decision's state (conditionally, docs/state.md) and only then perform its
actions. docs/state-machine.md describes every rule implemented here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from hfo_watchdog import alerts
from hfo_watchdog import lease as leases
from hfo_watchdog.model import (
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
    Transition,
)
from hfo_watchdog.signals import (
    Signals,
    heartbeat_signal,
    probe_signal,
    read_signals,
    record_probe,
    recovery_check,
    secs,
)

__all__ = ["apply_outcomes", "decide", "on_heartbeat", "set_mode"]

# The lease each phase allows; FAILING_OVER passes through all three.
_PHASE_LEASES: Mapping[Phase, frozenset[LeaseSite]] = {
    Phase.HEALTHY: frozenset({LeaseSite.PRIMARY}),
    Phase.SUSPECT: frozenset({LeaseSite.PRIMARY}),
    Phase.FAILING_OVER: frozenset(LeaseSite),
    Phase.ON_STANDBY: frozenset({LeaseSite.STANDBY}),
    Phase.RECOVERING: frozenset({LeaseSite.STANDBY}),
    Phase.HANDING_BACK: frozenset({LeaseSite.NONE}),
}
# The phase that matches a lease, when a stored phase does not (a hand-edited item, an old bug).
_LEASE_PHASE: Mapping[LeaseSite, Phase] = {
    LeaseSite.PRIMARY: Phase.SUSPECT,
    LeaseSite.STANDBY: Phase.ON_STANDBY,
    LeaseSite.NONE: Phase.HANDING_BACK,
}
_WANT_RUNNING = frozenset({Phase.FAILING_OVER, Phase.ON_STANDBY, Phase.RECOVERING})
_WANT_STOPPED = frozenset({Phase.HEALTHY, Phase.SUSPECT})
_GONE = frozenset({InstanceState.TERMINATED, InstanceState.MISSING, InstanceState.SHUTTING_DOWN})
_UP = frozenset({InstanceState.RUNNING, InstanceState.PENDING})
_NOT_RUNNING = frozenset(
    {InstanceState.STOPPED, InstanceState.TERMINATED, InstanceState.MISSING, InstanceState.SHUTTING_DOWN}
)
_ACTIVE_WORKLOAD = frozenset({"running", "starting"})
# EC2 outcomes after which an instance start really was requested (the cooldown stamp stays).
_STARTED = frozenset({"start_requested", "already_running"})
_TRANSITION_SEVERITY: Mapping[Phase, Severity] = {
    Phase.HEALTHY: Severity.INFO,
    Phase.SUSPECT: Severity.WARNING,
    Phase.FAILING_OVER: Severity.CRITICAL,
    Phase.ON_STANDBY: Severity.WARNING,
    Phase.RECOVERING: Severity.INFO,
    Phase.HANDING_BACK: Severity.INFO,
}
_LEVEL_ALERTS = (
    alerts.DEGRADED_PROBE,
    alerts.DEGRADED_HEARTBEAT,
    alerts.START_BLOCKED,
    alerts.START_FAILED,
    alerts.START_GAVE_UP,
    alerts.STOP_FAILED,
    alerts.INSTANCE_MISSING,
    alerts.STANDBY_OVERTIME,
    alerts.BOTH_RUNNING,
    alerts.DOWN_NO_FAILOVER,
)


def _fields(state: ControlState) -> dict[str, str]:
    return {
        "mode": state.mode.value,
        "phase": state.phase.value,
        "lease": state.lease.site.value,
        "epoch": str(state.lease.epoch),
    }


class _Draft:
    """One decision being built: the evolving state, the reasons, the actions, the transition."""

    def __init__(self, state: ControlState, now: float, policy: Policy) -> None:
        self.before = state
        self.state = state
        self.now = now
        self.policy = policy
        self.reasons: list[str] = []
        self.actions: list[Action] = []
        self.transition: Transition | None = None
        self.start_blocked: str | None = None

    def update(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]

    def act(self, kind: ActionKind, reason: str) -> None:
        self.actions.append(Action(kind=kind, reason=reason))
        self.reasons.append(reason)

    def notify(self, actions: Sequence[Action]) -> None:
        self.actions.extend(actions)

    def time_in_phase(self) -> float:
        return self.now - self.state.phase_since

    def go(
        self,
        to: Phase,
        reasons: Sequence[str],
        lease_to: LeaseSite | None = None,
        severity: Severity | None = None,
    ) -> None:
        """Make the (single) transition of this decision: phase and/or lease, one notification."""
        if self.transition is not None:
            raise AssertionError("one transition per decision")
        before = self.state
        why = [r for r in reasons if r]
        new_lease = before.lease
        if lease_to is not None and lease_to != before.lease.site:
            new_lease = leases.moved(before.lease, lease_to, self.now)
            why.append(f"lease {before.lease.site} -> {lease_to} (epoch {new_lease.epoch})")
        changes: dict[str, object] = {"lease": new_lease}
        if to != before.phase:
            changes["phase"] = to
            changes["phase_since"] = self.now
        self.update(**changes)
        self.transition = Transition(
            from_phase=before.phase,
            to_phase=to,
            from_lease=before.lease,
            to_lease=new_lease,
            reasons=tuple(why),
            at=self.now,
        )
        title = f"{before.phase} -> {to}"
        if new_lease != before.lease:
            title += f", lease {before.lease.site} -> {new_lease.site} (epoch {new_lease.epoch})"
        note = Notification(
            key=f"transition:{before.phase}->{to}",
            severity=severity or _TRANSITION_SEVERITY[to],
            title=title,
            body="; ".join(why),
            fields=_fields(self.state),
        )
        self.actions.append(Action(kind=ActionKind.NOTIFY, reason=title, notification=note))
        self.reasons.extend(why)

    def gated_go(self, to: Phase, reasons: Sequence[str], lease_to: LeaseSite | None = None) -> None:
        """A non-emergency transition: only after `min_state_s` in the current phase."""
        stayed = self.time_in_phase()
        if stayed >= self.policy.min_state_s:
            self.go(to, reasons, lease_to)
        else:
            self.reasons.extend(reasons)
            self.reasons.append(
                f"staying {self.state.phase} (would go {to}): in this phase for {secs(stayed)}"
                f" of the minimum {secs(self.policy.min_state_s)}"
            )

    def finish(self, probe_signal: str, heartbeat_signal: str) -> Decision:
        state = replace(self.state, version=self.before.version + 1)
        ec2 = tuple(a for a in self.actions if a.kind != ActionKind.NOTIFY)
        notes = tuple(a for a in self.actions if a.kind == ActionKind.NOTIFY)
        return Decision(
            state=state,
            actions=ec2 + notes,
            reasons=tuple(dict.fromkeys(self.reasons)),  # each sentence once, in order
            transition=self.transition,
            probe_signal=probe_signal,
            heartbeat_signal=heartbeat_signal,
        )


@dataclass(frozen=True)
class _Tick:
    """What one tick knows besides the state."""

    obs: Observations
    sig: Signals

    @property
    def records(self) -> dict[Site, SiteRecord | None]:
        return {Site.PRIMARY: self.obs.primary, Site.STANDBY: self.obs.standby}


# --------------------------------------------------------------------------- shared steps


def _signal_phase(sig: Signals) -> Phase:
    return Phase.HEALTHY if sig.healthy else Phase.SUSPECT


def _repair(d: _Draft) -> bool:
    """A phase that contradicts the lease is corrected first (the lease is the safety record)."""
    phase, site = d.state.phase, d.state.lease.site
    if site in _PHASE_LEASES[phase]:
        return False
    d.go(_LEASE_PHASE[site], [f"phase {phase} does not match the lease on {site}: phase corrected"])
    return True


def _follow_signals(d: _Draft, sig: Signals) -> None:
    """HEALTHY <-> SUSPECT, both gated by min_state_s (hysteresis against flapping)."""
    if d.state.phase == Phase.HEALTHY and sig.troubled:
        d.gated_go(Phase.SUSPECT, sig.bad_reasons)
    elif d.state.phase == Phase.SUSPECT and sig.healthy:
        d.gated_go(Phase.HEALTHY, ["probe ok and heartbeats arriving again"])


def _grant(d: _Draft, t: _Tick, target: Site, to: Phase, why: Sequence[str] = ()) -> bool:
    """Give the lease to `target` if the other site is fenced; otherwise wait and say why."""
    fence = leases.may_grant(target, d.state.lease, t.records, t.obs.instance, d.now, d.policy)
    if fence.fenced:
        d.go(to, [*why, fence.reason], lease_to=LeaseSite(target.value))
        return True
    d.reasons.extend(why)
    d.reasons.append(f"waiting before giving the lease to the {target}: {fence.reason}")
    return False


def _fail_over(d: _Draft, t: _Tick) -> None:
    """The emergency: the primary is down. Lease straight to the standby when the primary is
    fenced (the configuration guarantees it), through none otherwise."""
    why = [t.sig.probe_reason, t.sig.heartbeat_reason]
    fence = leases.may_grant(Site.STANDBY, d.state.lease, t.records, t.obs.instance, d.now, d.policy)
    if fence.fenced:
        d.go(Phase.FAILING_OVER, [*why, fence.reason], lease_to=LeaseSite.STANDBY, severity=Severity.CRITICAL)
    else:
        d.go(
            Phase.FAILING_OVER,
            [*why, f"the lease goes to none first: {fence.reason}"],
            lease_to=LeaseSite.NONE,
            severity=Severity.CRITICAL,
        )


def _standby_runs(d: _Draft, t: _Tick) -> tuple[bool, str]:
    lease = d.state.lease
    rec = t.obs.standby
    if rec is None:
        return False, f"waiting for the standby's first heartbeat (epoch {lease.epoch})"
    if rec.workload == "running" and rec.epoch_seen >= lease.epoch and rec.received_at >= lease.changed_at:
        return True, f"the standby runs the workload under epoch {lease.epoch}"
    return False, (
        f"waiting for the standby to run the workload under epoch {lease.epoch}"
        f" (last heard: workload {rec.workload}, epoch {rec.epoch_seen}, {secs(d.now - rec.received_at)} ago)"
    )


def _standby_ready(d: _Draft, t: _Tick) -> tuple[bool, str]:
    rec = t.obs.standby
    if t.obs.instance != InstanceState.RUNNING:
        return False, f"waiting for the standby instance to run (it is {t.obs.instance})"
    if rec is None:
        return False, "waiting for the standby's first heartbeat"
    age = d.now - rec.received_at
    if age >= d.policy.lease_ttl_s:
        return False, f"waiting for a fresh heartbeat from the standby (last one {secs(age)} ago)"
    if not rec.ready:
        return False, "waiting for the standby to report ready"
    return True, f"the standby reports ready ({secs(age)} ago)"


def _after_failover(d: _Draft, t: _Tick, may_recover: bool) -> None:
    """FAILING_OVER with the lease on the standby."""
    runs, why = _standby_runs(d, t)
    if runs:
        d.go(Phase.ON_STANDBY, [why])
    elif may_recover and t.sig.life:
        d.reasons.append(why)
        d.gated_go(Phase.RECOVERING, ["the primary shows life again", *t.sig.life_reasons])
    else:
        d.reasons.append(why)


# --------------------------------------------------------------------------- modes


def _auto(d: _Draft, t: _Tick) -> None:
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    if phase in (Phase.HEALTHY, Phase.SUSPECT):
        if sig.down:
            _fail_over(d, t)
        else:
            _follow_signals(d, sig)
    elif phase == Phase.FAILING_OVER:
        if site == LeaseSite.PRIMARY:
            if sig.down:
                _fail_over(d, t)
            else:
                d.go(_signal_phase(sig), ["auto mode and the primary is not down: the planned move is called off"])
        elif site == LeaseSite.NONE:
            if sig.down:
                _grant(d, t, Site.STANDBY, Phase.FAILING_OVER)
            else:
                d.go(Phase.HANDING_BACK, ["the primary is no longer down: the lease goes back to it"])
        else:
            _after_failover(d, t, may_recover=True)
    elif phase == Phase.ON_STANDBY:
        if sig.life:
            d.gated_go(Phase.RECOVERING, ["the primary shows life again", *sig.life_reasons])
        else:
            d.reasons.append("the primary is still down")
    elif phase == Phase.RECOVERING:
        if not sig.life:
            d.gated_go(Phase.ON_STANDBY, ["the primary shows no life again"])
            return
        met, why = recovery_check(d.state, t.obs.primary, d.now, d.policy)
        if met:
            d.gated_go(Phase.HANDING_BACK, ["recovery window met", *why], lease_to=LeaseSite.NONE)
        else:
            d.reasons.append("recovery window not met yet: " + "; ".join(why))
    elif sig.down:  # HANDING_BACK
        _grant(d, t, Site.STANDBY, Phase.ON_STANDBY, ["the primary went down during the handback"])
    else:
        _grant(d, t, Site.PRIMARY, _signal_phase(sig))


def _planned(d: _Draft, t: _Tick) -> None:
    """PIN_STANDBY and DRILL: a planned move to the standby, and no handback."""
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    label = "pinned to standby"
    if d.state.mode == Mode.DRILL and d.state.mode_until is not None:
        label = f"drill for {secs(d.state.mode_until - d.now)} more"
    if sig.down and site == LeaseSite.PRIMARY:
        _fail_over(d, t)
    elif phase in (Phase.HEALTHY, Phase.SUSPECT):
        d.go(
            Phase.FAILING_OVER,
            [f"{label}: starting the standby before moving the lease"],
            severity=Severity.WARNING,
        )
    elif phase == Phase.FAILING_OVER:
        if site == LeaseSite.PRIMARY:
            ready, why = _standby_ready(d, t)
            if ready:
                d.go(Phase.FAILING_OVER, [label, why], lease_to=LeaseSite.NONE, severity=Severity.WARNING)
            else:
                d.reasons.append(why)
        elif site == LeaseSite.NONE:
            _grant(d, t, Site.STANDBY, Phase.FAILING_OVER, [label])
        else:
            _after_failover(d, t, may_recover=False)
    elif phase == Phase.ON_STANDBY:
        d.reasons.append(f"{label}: staying on the standby")
    elif phase == Phase.RECOVERING:
        d.go(Phase.ON_STANDBY, [f"{label}: no handback"])
    else:  # HANDING_BACK
        _grant(d, t, Site.STANDBY, Phase.ON_STANDBY, [f"{label}: the lease returns to the standby"])


def _pinned_primary(d: _Draft, t: _Tick) -> None:
    if _repair(d):
        return
    phase, site, sig = d.state.phase, d.state.lease.site, t.sig
    home = "pinned to primary: handing back without waiting for the recovery window"
    if phase in (Phase.HEALTHY, Phase.SUSPECT):
        if sig.down:
            d.reasons.append("pinned to primary: no failover although the primary is down")
        _follow_signals(d, sig)
    elif phase == Phase.FAILING_OVER and site == LeaseSite.PRIMARY:
        d.go(_signal_phase(sig), ["pinned to primary: the move to the standby is called off"])
    elif phase == Phase.FAILING_OVER and site == LeaseSite.NONE:
        d.go(Phase.HANDING_BACK, [home])
    elif phase in (Phase.FAILING_OVER, Phase.ON_STANDBY, Phase.RECOVERING):
        d.go(Phase.HANDING_BACK, [home], lease_to=LeaseSite.NONE)
    else:  # HANDING_BACK
        _grant(d, t, Site.PRIMARY, _signal_phase(sig), ["pinned to primary"])


_RULES: Mapping[Mode, Callable[[_Draft, _Tick], None]] = {
    Mode.AUTO: _auto,
    Mode.PIN_PRIMARY: _pinned_primary,
    Mode.PIN_STANDBY: _planned,
    Mode.DRILL: _planned,
}


# --------------------------------------------------------------------------- EC2


def _cooldown_left(state: ControlState, now: float, policy: Policy) -> float:
    if state.last_start_at is None:
        return 0.0
    return max(0.0, state.last_start_at + policy.start_cooldown_s - now)


def _standby_instance(d: _Draft, t: _Tick) -> None:
    """The EC2 instance follows the phase: stopped while the primary holds the lease, running from
    the failover until the handback (left as it is during HANDING_BACK)."""
    phase, inst, st = d.state.phase, t.obs.instance, d.state
    if phase in _WANT_STOPPED:
        if st.start_failures:
            d.update(start_failures=0)
        if inst in _UP and st.lease.site == LeaseSite.PRIMARY:
            d.act(ActionKind.STOP_STANDBY, f"stop the standby: it is {inst} while the primary holds the lease")
        return
    if phase not in _WANT_RUNNING:
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
            d.act(ActionKind.START_STANDBY, f"start the standby ({phase})")
    elif inst == InstanceState.STOPPING:
        d.reasons.append("waiting for the standby instance to finish stopping before starting it")
    elif inst in _GONE:
        d.reasons.append(f"the standby instance is {inst}: it cannot be started")
    elif inst == InstanceState.UNKNOWN:
        d.reasons.append("the standby instance's state is unknown: no EC2 action this tick")


def _track_runtime(d: _Draft, instance: InstanceState) -> None:
    since = d.state.standby_running_since
    if instance in _UP and since is None:
        d.update(standby_running_since=d.now)
    elif instance in _NOT_RUNNING and since is not None:
        d.update(standby_running_since=None)


# --------------------------------------------------------------------------- anomalies


def _fresh_active(rec: SiteRecord | None, now: float, policy: Policy) -> bool:
    return rec is not None and now - rec.received_at < policy.lease_ttl_s and rec.workload in _ACTIVE_WORKLOAD


def _anomalies(d: _Draft, t: _Tick) -> None:
    st, sig, obs, policy = d.state, t.sig, t.obs, d.policy
    active: dict[str, str] = {}
    # "Heartbeats arrive" = the primary's agent still holds its lease (last one younger than the
    # TTL): a probe outage then is Funnel's, not the primary's. An older heartbeat is an outage
    # on its way to DOWN, not a degradation.
    if sig.probe == "down" and sig.heartbeat_age is not None and sig.heartbeat_age < policy.lease_ttl_s:
        active[alerts.DEGRADED_PROBE] = f"{sig.probe_reason}, but {sig.heartbeat_reason}: no failover"
    if sig.heartbeat == "down" and sig.probe == "alive":
        active[alerts.DEGRADED_HEARTBEAT] = f"{sig.heartbeat_reason}, but {sig.probe_reason}: no failover"
    if d.start_blocked is not None:
        active[alerts.START_BLOCKED] = d.start_blocked
    if st.start_failures > 0 and st.phase in _WANT_RUNNING and obs.instance not in _GONE:
        active[alerts.START_FAILED] = f"{st.start_failures} standby start attempts failed in a row"
    if st.start_failures >= policy.max_start_failures and st.phase in _WANT_RUNNING:
        active[alerts.START_GAVE_UP] = f"no more start attempts after {st.start_failures} failures"
    if alerts.STOP_FAILED in st.open_alerts and st.phase in _WANT_STOPPED and obs.instance in _UP:
        active[alerts.STOP_FAILED] = f"the standby is still {obs.instance}"
    if obs.instance in _GONE:
        active[alerts.INSTANCE_MISSING] = f"the standby instance is {obs.instance}: a failover cannot start it"
    since = st.standby_running_since
    if since is not None and d.now - since > policy.standby_max_runtime_s:
        active[alerts.STANDBY_OVERTIME] = (
            f"the standby has run for {secs(d.now - since)}, more than {secs(policy.standby_max_runtime_s)}"
        )
    if _fresh_active(obs.primary, d.now, policy) and _fresh_active(obs.standby, d.now, policy):
        active[alerts.BOTH_RUNNING] = (
            f"primary reports workload {obs.primary.workload if obs.primary else '?'} and standby reports"
            f" {obs.standby.workload if obs.standby else '?'} within the last {secs(policy.lease_ttl_s)}"
        )
    if sig.down and st.lease.site == LeaseSite.PRIMARY and st.mode in (Mode.PAUSED, Mode.PIN_PRIMARY):
        active[alerts.DOWN_NO_FAILOVER] = f"the primary is down and the mode is {st.mode}"
    opened, actions = alerts.reconcile(st.open_alerts, active, _LEVEL_ALERTS, _fields(st))
    d.update(open_alerts=opened)
    d.notify(actions)
    for key in sorted(set(active) - st.open_alerts):
        d.reasons.append(f"alert {key}: {active[key]}")


def _describe_shadow(d: _Draft, shadow: _Draft) -> None:
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


# --------------------------------------------------------------------------- public API


def decide(state: ControlState, obs: Observations, policy: Policy) -> Decision:
    """One tick: fold in the probe, read both signals, follow the mode's rules (at most one
    transition), drive EC2 toward the phase, raise or resolve anomalies."""
    d = _Draft(state, obs.now, policy)
    d.update(last_tick_at=obs.now)
    d.state = record_probe(d.state, obs.probe)
    sig = read_signals(d.state, obs.primary, obs.now, policy)
    t = _Tick(obs=obs, sig=sig)
    d.reasons.extend(sig.reasons)
    if d.state.mode == Mode.DRILL and (d.state.mode_until is None or obs.now >= d.state.mode_until):
        d.update(mode=Mode.AUTO, mode_until=None)
        d.reasons.append("drill ended: back to auto mode, which hands back through the normal recovery rules")
    if d.state.mode == Mode.PAUSED:
        shadow = _Draft(replace(d.state, mode=Mode.AUTO), obs.now, policy)
        _auto(shadow, t)
        _standby_instance(shadow, t)
        _describe_shadow(d, shadow)
    else:
        _RULES[d.state.mode](d, t)
        _standby_instance(d, t)
    _track_runtime(d, obs.instance)
    _anomalies(d, t)
    return d.finish(sig.probe, sig.heartbeat)


def _start_outcome(d: _Draft, outcome: Ec2Outcome) -> None:
    st, fields = d.state, _fields(d.state)
    if outcome.ok and outcome.action in _STARTED:
        how = f" as {outcome.instance_type}" if outcome.instance_type else ""
        d.reasons.append(f"standby start: {outcome.action}{how} (instance {outcome.state})")
        opened = st.open_alerts
        for key in (alerts.START_FAILED, alerts.START_GAVE_UP):
            opened, actions = alerts.resolve(opened, key, fields)
            d.notify(actions)
        d.update(start_failures=0, open_alerts=opened)
        if outcome.state in _UP and st.standby_running_since is None:
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
        opened, actions = alerts.raise_once(opened, alerts.INSTANCE_MISSING, body, fields)
    else:
        opened, actions = alerts.raise_once(opened, alerts.START_FAILED, body, fields)
    d.notify(actions)
    if failures >= d.policy.max_start_failures:
        opened, actions = alerts.raise_once(
            opened, alerts.START_GAVE_UP, f"{failures} start attempts failed in a row; no more retries", fields
        )
        d.notify(actions)
        d.reasons.append(f"{body}; giving up after {failures} attempts in a row")
    else:
        d.reasons.append(f"{body}; retrying next tick ({failures} of {d.policy.max_start_failures} attempts)")
    d.update(start_failures=failures, open_alerts=opened)


def _stop_outcome(d: _Draft, outcome: Ec2Outcome) -> None:
    fields = _fields(d.state)
    if outcome.ok:
        d.reasons.append(f"standby stop: {outcome.action} (instance {outcome.state})")
        opened, actions = alerts.resolve(d.state.open_alerts, alerts.STOP_FAILED, fields)
    else:
        detail = f" - {outcome.detail}" if outcome.detail else ""
        body = f"stop of the standby failed ({outcome.error}){detail}"
        d.reasons.append(f"{body}; retrying next tick")
        opened, actions = alerts.raise_once(d.state.open_alerts, alerts.STOP_FAILED, body, fields)
    d.update(open_alerts=opened)
    d.notify(actions)


def apply_outcomes(
    state: ControlState, outcomes: Sequence[tuple[Action, Ec2Outcome]], now: float, policy: Policy
) -> Decision:
    """Fold what the handler's EC2 actions did into the state (after it performed them)."""
    d = _Draft(state, now, policy)
    for action, outcome in outcomes:
        if action.kind == ActionKind.START_STANDBY:
            _start_outcome(d, outcome)
        elif action.kind == ActionKind.STOP_STANDBY:
            _stop_outcome(d, outcome)
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
        to = _signal_phase(sig)
    fence = leases.may_grant(target, state.lease, records, InstanceState.UNKNOWN, now, policy)
    if not fence.fenced:
        return None
    d = _Draft(state, now, policy)
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
        if not math.isfinite(until) or until <= now:
            raise ValueError(f"drill end time until={until!r} must be a finite time after now ({now!r})")
    elif until is not None:
        raise ValueError(f"until is only for drill mode; mode {mode.value} must not have one (got {until!r})")
    return replace(state, mode=mode, mode_until=until, start_failures=0, version=state.version + 1)
