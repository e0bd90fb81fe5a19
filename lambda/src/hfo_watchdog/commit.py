"""Committing a decision, shared by the tick and the heartbeat handler: write it (conditional on
the control item's version, and on a site's record when the lease leaves that site), then perform
its actions, then let the engine record what they did and write that too.

Write-ahead: actions happen only after the write recording the decision has succeeded, so an
invocation that loses the race (another tick, or a heartbeat completing a handover, wrote first)
does nothing at all and logs `lost_race`. A failing notifier or EC2 call never blocks anything:
`Effects` logs, counts and reports each failure as an outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from hfo_watchdog.core import engine
from hfo_watchdog.core.model import (
    Action,
    ActionKind,
    ControlState,
    Decision,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Policy,
    RenewOutcome,
    Site,
    SiteRecord,
    Transition,
)
from hfo_watchdog.ports import Notifier, Prober, StandbyInstance
from hfo_watchdog.store import SiteUnchanged


class TickStore(Protocol):
    def load(self) -> tuple[ControlState, SiteRecord | None, SiteRecord | None]: ...

    def save(
        self,
        expected_version: int,
        state: ControlState,
        transition: Transition | None,
        *,
        instance: InstanceState | None = None,
        unchanged: SiteUnchanged | None = None,
    ) -> bool: ...

    @property
    def last_conflict(self) -> str | None: ...


def lease_guard(decision: Decision, primary: SiteRecord | None, standby: SiteRecord | None) -> SiteUnchanged | None:
    """When a decision takes the lease away from a site, its write must also find that site's
    record as it was read: a heartbeat of that site in between was answered with the old lease."""
    t = decision.transition
    if t is None or t.to_lease.site == t.from_lease.site or t.from_lease.site == LeaseSite.NONE:
        return None
    site = Site(t.from_lease.site.value)
    record = primary if site == Site.PRIMARY else standby
    return SiteUnchanged(site, None if record is None else record.received_at)


class Log(Protocol):
    """The slice of a logger the runtime uses (Powertools Logger or logging.Logger)."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


@dataclass
class Effects:
    """Performs a saved decision's actions: EC2 through the standby port, alerts through the
    notifier. Never raises: each failure is logged, counted and reported as an outcome."""

    standby: StandbyInstance
    notifier: Notifier
    log: Log
    renewer: Prober | None = None  # sends renewals over the probe path (the tick's prober)
    failures: int = 0
    notified: int = 0
    performed: list[str] = field(default_factory=list)

    def perform(self, actions: Sequence[Action], *, ec2: bool = True) -> list[tuple[Action, Ec2Outcome]]:
        outcomes: list[tuple[Action, Ec2Outcome]] = []
        for action in actions:
            if action.kind == ActionKind.NOTIFY:
                self._notify(action)
            elif action.kind == ActionKind.RENEW_PRIMARY:
                self._renew(action)
            elif not ec2:
                self.log.warning(
                    "ec2_action_deferred",
                    extra={"action": action.kind.value, "reason": action.reason, "why": "left to the next tick"},
                )
            else:
                outcome = self._ec2(action)
                outcomes.append((action, outcome))
        return outcomes

    def _ec2(self, action: Action) -> Ec2Outcome:
        try:
            if action.kind == ActionKind.START_STANDBY:
                outcome = self.standby.ensure_running()
            else:
                outcome = self.standby.ensure_stopped()
        except Exception as exc:  # the port promises not to raise; a bug there must not kill the tick
            outcome = Ec2Outcome(False, "none", InstanceState.UNKNOWN, error="aws_error", detail=type(exc).__name__)
        self.performed.append(f"{action.kind.value}:{outcome.action}")
        fields = {
            "action": action.kind.value,
            "purpose": None if action.purpose is None else action.purpose.value,
            "reason": action.reason,
            "ok": outcome.ok,
            "result": outcome.action,
            "instance": outcome.state.value,
            "instance_type": outcome.instance_type,
            "error": outcome.error,
            "detail": outcome.detail,
        }
        if outcome.ok:
            self.log.info("ec2_action", extra=fields)
        else:
            self.failures += 1
            self.log.error("ec2_action_failed", extra=fields)
        return outcome

    def _renew(self, action: Action) -> None:
        """Send a renewal whose `renewed_until` is already written. Its failure changes nothing:
        the fencing rule counts the renewal whether or not it arrived."""
        renewal = action.renewal
        if renewal is None or self.renewer is None:
            self.log.warning("renewal_not_sent", extra={"why": "no renewal or no prober to send it"})
            return
        try:
            outcome = self.renewer.renew(renewal)
        except Exception as exc:  # the port promises not to raise
            outcome = RenewOutcome(ok=False, error="error", detail=type(exc).__name__)
        self.performed.append(f"{action.kind.value}:{'sent' if outcome.ok else outcome.error}")
        fields = {"epoch": renewal.epoch, "ttl_s": renewal.ttl_s, "ok": outcome.ok, "error": outcome.error}
        if outcome.ok:
            self.log.info("renewal_sent", extra=fields)
        else:
            self.failures += 1
            self.log.warning("renewal_failed", extra={**fields, "detail": outcome.detail})

    def _notify(self, action: Action) -> None:
        n = action.notification
        if n is None:
            return
        try:
            delivered = bool(self.notifier.notify(n))
        except Exception as exc:  # never let an alert path block a decision
            delivered = False
            self.log.error("notify_raised", extra={"key": n.key, "error": type(exc).__name__})
        self.performed.append(f"notify:{n.key}")
        if delivered:
            self.notified += 1
            self.log.info("notified", extra={"key": n.key, "severity": n.severity.value, "title": n.title})
        else:
            self.failures += 1
            self.log.error("notify_failed", extra={"key": n.key, "severity": n.severity.value, "title": n.title})


