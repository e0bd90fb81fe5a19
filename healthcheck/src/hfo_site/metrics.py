"""Prometheus metrics of both processes, each on its own registry (docs/site.md#metrics)."""

from __future__ import annotations

from hfo_protocol.heartbeat import LEASE_SITES, WORKLOAD_STATES
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.aiohttp import make_aiohttp_handler

disable_created_metrics()  # the *_created series double the output and nobody reads them

# How a wake hold ended (hfo_site.agent.Agent._end_wake_hold): only "renewed" kept the workload.
WAKE_HOLD_OUTCOMES = ("renewed", "failed", "elsewhere", "ran_out", "suspended")
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class HealthMetrics:
    def __init__(self) -> None:
        self.registry = _registry()
        r = self.registry
        self.requests = Counter(
            "hfo_health_requests", "Requests answered on the public port", ["path", "code"], registry=r
        )
        self.latency = Histogram(
            "hfo_health_request_seconds", "Handler time of /healthz", buckets=_FAST_BUCKETS, registry=r
        )
        self.rate_limited = Counter("hfo_health_rate_limited", "Requests refused with 429", registry=r)
        self.checks = Counter(
            "hfo_health_checks", "Background checks run, by check and result", ["check", "status"], registry=r
        )
        self.check_seconds = Histogram(
            "hfo_health_check_seconds", "Duration of one background check", ["check"], buckets=_SLOW_BUCKETS, registry=r
        )
        self.check_rounds = Counter("hfo_health_check_rounds", "Rounds of background checks", registry=r)
        self.verdict = Gauge("hfo_health_status", "Current verdict (1 for the current one)", ["status"], registry=r)
        self.agent_reports = Counter(
            "hfo_health_agent_reports", "Agent status reports received", ["result"], registry=r
        )
        self.agent_report_age = Gauge(
            "hfo_health_agent_heartbeat_age_seconds", "Age of the agent's last accepted heartbeat", registry=r
        )
        self.clients = Gauge("hfo_health_rate_limit_clients", "Clients tracked by the rate limiter", registry=r)
        self.bad_requests = Counter(
            "hfo_health_bad_requests", "Requests the HTTP parser refused on the public port (400/413/431)", registry=r
        )
        self.renewals = Counter(
            "hfo_health_renewals", "Lease renewals received over the probe path, by result", ["result"], registry=r
        )

    def handler(self):  # type: ignore[no-untyped-def]
        return make_aiohttp_handler(self.registry)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = _registry()
        r = self.registry
        self.heartbeats = Counter(
            "hfo_agent_heartbeats",
            "Heartbeat attempts by outcome (accepted or the failure class)",
            ["result"],
            registry=r,
        )
        self.heartbeat_seconds = Histogram(
            "hfo_agent_heartbeat_seconds", "Heartbeat round-trip time", buckets=_SLOW_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            "hfo_agent_last_heartbeat_success_timestamp_seconds", "Wall time of the last accepted answer", registry=r
        )
        self.lease_epoch = Gauge("hfo_agent_lease_epoch", "Highest lease epoch seen", registry=r)
        self.lease_held = Gauge("hfo_agent_lease_held", "1 while this site holds a fresh lease", registry=r)
        self.lease_info = Gauge(
            "hfo_agent_lease_info",
            "1 for the site named by the last accepted lease answer, 0 for the others",
            ["lease_site"],
            registry=r,
        )
        self.lease_remaining = Gauge(
            "hfo_agent_lease_remaining_seconds", "Time left on the held lease (0 when not held)", registry=r
        )
        self.lower_epochs = Counter(
            "hfo_agent_lease_lower_epoch_ignored", "Answers ignored because their epoch went backwards", registry=r
        )
        self.workload_state = Gauge(
            "hfo_agent_workload_state", "Workload state (1 for the current one)", ["state"], registry=r
        )
        self.workload_actions = Counter(
            "hfo_agent_workload_actions", "Start and stop actions by outcome", ["action", "result"], registry=r
        )
        self.self_fences = Counter(
            "hfo_agent_self_fences", "Stops because the lease expired without a fresh answer", registry=r
        )
        self.wake_holds = Counter(
            "hfo_agent_wake_holds",
            "Stops held for the wake heartbeat after a suspend outlived the lease, by how the hold ended",
            ["outcome"],
            registry=r,
        )
        self.renewal_grants = Counter(
            "hfo_agent_renewal_grants",
            "Lease renewals passed on by the health service, by what the lease tracker did with them",
            ["outcome"],
            registry=r,
        )
        self.status_reports = Counter(
            "hfo_agent_status_reports", "Reports to the health service by outcome", ["result"], registry=r
        )
        self.state_events = Counter(
            "hfo_agent_state_events",
            "Events reported by the state containers (restored, uploaded, final, fenced, failed), by workload",
            ["workload", "event"],
            registry=r,
        )
        self.state_credentials = Counter(
            "hfo_agent_state_credentials",
            "State credentials requests of the state containers, by answer (ok or the refusal code)",
            ["result"],
            registry=r,
        )
        # Shard-aware scaling (docs/kubernetes.md#shard-aware-scaling); idle without HFO_SHARDS_ENABLED.
        self.discord_requests = Counter(
            "hfo_agent_discord_requests",
            "GET /gateway/bot requests by outcome (ok, rate_limited, unauthorized, http, timeout, network, malformed)",
            ["result"],
            registry=r,
        )
        self.shards_recommended = Gauge(
            "hfo_agent_shards_recommended", "Discord's last recommended shard count (0 before any answer)", registry=r
        )
        self.session_starts_remaining = Gauge(
            "hfo_agent_discord_session_starts_remaining",
            "session_start_limit.remaining of Discord's last answer (-1 before any)",
            registry=r,
        )
        self.shard_count = Gauge(
            "hfo_agent_shard_count", "SHARD_COUNT given to the bot at its last start (0 before any)", registry=r
        )
        self.shard_pods = Gauge("hfo_agent_shard_pods", "Bot pods for that count while the lease is held", registry=r)
        self.reshards = Counter(
            "hfo_agent_reshards", "Restarts of a running bot for a new shard count, by outcome", ["result"], registry=r
        )
        self.session_starts_remaining.set(-1)
        for result in ("ok", "error"):
            self.reshards.labels(result)
        for result in ("ok", "rate_limited", "unauthorized", "http", "timeout", "network", "malformed"):
            self.discord_requests.labels(result)
        for outcome in WAKE_HOLD_OUTCOMES:
            self.wake_holds.labels(outcome)
        for state in WORKLOAD_STATES:
            self.workload_state.labels(state).set(0)
        for site in LEASE_SITES:
            self.lease_info.labels(site).set(0)

    def set_lease_site(self, lease_site: str) -> None:
        for name in LEASE_SITES:
            self.lease_info.labels(name).set(1 if name == lease_site else 0)

    def set_workload_state(self, state: str) -> None:
        for name in WORKLOAD_STATES:
            self.workload_state.labels(name).set(1 if name == state else 0)

    def handler(self):  # type: ignore[no-untyped-def]
        return make_aiohttp_handler(self.registry)
