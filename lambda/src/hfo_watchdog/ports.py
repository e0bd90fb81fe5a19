"""Interfaces between the handlers and the outside world. Each has one real implementation
(probe.py, ec2.py, notify.py, store.py, state_access.py) and one faithful fake in
tests/watchdog/fakes.py."""

from __future__ import annotations

from typing import Protocol

from hfo_protocol.heartbeat import StateCredentials

from hfo_watchdog.core.model import (
    ControlState,
    Ec2Outcome,
    InstanceState,
    Notification,
    ProbeResult,
    Renewal,
    RenewOutcome,
    SiteRecord,
    Transition,
)


class Prober(Protocol):
    def probe(self) -> ProbeResult:
        """One probe of the primary with a fresh nonce. Never raises: failures are classified."""
        ...

    def renew(self, renewal: Renewal) -> RenewOutcome:
        """Send the primary's health service a signed lease renewal for the probe that carried
        `renewal.nonce` (docs/protocol.md#renewal). Never raises."""
        ...


class StandbyInstance(Protocol):
    def state(self) -> InstanceState:
        """Current EC2 state; MISSING when the instance does not exist. Never raises."""
        ...

    def ensure_running(self) -> Ec2Outcome:
        """Idempotent start, driven by the current state (falls back through instance types on
        insufficient capacity). Never raises."""
        ...

    def ensure_stopped(self) -> Ec2Outcome:
        """Idempotent stop, driven by the current state. Never raises."""
        ...


class Notifier(Protocol):
    def notify(self, notification: Notification) -> bool:
        """Deliver one notification; True when delivered. Never raises, never blocks long."""
        ...


class StateStore(Protocol):
    def load(self) -> tuple[ControlState, SiteRecord | None, SiteRecord | None]:
        """The control state (a fresh default when none is stored) and both sites' records."""
        ...

    def save(self, expected_version: int, state: ControlState, transition: Transition | None) -> bool:
        """Write `state` (its version must be expected_version + 1) only if the stored version is
        still `expected_version`, together with the transition's history item. False when
        another writer won the race; nothing is written then."""
        ...


class CredentialIssuer(Protocol):
    def issue(self, site: str, epoch: int) -> StateCredentials:
        """Short-lived credentials for the state bucket, scoped to lease epoch `epoch` of `site`
        (docs/state-handoff.md#credentials). Raises state_access.CredentialsUnavailable when STS
        refuses or cannot be reached; never logs, and never puts a credential in an exception."""
        ...
