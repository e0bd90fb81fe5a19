"""What the health service answers (hfo_site.verdict): the decision table of docs/site.md."""

from __future__ import annotations

import pytest
from hfo_site.agent_status import AgentStatus
from hfo_site.verdict import FAIL, PASS, CheckResult, decide

NOW = 1_800_000_000.0


def _agent(**kw: object) -> AgentStatus:
    fields: dict[str, object] = {
        "site": "primary",
        "backend": "kubernetes",
        "workload": "running",
        "ready": True,
        "lease_site": "primary",
        "lease_epoch": 4,
        "lease_held": True,
        "lease_expires_at": NOW + 30,
        "last_heartbeat_ok": NOW - 1,
        "reported_at": NOW - 1,
    }
    fields.update(kw)
    return AgentStatus(**fields)


UP = {"workload:ready": CheckResult(PASS, NOW, 200)}
DOWN = {"workload:ready": CheckResult(FAIL, NOW, None, "refused")}
NOT_HELD = {"lease_site": "standby", "lease_held": False, "lease_expires_at": None, "workload": "stopped"}


@pytest.mark.parametrize(
    ("agent", "checks", "expected"),
    [
        (_agent(), UP, ("pass", "workload")),
        (_agent(), DOWN, ("warn", "none")),
        (_agent(workload="starting"), UP, ("warn", "none")),
        (_agent(), {}, ("pass", "workload")),  # no workload checks configured: the agent's word
        (_agent(lease_expires_at=NOW - 0.1), UP, ("warn", "none")),  # expired: not held, and bot up
        (_agent(lease_site="standby"), UP, ("warn", "none")),  # held flag for another site counts for nothing
        (_agent(**NOT_HELD), DOWN, ("pass", "ready")),
        (_agent(**NOT_HELD), UP, ("warn", "none")),  # the bot still answers here
        (_agent(**{**NOT_HELD, "ready": False}), DOWN, ("warn", "none")),
        (_agent(**{**NOT_HELD, "workload": "stopping"}), DOWN, ("warn", "none")),
        (_agent(last_heartbeat_ok=NOW - 31), UP, ("fail", "none")),
        (_agent(last_heartbeat_ok=None), UP, ("fail", "none")),
        (_agent(), None, ("fail", "none")),  # checks cache still cold
        (None, UP, ("fail", "none")),  # no agent report at all
    ],
)
def test_decision_table(agent: AgentStatus | None, checks: dict | None, expected: tuple[str, str]) -> None:
    verdict = decide("primary", NOW, agent, checks, heartbeat_stale_s=30)
    assert (verdict.status, verdict.basis) == expected


def test_checks_object_follows_the_ietf_format() -> None:
    verdict = decide("primary", NOW, _agent(), DOWN, heartbeat_stale_s=30)
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
        full = decide("primary", NOW, agent, checks, heartbeat_stale_s=30)
        public = decide("primary", NOW, agent, checks, heartbeat_stale_s=30, details=False)
        assert (public.status, public.basis, public.lease_epoch) == (full.status, full.basis, full.lease_epoch)
        assert public.checks == {} and full.checks
