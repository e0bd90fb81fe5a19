"""A decision being built: the evolving state, its reasons, its actions, its single transition.

Internal to the engine (engine.py, phases.py, ec2_plan.py, anomalies.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hfo_watchdog.core import lease as leases
from hfo_watchdog.core.model import (
    Action,
    ActionKind,
    ControlState,
    Decision,
    LeaseSite,
    Notification,
    Observations,
    Phase,
    Policy,
    Severity,
    Site,
    SiteRecord,
    StartPurpose,
    Transition,
)
from hfo_watchdog.core.signals import Signals, secs

TRANSITION_SEVERITY: Mapping[Phase, Severity] = {
    Phase.HEALTHY: Severity.INFO,
    Phase.SUSPECT: Severity.WARNING,
    Phase.FAILING_OVER: Severity.CRITICAL,
    Phase.ON_STANDBY: Severity.WARNING,
    Phase.RECOVERING: Severity.INFO,
    Phase.HANDING_BACK: Severity.INFO,
}


def fields(state: ControlState) -> dict[str, str]:
    """The context every notification carries."""
    return {
        "mode": state.mode.value,
        "phase": state.phase.value,
        "lease": state.lease.site.value,
        "epoch": str(state.lease.epoch),
    }


class Draft:
    """One decision being built. `go` makes its transition (at most one); `finish` seals it."""

    def __init__(self, state: ControlState, now: float, policy: Policy) -> None:
        self.before = state
        self.state = state
        self.now = now
        self.policy = policy
        self.reasons: list[str] = []
        self.actions: list[Action] = []
        self.transition: Transition | None = None
        self.start_blocked: str | None = None  # why a wanted EC2 start was held back

    def update(self, **changes: Any) -> None:
        """The state with `changes` (ControlState fields; dataclasses.replace refuses any other)."""
        self.state = replace(self.state, **changes)

    def act(self, kind: ActionKind, reason: str) -> None:
        self.actions.append(Action(kind=kind, reason=reason))
        self.reasons.append(reason)

    def act_start(self, purpose: StartPurpose, reason: str) -> None:
        self.actions.append(Action(kind=ActionKind.START_STANDBY, reason=reason, purpose=purpose))
        self.reasons.append(reason)

    def wants(self, kind: ActionKind) -> bool:
        return any(a.kind == kind for a in self.actions)

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
        """Make the transition of this decision: phase and/or lease, with one notification."""
        if self.transition is not None:
            raise AssertionError("one transition per decision")
        before = self.state
        why = [r for r in reasons if r]
        new_lease = before.lease
        if lease_to is not None and lease_to != before.lease.site:
            new_lease = leases.moved(before.lease, lease_to, self.now)
            why.append(f"lease {before.lease.site} -> {lease_to} (epoch {new_lease.epoch})")
        changes: dict[str, object] = {"lease": new_lease}
        if new_lease != before.lease:
            changes["warm_until"] = None  # a pre-warm hold ends when the lease moves
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
            severity=severity or TRANSITION_SEVERITY[to],
            title=title,
            body="; ".join(why),
            fields=fields(self.state),
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
        """The Decision: version + 1, EC2 actions before notifications, each reason once."""
        state = replace(self.state, version=self.before.version + 1)
        ec2 = tuple(a for a in self.actions if a.kind != ActionKind.NOTIFY)
        notes = tuple(a for a in self.actions if a.kind == ActionKind.NOTIFY)
        return Decision(
            state=state,
            actions=ec2 + notes,
            reasons=tuple(dict.fromkeys(self.reasons)),
            transition=self.transition,
            probe_signal=probe_signal,
            heartbeat_signal=heartbeat_signal,
        )


@dataclass(frozen=True)
class Tick:
    """What one tick knows besides the state."""

    obs: Observations
    sig: Signals

    @property
    def records(self) -> dict[Site, SiteRecord | None]:
        return {Site.PRIMARY: self.obs.primary, Site.STANDBY: self.obs.standby}
