"""What the health service answers (hfo_site.verdict): the decision table of docs/site.md."""

from __future__ import annotations

import pytest
from hfo_protocol import ProtocolError
from hfo_site.agent_status import AgentStatus
from hfo_site.verdict import FAIL, FUTURE_ALLOWANCE_S, PASS, CheckResult, Report, decide, receive

NOW = 1_800_000_000.0  # wall clock
CLOCK = 5_000.0  # the health service's lease clock at NOW


def _agent(**kw: object) -> Report:
    """A report made at NOW - 1 (wall) and received at NOW, CLOCK: one second in transit."""
    fields: dict[str, object] = {
        "site": "primary",
        "backend": "kubernetes",
        "workload": "running",
        "ready": True,
        "lease_site": "primary",
        "lease_epoch": 4,
        "lease_held": True,
        "lease_remaining_s": 31.0,
        "heartbeat_age_s": 0.0,
        "reported_at": NOW - 1,
    }
    fields.update(kw)
    return receive(AgentStatus(**fields), NOW, CLOCK)


def decide_at(report: Report | None, checks: dict | None, later: float = 0.0, **kw: object):
    return decide("primary", NOW + later, CLOCK + later, report, checks, heartbeat_stale_s=30, **kw)


UP = {"workload:ready": CheckResult(PASS, NOW, 200)}
DOWN = {"workload:ready": CheckResult(FAIL, NOW, None, "refused")}
LAPSED, WARNED = ("pass", "ready"), ("warn", "none")
NOT_HELD = {"lease_site": "standby", "lease_held": False, "lease_remaining_s": None, "workload": "stopped"}


@pytest.mark.parametrize(
    ("agent", "checks", "expected"),
    [
        (_agent(), UP, ("pass", "workload")),
        (_agent(), DOWN, ("warn", "none")),
        (_agent(workload="starting"), UP, ("warn", "none")),
        (_agent(), {}, ("pass", "workload")),  # no workload checks configured: the agent's word
        (_agent(lease_remaining_s=0.9), UP, ("warn", "none")),  # expired in transit: not held, and bot up
        (_agent(lease_site="standby"), UP, ("warn", "none")),  # held flag for another site counts for nothing
        (_agent(**NOT_HELD), DOWN, ("pass", "ready")),
        (_agent(**NOT_HELD), UP, ("warn", "none")),  # the bot still answers here
        (_agent(**{**NOT_HELD, "ready": False}), DOWN, ("warn", "none")),
        (_agent(**{**NOT_HELD, "workload": "stopping"}), DOWN, ("warn", "none")),
        (_agent(heartbeat_age_s=29.5, **NOT_HELD), DOWN, ("fail", "none")),  # 29.5 s + 1 s in transit
        (_agent(heartbeat_age_s=None, **NOT_HELD), DOWN, ("fail", "none")),
        # Heartbeats stale but a lease renewed over the probe path held, the agent reporting: the
        # probe must keep passing, or the renewals it carries would stop (docs/protocol.md#renewal).
        (_agent(heartbeat_age_s=29.5), UP, ("pass", "workload")),
        (_agent(heartbeat_age_s=None), UP, ("pass", "workload")),  # restarted agent, AWS unreachable
        (_agent(heartbeat_age_s=29.5), DOWN, ("warn", "none")),
        # The lease lapsed for want of heartbeats (AWS unreachable), the agent ready and reporting:
        # the laptop answers alive so the watchdog renews over the probe path, not fail over.
        (_agent(heartbeat_age_s=45.0, lease_held=False, lease_remaining_s=None, workload="stopped"), DOWN, LAPSED),
        (_agent(heartbeat_age_s=45.0, lease_held=False, lease_remaining_s=None, workload="running"), UP, WARNED),
        (_agent(), None, ("fail", "none")),  # checks cache still cold
        (None, UP, ("fail", "none")),  # no agent report at all
    ],
)
def test_decision_table(agent: Report | None, checks: dict | None, expected: tuple[str, str]) -> None:
    verdict = decide_at(agent, checks)
    assert (verdict.status, verdict.basis) == expected


