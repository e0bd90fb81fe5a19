"""The two independent signals about the primary (docs/state-machine.md#signals).

Probe (pull, through Funnel) and heartbeat (push, from the primary's agent). Pure functions:
the caller passes the clock in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hfo_watchdog.core.model import ControlState, Policy, ProbeResult, SiteRecord

ALIVE = "alive"
FAILING = "failing"
DOWN = "down"
UNKNOWN = "unknown"


def secs(value: float) -> str:
    """A duration as a user reads it in a reason: whole seconds. A record stamped a moment after
    the clock was read (the heartbeat handler's own) is 0 s old, not -0 s."""
    return f"{max(0.0, value):.0f} s"


@dataclass(frozen=True)
class Signals:
    """What the two signals say about the primary at one instant, with a sentence for each."""

    probe: str  # alive | failing | down | unknown
    heartbeat: str  # alive | down
    probe_reason: str
    heartbeat_reason: str
    heartbeat_age: float | None = None  # seconds since the primary's last accepted heartbeat

    @property
    def down(self) -> bool:
        """The primary is down only when both signals say so."""
        return self.probe == DOWN and self.heartbeat == DOWN

    @property
    def healthy(self) -> bool:
        return self.probe == ALIVE and self.heartbeat == ALIVE

    @property
    def troubled(self) -> bool:
        return self.probe in (FAILING, DOWN) or self.heartbeat == DOWN

    @property
    def life(self) -> bool:
        """The primary shows life: at least one signal says alive."""
        return self.probe == ALIVE or self.heartbeat == ALIVE

    @property
    def reasons(self) -> tuple[str, str]:
        return (self.probe_reason, self.heartbeat_reason)

    @property
    def bad_reasons(self) -> tuple[str, ...]:
        """The sentences of the signals that do not say alive."""
        out = []
        if self.probe != ALIVE:
            out.append(self.probe_reason)
        if self.heartbeat != ALIVE:
            out.append(self.heartbeat_reason)
        return tuple(out)

    @property
    def life_reasons(self) -> tuple[str, ...]:
        """The sentences of the signals that say alive."""
        out = []
        if self.probe == ALIVE:
            out.append(self.probe_reason)
        if self.heartbeat == ALIVE:
            out.append(self.heartbeat_reason)
        return tuple(out)


def record_probe(state: ControlState, probe: ProbeResult | None) -> ControlState:
    """Fold this tick's probe into the streaks. No probe this tick leaves them as they are."""
    if probe is None:
        return state
    if probe.ok:
        return replace(
            state,
            probe_ok_streak=state.probe_ok_streak + 1,
            probe_fail_streak=0,
            last_probe=probe,
            probe_failing_since=None,
        )
    since = state.probe_failing_since if state.probe_fail_streak > 0 else None
    return replace(
        state,
        probe_fail_streak=state.probe_fail_streak + 1,
        probe_ok_streak=0,
        last_probe=probe,
        probe_failing_since=probe.at if since is None else since,
    )


def probe_signal(state: ControlState, policy: Policy) -> tuple[str, str]:
    """alive iff the last probe was good; down iff `down_probes` failed in a row; else failing."""
    last = state.last_probe
    if last is None:
        return UNKNOWN, "no probe result yet"
    if last.ok:
        n = state.probe_ok_streak
        return ALIVE, f"probe ok ({n} in a row)"
    n = state.probe_fail_streak
    why = last.failure.value if last.failure is not None else "error"
    status = DOWN if n >= policy.down_probes else FAILING
    return status, f"probe failed {n} {'time' if n == 1 else 'times'} in a row ({why})"


def heartbeat_signal(primary: SiteRecord | None, now: float, policy: Policy) -> tuple[str, str]:
    """alive iff the primary's last accepted heartbeat is younger than `down_heartbeat_s`."""
    if primary is None:
        return DOWN, "no heartbeat from primary ever received"
    age = now - primary.received_at
    if age < policy.down_heartbeat_s:
        return ALIVE, f"last heartbeat from primary {secs(age)} ago"
    return DOWN, f"no heartbeat from primary for {secs(age)}"


def read_signals(state: ControlState, primary: SiteRecord | None, now: float, policy: Policy) -> Signals:
    probe, probe_reason = probe_signal(state, policy)
    heartbeat, heartbeat_reason = heartbeat_signal(primary, now, policy)
    age = None if primary is None else now - primary.received_at
    return Signals(probe, heartbeat, probe_reason, heartbeat_reason, age)


def recovery_check(
    state: ControlState, primary: SiteRecord | None, now: float, policy: Policy
) -> tuple[bool, tuple[str, ...]]:
    """The stricter recovery window: `recovery_probes` good probes in a row AND heartbeats steady
    for `recovery_steady_s` AND the primary reports ready. Returns (met, reasons): the reasons say
    what was met, or what is still missing."""
    missing: list[str] = []
    met: list[str] = []
    ok = state.probe_ok_streak
    if ok >= policy.recovery_probes:
        met.append(f"{ok} good probes in a row")
    else:
        missing.append(f"{ok} of {policy.recovery_probes} good probes in a row")
    heartbeat, heartbeat_reason = heartbeat_signal(primary, now, policy)
    if primary is None or heartbeat != ALIVE:
        missing.append(heartbeat_reason)
    else:
        steady = now - primary.steady_since
        if steady >= policy.recovery_steady_s:
            met.append(f"heartbeats steady for {secs(steady)}")
        else:
            missing.append(f"heartbeats steady for {secs(steady)} of {secs(policy.recovery_steady_s)}")
        if primary.ready:
            met.append("primary reports ready")
        else:
            missing.append("primary does not report ready")
    if missing:
        return False, tuple(missing)
    return True, tuple(met)
