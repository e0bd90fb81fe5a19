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
    lease_remaining_s=None,
    heartbeat_age_s=0.25,
    reported_at=1_800_000_000.5,
    detail="pid 42",
)


def test_round_trip() -> None:
    assert parse_status(build_status(STATUS)) == STATUS


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(v=1), "v=2"),
        (lambda d: d.update(v=True), "v=2"),
        (lambda d: d["lease"].update(held=True, remaining_s=None), "remaining_s is required"),
        (lambda d: d["lease"].update(remaining_s=-1), "remaining_s"),
        (lambda d: d.update(heartbeat_age_s="1"), "heartbeat_age_s"),
        (lambda d: d.update(heartbeat_age_s=10**12), "heartbeat_age_s"),
        (lambda d: d["lease"].update(epoch=10**40), "lease.epoch"),
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


def test_the_example_in_the_docs_is_a_valid_report() -> None:
    from testsupport.tools import REPO_ROOT

    page = (REPO_ROOT / "docs" / "site.md").read_text()
    section = page[page.index("### Agent status") :]
    start = section.index("```json\n") + len("```json\n")
    example = section[start : section.index("\n```", start)]
    status = parse_status(example.replace("\n", "").encode())
    assert (status.heartbeat_age_s, status.lease_remaining_s, status.lease_held) == (1.25, 58.75, True)


def test_the_lease_endpoint_example_in_the_docs_is_what_the_agent_serves() -> None:
    import json

    from hfo_site.agent import Agent
    from hfo_site.metrics import AgentMetrics
    from testsupport.tools import REPO_ROOT

    page = (REPO_ROOT / "docs" / "protocol.md").read_text()
    section = page[page.index("## Lease endpoint") :]
    start = section.index("```json\n") + len("```json\n")
    example = json.loads(section[start : section.index("\n```", start)])
    served = Agent("primary", None, None, None, AgentMetrics(), 10.0, 0, mono=lambda: 0.0).lease_document()  # type: ignore[arg-type]
    assert example.keys() == served.keys()
    assert {k: type(v) for k, v in example.items()} == {k: type(v) for k, v in served.items()}
