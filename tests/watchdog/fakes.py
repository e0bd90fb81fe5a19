"""Faithful fakes of the watchdog's ports (hfo_watchdog.ports), for what cannot be scripted on the
real thing: a probe verdict on demand, EC2 without capacity, a notifier that breaks its contract.
The fakes follow the ports' contracts (the prober and EC2 never raise; EC2 calls are idempotent
and driven by the current state) so code that works with them works with the real adapters."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hfo_protocol.heartbeat import StateCredentials
from hfo_watchdog.core.model import (
    Ec2Outcome,
    InstanceState,
    Notification,
    ProbeFailure,
    ProbeResult,
    Renewal,
    RenewOutcome,
)
from hfo_watchdog.state_access import CredentialsUnavailable, session_policy


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def good_probe(at: float) -> ProbeResult:
    return ProbeResult(ok=True, at=at, http_status=200, latency_ms=12.0, detail="pass (workload)")


def failed_probe(at: float, failure: ProbeFailure = ProbeFailure.CONNECT_REFUSED) -> ProbeResult:
    return ProbeResult(ok=False, at=at, failure=failure, detail=f"{failure.value} (scripted)")


class FakeProber:
    """ports.Prober whose verdict is set by the test: `alive` True/False, or a failure class.
    Stamps each result with the clock, like the real prober stamps it with the time it probed."""

    def __init__(self, clock: Callable[[], float], alive: bool = True) -> None:
        self.clock = clock
        self.alive = alive
        self.failure = ProbeFailure.CONNECT_REFUSED
        self.calls = 0
        self.renewals: list[Renewal] = []
        self._lock = threading.Lock()

    def probe(self) -> ProbeResult:
        with self._lock:
            self.calls += 1
            now = self.clock()
            return good_probe(now) if self.alive else failed_probe(now, self.failure)

    def renew(self, renewal: Renewal) -> RenewOutcome:
        with self._lock:
            self.renewals.append(renewal)
            if self.alive:
                return RenewOutcome(ok=True, detail="renewal accepted")
            return RenewOutcome(ok=False, error="refused", detail="the primary did not answer")


_RUNNING_OR_STARTING = (InstanceState.PENDING, InstanceState.RUNNING)
_GONE = (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED)


@dataclass
class FakeStandby:
    """ports.StandbyInstance modelled on EC2 and on the real adapter's outcomes: start only from
    stopped, stop only from running (pending and stopping answer `waiting`); `settle()` finishes
    pending -> running and stopping -> stopped, as EC2 does after a while. Instance types without
    capacity fail with insufficient capacity, and the fake falls back through `fallback_types`
    like the real adapter (which changes the stopped instance's type)."""

    current: InstanceState = InstanceState.STOPPED
    instance_type: str = "t3.small"
    fallback_types: tuple[str, ...] = ()
    no_capacity: set[str] = field(default_factory=set)
    aws_error: bool = False  # every call fails as if AWS kept answering 5xx
    calls: list[str] = field(default_factory=list)

    def state(self) -> InstanceState:
        self.calls.append("state")
        return InstanceState.UNKNOWN if self.aws_error else self.current

    def settle(self) -> None:
        if self.current == InstanceState.PENDING:
            self.current = InstanceState.RUNNING
        elif self.current == InstanceState.STOPPING:
            self.current = InstanceState.STOPPED
        elif self.current == InstanceState.SHUTTING_DOWN:
            self.current = InstanceState.TERMINATED

    def ensure_running(self) -> Ec2Outcome:
        self.calls.append("ensure_running")
        if self.aws_error:
            return Ec2Outcome(False, "none", InstanceState.UNKNOWN, error="aws_error", detail="scripted 5xx")
        if self.current in _RUNNING_OR_STARTING:
            return Ec2Outcome(True, "already_running", self.current, self.instance_type)
        if self.current == InstanceState.STOPPING:
            return Ec2Outcome(True, "waiting", self.current, self.instance_type, detail="stopping; start next tick")
        if self.current == InstanceState.MISSING:
            return Ec2Outcome(False, "none", self.current, error="missing", detail="no such instance")
        if self.current in _GONE:
            return Ec2Outcome(False, "none", self.current, error="terminated", detail="instance terminated")
        tried: list[str] = []
        for candidate in (self.instance_type, *[t for t in self.fallback_types if t != self.instance_type]):
            tried.append(candidate)
            if candidate not in self.no_capacity:
                self.instance_type = candidate
                self.current = InstanceState.PENDING
                return Ec2Outcome(True, "start_requested", self.current, candidate)
        return Ec2Outcome(
            False,
            "none",
            self.current,
            self.instance_type,
            error="insufficient_capacity",
            detail=f"no capacity for {', '.join(tried)}",
        )

    def ensure_stopped(self) -> Ec2Outcome:
        self.calls.append("ensure_stopped")
        if self.aws_error:
            return Ec2Outcome(False, "none", InstanceState.UNKNOWN, error="aws_error", detail="scripted 5xx")
        if self.current == InstanceState.RUNNING:
            self.current = InstanceState.STOPPING
            return Ec2Outcome(True, "stop_requested", self.current, self.instance_type)
        if self.current == InstanceState.STOPPED:
            return Ec2Outcome(True, "already_stopped", self.current, self.instance_type)
        if self.current in (InstanceState.STOPPING, InstanceState.PENDING):
            # EC2 refuses to stop a pending instance; the next tick tries again once it runs.
            return Ec2Outcome(True, "waiting", self.current, self.instance_type)
        if self.current == InstanceState.MISSING:
            return Ec2Outcome(False, "none", self.current, error="missing", detail="no such instance")
        return Ec2Outcome(False, "none", self.current, error="terminated", detail="instance terminated")


class BrokenNotifier:
    """A notifier that breaks its contract by raising: the runtime must survive even that."""

    def __init__(self) -> None:
        self.attempts = 0

    def notify(self, notification: Notification) -> bool:
        self.attempts += 1
        raise ConnectionError("webhook exploded")


class FakeCredentialIssuer:
    """ports.CredentialIssuer without STS: credentials with random keys for (site, epoch), expiring
    `ttl_s` after the clock, each issue recorded with the session policy the real issuer would send.
    `fail_with` makes every issue raise CredentialsUnavailable with that code, as STS refusing
    (AccessDenied) or being unreachable would."""

    def __init__(self, clock: Callable[[], float], bucket: str = "hfo-state-test", ttl_s: int = 900) -> None:
        self.clock = clock
        self.bucket = bucket
        self.ttl_s = ttl_s
        self.fail_with: str | None = None
        self.issued: list[tuple[str, int, dict[str, object]]] = []

    def issue(self, site: str, epoch: int) -> StateCredentials:
        if self.fail_with is not None:
            raise CredentialsUnavailable(self.fail_with)
        self.issued.append((site, epoch, session_policy(self.bucket, epoch)))
        return StateCredentials(
            bucket=self.bucket,
            region="us-east-1",
            endpoint_url=None,
            epoch=epoch,
            site=site,
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret_access_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(300),
            expires_at=int(self.clock() + self.ttl_s),
        )
