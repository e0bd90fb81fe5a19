"""What the health service answers: a pure function of the cached checks, the agent's last report
and the time. No I/O here, so every request can afford it.

| lease held here | heartbeats working | workload | answer |
|---|---|---|---|
| yes | yes | running and every workload check passes | pass, basis `workload` |
| yes | yes | anything else | warn, basis `none` |
| no | yes | stopped, agent ready, workload not answering | pass, basis `ready` |
| no | yes | anything else (not ready, or still running) | warn, basis `none` |
| yes (renewed) | no, but the agent's reports keep coming | running, every check passes | pass, `workload` |
| lapsed, last seen here | no, but the agent reports | stopped, agent ready, workload down | pass, `ready` |
| any | no (or no report, or checks cold) | any | fail, basis `none` |

A lease renewed over the probe path (docs/protocol.md#renewal) keeps the answer as it was while
heartbeats cannot reach AWS: otherwise the probe that carries the renewals would fail and the
renewals would stop. The same holds after the lease lapsed for want of heartbeats (a heartbeat
path down for longer than the lease TTL, before the first renewal): a ready agent whose last lease
named this site answers ``pass``/``ready``, the watchdog sees the laptop alive, does not fail over,
and its renewal starts the bot again. A lease last seen naming the other site keeps ``fail``:
after a failover, only heartbeats bring the laptop back. Both need a report that arrived within
``heartbeat_stale_s`` (the agent reports every second), so a dead agent still turns the answer to
``fail``.

Freshness is judged on the health service's own clock (``hfo_site.lease.lease_clock``: monotonic,
counting through a suspend) from the moment a report *arrived* (``receive``): the ages a report
carries only grow from there, so a report that stops coming turns the answer to ``fail`` within
``heartbeat_stale_s`` of its arrival, whatever any clock said when it was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.timefmt import format_ts

from hfo_site.agent_status import AgentStatus

PASS, WARN, FAIL = "pass", "warn", "fail"
# How far ahead of the health service's wall clock a report's `reported_at` may be. The two
# containers share one clock, so a report is never ahead of it except by a backward step of that
# clock between the agent's write and the service's read, or a report that is not the agent's.
FUTURE_ALLOWANCE_S = 2.0


@dataclass(frozen=True)
class CheckResult:
    """One background check's last outcome (IETF ``checks`` entry)."""

    status: str  # pass | warn | fail
    time: float  # wall clock when it ran
    observed_value: Any = None
    output: str = ""  # why, for a human; never a secret
    component_type: str = "component"


@dataclass(frozen=True)
class Report:
    """An accepted agent report, as the health service holds it."""

    status: AgentStatus
    received_at: float  # the health service's lease clock when the report arrived
    heartbeat_age_s: float | None  # the heartbeat's age at arrival (in transit included)
    lease_remaining_s: float | None  # the lease's time left at arrival (in transit deducted)

    def age(self, now: float) -> float:
        """Time since this report arrived."""
        return max(0.0, now - self.received_at)

    def heartbeat_age(self, now: float) -> float | None:
        if self.heartbeat_age_s is None:
            return None
        return self.heartbeat_age_s + max(0.0, now - self.received_at)

    def lease_held(self, site: str, now: float) -> bool:
        s = self.status
        return (
            s.lease_held
            and s.lease_site == site
            and self.lease_remaining_s is not None
            and now < self.received_at + self.lease_remaining_s
        )


def receive(status: AgentStatus, now_wall: float, now: float) -> Report:
    """Accept a parsed report at (wall clock, lease clock). Raises ProtocolError('future') for a
    report made ahead of this clock by more than FUTURE_ALLOWANCE_S."""
    ahead = status.reported_at - now_wall
    if ahead > FUTURE_ALLOWANCE_S:
        raise ProtocolError(
            "future",
            f"reported_at is {ahead:.1f}s ahead of this service's clock (at most {FUTURE_ALLOWANCE_S:g}s)",
        )
    transit = max(0.0, -ahead)  # time since the report was made: it ages the report, never freshens it
    age = None if status.heartbeat_age_s is None else status.heartbeat_age_s + transit
    remaining = None if status.lease_remaining_s is None else max(0.0, status.lease_remaining_s - transit)
    return Report(status, now, age, remaining)


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
    now_wall: float,
    now: float,
    report: Report | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
    details: bool = True,
) -> Verdict:
    """``now`` is the lease clock (freshness), ``now_wall`` only dates the checks entries.
    ``workload_checks`` is None until the first round of background checks has finished.
    ``details=False`` skips building the IETF checks object (the public answer never shows it)."""
    status, basis = _verdict(site, now, report, workload_checks, heartbeat_stale_s)
    checks = _checks(site, now_wall, now, report, workload_checks, heartbeat_stale_s) if details else {}
    return Verdict(status, basis, None if report is None else report.status.lease_epoch, checks)


def _verdict(
    site: str,
    now: float,
    report: Report | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
) -> tuple[str, str]:
    if report is None or workload_checks is None:
        return FAIL, "none"
    age = report.heartbeat_age(now)
    held = report.lease_held(site, now)
    agent = report.status
    heartbeats_ok = age is not None and age <= heartbeat_stale_s
    reporting = report.age(now) <= heartbeat_stale_s
    # Cut off from AWS only: the agent reports, and the lease it last saw is this site's (held,
    # renewed over the probe path, or lapsed for want of heartbeats). The probe must see this
    # site alive, so that the watchdog renews over the probe path instead of failing over.
    cut_off = reporting and (held or agent.lease_site == site)
    if not heartbeats_ok and not cut_off:
        return FAIL, "none"
    results = workload_checks.values()
    if held:
        if agent.workload == "running" and all(r.status == PASS for r in results):
            return PASS, "workload"
        return WARN, "none"
    # Not holding the lease: ready to take it, and nothing of the workload may still answer here.
    if agent.ready and agent.workload == "stopped" and not any(r.status == PASS for r in results):
        return PASS, "ready"
    return WARN, "none"


def _checks(
    site: str,
    now_wall: float,
    now: float,
    report: Report | None,
    workload_checks: Mapping[str, CheckResult] | None,
    heartbeat_stale_s: float,
) -> dict[str, list[dict[str, Any]]]:
    checks = {name: [_entry(result)] for name, result in (workload_checks or {}).items()}
    if report is None:
        checks["agent:heartbeat"] = [
            _entry(CheckResult(FAIL, now_wall, None, "no report from the agent yet", "system"))
        ]
        return checks
    agent = report.status
    age = report.heartbeat_age(now)
    ok = age is not None and age <= heartbeat_stale_s
    checks["agent:heartbeat"] = [
        _entry(
            CheckResult(
                PASS if ok else FAIL,
                now_wall,
                None if age is None else round(age, 3),
                "" if ok else f"no accepted heartbeat within {heartbeat_stale_s:g}s",
                "system",
            )
        )
    ]
    lease = {"site": agent.lease_site, "epoch": agent.lease_epoch, "heldHere": report.lease_held(site, now)}
    checks["agent:lease"] = [_entry(CheckResult(PASS, now_wall, lease, "", "system"))]
    workload = {"state": agent.workload, "ready": agent.ready}
    checks["agent:workload"] = [_entry(CheckResult(PASS, now_wall, workload, agent.detail, "system"))]
    return checks
