"""What the health service answers: a pure function of the cached checks, the agent's last
report and the time. No I/O here, so every request can afford it.

| lease held here | heartbeats working | workload | answer |
|---|---|---|---|
| yes | yes | running and every workload check passes | pass, basis `workload` |
| yes | yes | anything else | warn, basis `none` |
| no | yes | stopped, agent ready, workload not answering | pass, basis `ready` |
| no | yes | anything else (not ready, or still running) | warn, basis `none` |
| any | no (or no report, or checks cold) | any | fail, basis `none` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfo_protocol.timefmt import format_ts

from hfo_site.agent_status import AgentStatus

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class CheckResult:
    """One background check's last outcome (IETF ``checks`` entry)."""

    status: str  # pass | warn | fail
    time: float  # wall clock when it ran
    observed_value: Any = None
    output: str = ""  # why, for a human; never a secret
    component_type: str = "component"


@dataclass(frozen=True)
class Verdict:
    status: str
    basis: str
    lease_epoch: int | None
    checks: Mapping[str, list[dict[str, Any]]]  # IETF checks object, for the token-gated answer


def _entry(result: CheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": result.status,
        "time": format_ts(result.time),
        "componentType": result.component_type,
        "observedValue": result.observed_value,
    }
    if result.output:
        entry["output"] = result.output
    return entry


def decide(
    site: str,
    now: float,
    agent: AgentStatus | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
    details: bool = True,
) -> Verdict:
    """``workload_checks`` is None until the first round of background checks has finished.
    ``details=False`` skips building the IETF checks object (the public answer never shows it)."""
    status, basis = _verdict(site, now, agent, workload_checks, heartbeat_stale_s)
    checks = _checks(site, now, agent, workload_checks, heartbeat_stale_s) if details else {}
    return Verdict(status, basis, None if agent is None else agent.lease_epoch, checks)


def _heartbeat_age(now: float, agent: AgentStatus) -> float | None:
    return None if agent.last_heartbeat_ok is None else max(0.0, now - agent.last_heartbeat_ok)


def _held(site: str, now: float, agent: AgentStatus) -> bool:
    return (
        agent.lease_held
        and agent.lease_site == site
        and agent.lease_expires_at is not None
        and now < agent.lease_expires_at
    )


def _verdict(
    site: str,
    now: float,
    agent: AgentStatus | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
) -> tuple[str, str]:
    if agent is None or workload_checks is None:
        return FAIL, "none"
    age = _heartbeat_age(now, agent)
    if age is None or age > heartbeat_stale_s:
        return FAIL, "none"
    results = workload_checks.values()
    if _held(site, now, agent):
        if agent.workload == "running" and all(r.status == PASS for r in results):
            return PASS, "workload"
        return WARN, "none"
    # Not holding the lease: ready to take it, and nothing of the workload may still answer here.
    if agent.ready and agent.workload == "stopped" and not any(r.status == PASS for r in results):
        return PASS, "ready"
    return WARN, "none"


def _checks(
    site: str,
    now: float,
    agent: AgentStatus | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
) -> dict[str, list[dict[str, Any]]]:
    checks = {name: [_entry(result)] for name, result in (workload_checks or {}).items()}
    if agent is None:
        checks["agent:heartbeat"] = [_entry(CheckResult(FAIL, now, None, "no report from the agent yet", "system"))]
        return checks
    age = _heartbeat_age(now, agent)
    ok = age is not None and age <= heartbeat_stale_s
    checks["agent:heartbeat"] = [
        _entry(
            CheckResult(
                PASS if ok else FAIL,
                now,
                None if age is None else round(age, 3),
                "" if ok else f"no accepted heartbeat within {heartbeat_stale_s:g}s",
                "system",
            )
        )
    ]
    lease = {"site": agent.lease_site, "epoch": agent.lease_epoch, "heldHere": _held(site, now, agent)}
    checks["agent:lease"] = [_entry(CheckResult(PASS, now, lease, "", "system"))]
    workload = {"state": agent.workload, "ready": agent.ready}
    checks["agent:workload"] = [_entry(CheckResult(PASS, now, workload, agent.detail, "system"))]
    return checks
