"""The agent -> health service report (hfo_site.agent_status)."""

from __future__ import annotations

import json

import pytest
from hfo_protocol import ProtocolError
from hfo_site.agent_status import AgentStatus, build_status, parse_status

STATUS = AgentStatus(
    site="standby",
    backend="exec",
    workload="stopped",
    ready=True,
    lease_site="none",
    lease_epoch=9,
    lease_held=False,
    lease_expires_at=None,
    last_heartbeat_ok=1_800_000_000.25,
    reported_at=1_800_000_000.5,
    detail="pid 42",
)


def test_round_trip() -> None:
    assert parse_status(build_status(STATUS)) == STATUS


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(v=2), "v=1"),
        (lambda d: d.update(site="laptop"), "site must be one of"),
        (lambda d: d.update(workload="dancing"), "workload must be one of"),
        (lambda d: d.update(ready="yes"), "ready must be"),
        (lambda d: d["lease"].update(site="moon"), "lease.site"),
        (lambda d: d["lease"].update(epoch=-1), "lease.epoch"),
        (lambda d: d["lease"].update(held=None), "lease.held"),
        (lambda d: d.update(reported_at="yesterday"), "reported_at"),
        (lambda d: d.update(detail="x" * 600), "detail"),
    ],
)
def test_malformed_reports_are_refused(mutate, fragment: str) -> None:
    doc = json.loads(build_status(STATUS))
    mutate(doc)
    with pytest.raises(ProtocolError, match=fragment):
        parse_status(json.dumps(doc).encode())


def test_size_cap() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_status(b" " * 5000)
    assert info.value.code == "too_large"
