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
) -> Verdict:
    """``workload_checks`` is None until the first round of background checks has finished."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for name, result in (workload_checks or {}).items():
        checks[name] = [_entry(result)]

    if agent is None:
        checks["agent:heartbeat"] = [_entry(CheckResult(FAIL, now, None, "no report from the agent yet", "system"))]
        return Verdict(FAIL, "none", None, checks)

    hb_age = None if agent.last_heartbeat_ok is None else max(0.0, now - agent.last_heartbeat_ok)
    heartbeat_ok = hb_age is not None and hb_age <= heartbeat_stale_s
    checks["agent:heartbeat"] = [
        _entry(
            CheckResult(
                PASS if heartbeat_ok else FAIL,
                now,
                None if hb_age is None else round(hb_age, 3),
                "" if heartbeat_ok else f"no accepted heartbeat within {heartbeat_stale_s:g}s",
                "system",
            )
        )
    ]
    held = (
        agent.lease_held
        and agent.lease_site == site
        and agent.lease_expires_at is not None
        and now < agent.lease_expires_at
    )
    checks["agent:lease"] = [
        _entry(
            CheckResult(
                PASS,
                now,
                {"site": agent.lease_site, "epoch": agent.lease_epoch, "heldHere": held},
                "",
                "system",
            )
        )
    ]
    checks["agent:workload"] = [
        _entry(CheckResult(PASS, now, {"state": agent.workload, "ready": agent.ready}, agent.detail, "system"))
    ]

    if workload_checks is None:
        return Verdict(FAIL, "none", agent.lease_epoch, checks)
    if not heartbeat_ok:
        return Verdict(FAIL, "none", agent.lease_epoch, checks)

    all_pass = all(r.status == PASS for r in workload_checks.values())
    any_pass = any(r.status == PASS for r in workload_checks.values())
    if held:
        if agent.workload == "running" and all_pass:
            return Verdict(PASS, "workload", agent.lease_epoch, checks)
        return Verdict(WARN, "none", agent.lease_epoch, checks)
    # Not holding the lease: ready to take it, and nothing of the workload may still answer here.
    if agent.ready and agent.workload == "stopped" and not any_pass:
        return Verdict(PASS, "ready", agent.lease_epoch, checks)
    return Verdict(WARN, "none", agent.lease_epoch, checks)