def transition_text(t: Transition | None) -> str | None:
    if t is None:
        return None
    return (
        f"{t.from_phase.value}->{t.to_phase.value} "
        f"lease {t.from_lease.site.value}#{t.from_lease.epoch}->{t.to_lease.site.value}#{t.to_lease.epoch}"
    )


def _next(decision: Decision, expected_version: int) -> ControlState:
    """The state to write: the engine's, with the version that the conditional write expects."""
    return replace(decision.state, version=expected_version + 1)


@dataclass
class Committed:
    """A decision that was written; `state` is the last state written, `reasons` all reasons."""

    state: ControlState
    reasons: tuple[str, ...]


def commit_and_act(
    store: TickStore,
    effects: Callable[[], Effects],
    decision: Decision,
    expected_version: int,
    policy: Policy,
    clock: Callable[[], float],
    log: Log,
    *,
    instance: InstanceState | None = None,
    guard: SiteUnchanged | None = None,
    context: Mapping[str, Any] | None = None,
) -> Committed | None:
    """Write the decision (conditional on `expected_version`, and on `guard`), then perform its
    actions, then let the engine record what they did. None when the first write lost its race:
    then nothing was done."""
    new_state = _next(decision, expected_version)
    if not store.save(expected_version, new_state, decision.transition, instance=instance, unchanged=guard):
        log.warning(
            "lost_race",
            extra={
                "expected_version": expected_version,
                "conflict": store.last_conflict,
                "reasons": list(decision.reasons),
                "would_transition": transition_text(decision.transition),
                "would_act": [a.kind.value for a in decision.actions],
                **(context or {}),
            },
        )
        return None
    log.info(
        "decision",
        extra={
            "version": new_state.version,
            "mode": new_state.mode.value,
            "phase": new_state.phase.value,
            "lease": f"{new_state.lease.site.value}#{new_state.lease.epoch}",
            "reasons": list(decision.reasons),
            "transition": transition_text(decision.transition),
            "actions": [a.kind.value for a in decision.actions],
            **(context or {}),
        },
    )
    if not decision.actions:
        return Committed(new_state, decision.reasons)
    performer = effects()
    outcomes = performer.perform(decision.actions)
    if not outcomes:
        return Committed(new_state, decision.reasons)
    followup = engine.apply_outcomes(new_state, outcomes, clock(), policy)
    followup_state = _next(followup, new_state.version)
    unchanged = replace(followup_state, version=new_state.version) == new_state
    if followup.transition is None and unchanged and not followup.actions:
        return Committed(new_state, decision.reasons)
    reasons = decision.reasons + tuple(r for r in followup.reasons if r not in decision.reasons)
    if not store.save(new_state.version, followup_state, followup.transition, instance=outcomes[-1][1].state):
        log.warning(
            "lost_race",
            extra={
                "expected_version": new_state.version,
                "stage": "recording action outcomes",
                "reasons": list(followup.reasons),
            },
        )
        return Committed(new_state, reasons)
    log.info(
        "outcomes_recorded",
        extra={
            "version": followup_state.version,
            "phase": followup_state.phase.value,
            "lease": f"{followup_state.lease.site.value}#{followup_state.lease.epoch}",
            "reasons": list(followup.reasons),
            "transition": transition_text(followup.transition),
        },
    )
    # Alerts about what the actions did go out now; any EC2 action waits for the next tick, which
    # decides it from fresh observations (no start/stop loop inside one invocation).
    performer.perform(followup.actions, ec2=False)
    return Committed(followup_state, reasons)