def test_checks_object_follows_the_ietf_format() -> None:
    verdict = decide_at(_agent(), DOWN)
    entry = verdict.checks["workload:ready"][0]
    assert entry == {
        "status": "fail",
        "time": "2027-01-15T08:00:00.000Z",
        "componentType": "component",
        "observedValue": None,
        "output": "refused",
    }
    assert verdict.checks["agent:heartbeat"][0]["observedValue"] == 1.0
    assert verdict.lease_epoch == 4


def test_public_answers_skip_the_checks_but_not_the_verdict() -> None:
    for agent, checks in ((_agent(), UP), (_agent(**NOT_HELD), DOWN), (None, UP), (_agent(), None)):
        full = decide_at(agent, checks)
        public = decide_at(agent, checks, details=False)
        assert (public.status, public.basis, public.lease_epoch) == (full.status, full.basis, full.lease_epoch)
        assert public.checks == {} and full.checks


def test_ages_run_on_the_service_clock_from_the_arrival() -> None:
    report = _agent(heartbeat_age_s=2.0, lease_remaining_s=20.0)  # at arrival: age 3 s, 19 s left
    assert decide_at(report, UP, later=26.9).status == "warn"  # heartbeats fresh, lease gone (below)
    # 3 + 27.1 > 30: heartbeats stale; the report (27.1 s old) still counts: a lapsed own lease
    # with the bot still up is a warning, and the report's own age turns it to fail.
    assert decide_at(report, UP, later=27.1).status == "warn"
    assert decide_at(report, UP, later=30.1).status == "fail"
    assert decide_at(report, UP, later=18.9).basis == "workload"
    assert decide_at(report, UP, later=19.1).basis == "none"  # the lease ran out here


@pytest.mark.parametrize("ahead", [FUTURE_ALLOWANCE_S + 0.01, 3600.0])
def test_a_report_from_the_future_is_refused(ahead: float) -> None:
    status = AgentStatus("primary", "exec", "running", True, "primary", 4, True, 30.0, 0.0, NOW + ahead)
    with pytest.raises(ProtocolError) as info:
        receive(status, NOW, CLOCK)
    assert info.value.code == "future"


def test_a_report_just_inside_the_allowance_gains_nothing() -> None:
    """A report made 1.9 s 'ahead' is taken as made on arrival: it is never younger than it says."""
    status = AgentStatus("primary", "exec", "running", True, "primary", 4, True, 30.0, 0.0, NOW + 1.9)
    report = receive(status, NOW, CLOCK)
    assert (report.heartbeat_age_s, report.lease_remaining_s) == (0.0, 30.0)


def test_a_renewed_lease_keeps_passing_only_while_the_agent_reports() -> None:
    """Heartbeats have failed for minutes; the lease renewed over the probe path has 90 s left.
    The answer passes while the report is younger than the stale window, then fails: a dead agent
    never keeps the probe passing."""
    report = _agent(heartbeat_age_s=200.0, lease_remaining_s=91.0)
    assert decide_at(report, UP, later=29.0).status == PASS
    assert decide_at(report, UP, later=30.5).status == FAIL  # no report for 30 s: the agent is gone
    assert decide_at(report, UP, later=95.0).status == FAIL


def test_a_lapsed_lease_of_this_site_passes_only_while_the_agent_reports() -> None:
    """Heartbeats cannot reach AWS and the laptop's lease has lapsed: its agent stopped the bot
    and reports ready. The answer passes (the watchdog then renews over the probe path) while the
    reports keep coming, and fails once they stop; a lapsed lease naming the standby never passes."""
    lapsed = {"lease_held": False, "lease_remaining_s": None, "workload": "stopped"}
    report = _agent(heartbeat_age_s=45.0, **lapsed)
    assert (decide_at(report, DOWN).status, decide_at(report, DOWN).basis) == (PASS, "ready")
    assert decide_at(report, DOWN, later=29.0).status == PASS
    assert decide_at(report, DOWN, later=30.5).status == FAIL  # no report for 30 s: the agent is gone
    after_failover = _agent(heartbeat_age_s=45.0, **{**lapsed, "lease_site": "standby", "lease_epoch": 5})
    assert decide_at(after_failover, DOWN).status == FAIL
