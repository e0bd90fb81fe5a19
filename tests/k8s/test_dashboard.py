"""The Grafana dashboard and the metrics contract in docs/kubernetes.md: every metric the dashboard queries
is in the contract, and the bot really exposes the bot metrics the contract lists."""

from __future__ import annotations

import json
import re

import pytest
from hfo_bot.gateway import GatewayStatus
from hfo_bot.metrics import BotMetrics
from testsupport.k8s import find, render
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.k8s

METRIC = re.compile(r"\bhfo_[a-z_]+\b")


def contract() -> dict[str, str]:
    """metric name -> source (agent, health, bot), from the table under '### Metrics contract'."""
    text = (REPO_ROOT / "docs/kubernetes.md").read_text()
    section = text.split("### Metrics contract", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `hfo_")]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out[cells[0].strip("`")] = cells[3]
    return out


def dashboard() -> dict[str, object]:
    cm = find(render("monitoring-laptop"), "ConfigMap", "hfo-dashboard")
    return json.loads(cm["data"]["hfo.json"])


def queried_metrics() -> set[str]:
    names: set[str] = set()
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            names |= set(METRIC.findall(target["expr"]))
    return names


def test_contract_is_parsed() -> None:
    sources = contract()
    assert len(sources) >= 15
    assert set(sources.values()) == {"agent", "health", "bot"}


def test_dashboard_queries_only_documented_metrics() -> None:
    queried = queried_metrics()
    assert queried, "the dashboard queries nothing"
    assert queried - set(contract()) == set()


def test_dashboard_shows_lease_signals_heartbeats_and_failovers() -> None:
    queried = queried_metrics()
    for needed in (
        "hfo_agent_lease_info",
        "hfo_agent_lease_epoch",
        "hfo_agent_heartbeats_total",
        "hfo_health_requests_total",
        "hfo_agent_workload_actions_total",
        "hfo_agent_self_fences_total",
        "hfo_bot_gateway_ready",
    ):
        assert needed in queried


def test_dashboard_is_portable() -> None:
    dash = dashboard()
    assert dash["uid"] == "hfo-failover"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_bot_exposes_exactly_its_contract() -> None:
    metrics = BotMetrics("primary", "bot-0", 1, 1)
    metrics.commands.labels(command="site").inc()
    text = metrics.render(GatewayStatus(True, 0.05, "ok"), draining=False).decode()
    exposed = {m for m in METRIC.findall(text) if not m.endswith("_created")}
    documented = {m for m, src in contract().items() if src == "bot"}
    assert exposed == documented


def test_site_image_exposes_the_contract_it_owns() -> None:
    """Runs once healthcheck/ (package hfo_site) is part of the tree; skipped on a branch without it."""
    site_metrics = pytest.importorskip("hfo_site.metrics", reason="hfo_site (healthcheck/) is not installed here")
    from prometheus_client import generate_latest

    exposed: set[str] = set()
    for cls in (site_metrics.HealthMetrics, site_metrics.AgentMetrics):
        exposed |= set(METRIC.findall(generate_latest(cls().registry).decode()))
    text = (REPO_ROOT / "docs/kubernetes.md").read_text()
    requested = set(re.findall(r"\| `(hfo_[a-z_]+)` \|[^\n]*\*requested\*", text))
    owned = {m for m, src in contract().items() if src in {"agent", "health"}} - requested
    assert owned - exposed == set()
