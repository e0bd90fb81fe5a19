"""One tick of the watchdog: observe, decide, then commit and act (hfo_watchdog.commit).

    probe -> load state -> describe the standby -> engine.decide -> save (conditional)
      -> perform actions -> engine.apply_outcomes -> save (conditional) -> perform its alerts

A failing probe, EC2 read or notifier never blocks the tick: each becomes an observation or an
outcome. The report says what the tick saw, decided and did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hfo_watchdog.commit import Effects, Log, TickStore, commit_and_act, lease_guard, transition_text
from hfo_watchdog.core import engine
from hfo_watchdog.core.model import (
    ControlState,
    Decision,
    InstanceState,
    Observations,
    Policy,
    ProbeFailure,
    ProbeResult,
    SiteRecord,
)
from hfo_watchdog.ports import Notifier, Prober, StandbyInstance

MetricSink = Callable[[str, float], None]


def _no_metric(name: str, value: float) -> None:
    return None


@dataclass(frozen=True)
class TickDeps:
    store: TickStore
    prober: Prober
    standby: StandbyInstance
    notifier: Notifier
    policy: Policy
    log: Log
    metric: MetricSink = _no_metric
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class TickReport:
    """What one tick saw, decided and did; returned by the handler and printed by the demo."""

    outcome: str  # saved | lost_race
    at: float
    version: int
    mode: str
    phase: str
    lease_site: str
    lease_epoch: int
    probe_ok: bool | None
    probe_failure: str | None
    instance: str
    primary_age_s: float | None
    standby_age_s: float | None
    probe_signal: str
    heartbeat_signal: str
    reasons: tuple[str, ...]
    transition: str | None
    actions: tuple[str, ...]
    action_failures: int
    aws_calls: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _safe_probe(prober: Prober, now: Callable[[], float]) -> ProbeResult:
    try:
        return prober.probe()
    except Exception as exc:  # the port promises not to raise; never count a crash as healthy
        return ProbeResult(ok=False, at=now(), failure=ProbeFailure.ERROR, detail=type(exc).__name__)


def _safe_state(standby: StandbyInstance) -> InstanceState:
    try:
        return standby.state()
    except Exception:
        return InstanceState.UNKNOWN


def _age(record: SiteRecord | None, now: float) -> float | None:
    return None if record is None else round(now - record.received_at, 3)


def run_tick(deps: TickDeps) -> TickReport:
    # The probe comes first: it may take seconds, and the window between reading the state and
    # writing the decision must stay short (a heartbeat landing in it cancels a lease move).
    probe = _safe_probe(deps.prober, deps.clock)
    state, primary, standby = deps.store.load()
    instance = _safe_state(deps.standby)
    now = deps.clock()
    obs = Observations(now=now, probe=probe, primary=primary, standby=standby, instance=instance)
    decision = engine.decide(state, obs, deps.policy)
    signals = {
        "probe_ok": probe.ok,
        "probe_failure": None if probe.failure is None else probe.failure.value,
        "probe_detail": probe.detail,
        "probe_latency_ms": probe.latency_ms,
        "primary_heartbeat_age_s": _age(primary, now),
        "standby_heartbeat_age_s": _age(standby, now),
        "instance": instance.value,
        "probe_signal": decision.probe_signal,
        "heartbeat_signal": decision.heartbeat_signal,
    }
    deps.metric("ProbeFailed", 0.0 if probe.ok else 1.0)
    deps.metric("StandbyRunning", 1.0 if instance in (InstanceState.PENDING, InstanceState.RUNNING) else 0.0)
    performer = Effects(deps.standby, deps.notifier, deps.log, renewer=deps.prober)
    committed = commit_and_act(
        deps.store,
        lambda: performer,
        decision,
        state.version,
        deps.policy,
        deps.clock,
        deps.log,
        instance=instance,
        guard=lease_guard(decision, primary, standby),
        context={"trigger": "tick", **signals},
    )
    deps.metric("ActionFailed", float(performer.failures))
    if committed is None:
        return _report("lost_race", now, state, signals, decision, (), 0)
    report_decision = replace(decision, reasons=committed.reasons)
    return _report(
        "saved", now, committed.state, signals, report_decision, tuple(performer.performed), performer.failures
    )


def _report(
    outcome: str,
    now: float,
    state: ControlState,
    signals: dict[str, Any],
    decision: Decision,
    actions: tuple[str, ...],
    failures: int,
) -> TickReport:
    return TickReport(
        outcome=outcome,
        at=now,
        version=state.version,
        mode=state.mode.value,
        phase=state.phase.value,
        lease_site=state.lease.site.value,
        lease_epoch=state.lease.epoch,
        probe_ok=signals["probe_ok"],
        probe_failure=signals["probe_failure"],
        instance=signals["instance"],
        primary_age_s=signals["primary_heartbeat_age_s"],
        standby_age_s=signals["standby_heartbeat_age_s"],
        probe_signal=decision.probe_signal,
        heartbeat_signal=decision.heartbeat_signal,
        reasons=decision.reasons,
        transition=transition_text(decision.transition),
        actions=actions,
        action_failures=failures,
    )
