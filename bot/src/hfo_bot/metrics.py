"""Prometheus metrics of the bot, in their own registry (no process-global state). Names are part of the
monitoring contract in docs/kubernetes.md."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hfo_bot.gateway import GatewayStatus
from hfo_bot.lease import UNAWARE, LeaseStatus

CONTENT_TYPE = CONTENT_TYPE_LATEST


class BotMetrics:
    def __init__(self, site: str, pod: str, shard_count: int, shards_here: int) -> None:
        self.registry = CollectorRegistry()
        info = Gauge("hfo_bot_info", "Always 1; labels say where the bot runs", ["site", "pod"], registry=self.registry)
        info.labels(site=site, pod=pod).set(1)
        Gauge("hfo_bot_shard_count", "Total shards of the bot", registry=self.registry).set(shard_count)
        Gauge("hfo_bot_shards_assigned", "Shards run by this pod", registry=self.registry).set(shards_here)
        self._ready = Gauge(
            "hfo_bot_gateway_ready", "1 when every shard of this pod is connected", registry=self.registry
        )
        self._latency = Gauge(
            "hfo_bot_gateway_latency_seconds",
            "Worst shard heartbeat latency (NaN while unknown)",
            registry=self.registry,
        )
        self._draining = Gauge("hfo_bot_draining", "1 once a stop signal was received", registry=self.registry)
        self.commands = Counter("hfo_bot_commands", "Commands answered", ["command"], registry=self.registry)
        self._lease_aware = Gauge(
            "hfo_bot_lease_aware",
            "1 when the bot asks its agent for the lease (HFO_BOT_LEASE_URL set)",
            registry=self.registry,
        )
        self._lease_held = Gauge(
            "hfo_bot_lease_held",
            "1 while the site holds a lease in date, as last confirmed by the agent",
            registry=self.registry,
        )
        self._lease_fresh = Gauge(
            "hfo_bot_lease_fresh_seconds",
            "Seconds before the last grant goes stale (0 without one)",
            registry=self.registry,
        )
        self._lease_epoch = Gauge(
            "hfo_bot_lease_epoch", "Epoch of the grant held (-1 without one)", registry=self.registry
        )
        self._lease_checks = Counter("hfo_bot_lease_checks", "Answers asked of the agent", registry=self.registry)
        self._lease_refusals = Counter(
            "hfo_bot_lease_refusals", "Asks that granted nothing (refused, error, malformed)", registry=self.registry
        )
        self._lease_pauses = Counter("hfo_bot_lease_pauses", "Pauses (suspend or freeze) seen", registry=self.registry)
        self._lease_counted = (0, 0, 0)  # the gate's counts already added to the counters

    def render(self, status: GatewayStatus, draining: bool, lease: LeaseStatus = UNAWARE) -> bytes:
        self._lease_aware.set(1 if lease.aware else 0)
        self._lease_held.set(1 if lease.holds else 0)
        self._lease_fresh.set(lease.fresh_for_s)
        self._lease_epoch.set(lease.epoch if lease.epoch is not None else -1)
        checks, refusals, pauses = self._lease_counted
        self._lease_checks.inc(max(0, lease.checks - checks))
        self._lease_refusals.inc(max(0, lease.refusals - refusals))
        self._lease_pauses.inc(max(0, lease.pauses - pauses))
        self._lease_counted = (
            max(checks, lease.checks),
            max(refusals, lease.refusals),
            max(pauses, lease.pauses),
        )
        self._ready.set(1 if status.ready else 0)
        self._latency.set(status.latency_s)
        self._draining.set(1 if draining else 0)
        return generate_latest(self.registry)
