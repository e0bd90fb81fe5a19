"""Shard-aware scaling with two real ``hfo-site agent`` processes (primary and standby, each its own site
applied from k8s/ in its own namespace of the real kube-apiserver 1.20.2, each with its ServiceAccount's
token), the stand-in watchdog moving the lease, and one fake Discord on loopback for the shared bot token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.fake_gateway_bot import FakeGatewayBot
from testsupport.kube_apiserver import ControlPlane, apply_site
from testsupport.net import free_port, wait_until
from testsupport.site_helpers import SiteProcess, metric_value, request
from testsupport.site_watchdog import StandInWatchdog

pytestmark = [pytest.mark.network, pytest.mark.kube, pytest.mark.slow]

TOKEN = "MTA0MDAwMDAwMDAwMDAwMDAw.GhFoTk.agent-process-token_0123456789"


@pytest.fixture
def discord() -> Iterator[FakeGatewayBot]:
    with FakeGatewayBot(TOKEN, shards=3) as fake:
        yield fake


class SiteUnderTest:
    def __init__(self, plane: ControlPlane, site: str) -> None:
        self.plane = plane
        self.site = site
        self.namespace = f"{site}-{uuid.uuid4().hex[:6]}"
        apply_site(plane, self.namespace)
        self.metrics_port = 0

    def metric(self, name: str, **labels: str) -> float | None:
        return metric_value(request(self.metrics_port, "/metrics").body.decode(), name, labels)

    def replicas(self) -> int:
        return int(self.plane.apps().read_namespaced_stateful_set("bot", self.namespace).spec.replicas)

    def shards(self) -> dict[str, str]:
        return dict(self.plane.core().read_namespaced_config_map("hfo-bot-shards", self.namespace).data)

    def start_agent(
        self, tmp: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path, api: str
    ) -> SiteProcess:
        token_file = tmp / f"{self.site}-bot-token"
        token_file.write_text(TOKEN + "\n")
        kubeconfig = self.plane.service_account_kubeconfig(self.namespace, "hfo-site", tmp / f"{self.site}.kubeconfig")
        metrics_port = self.metrics_port = free_port()
        env = {
            "HFO_SITE": self.site,
            "HFO_HMAC_SECRET_FILE": str(secret_file),
            "HFO_HEARTBEAT_URL": watchdog.url,
            "HFO_HEARTBEAT_INTERVAL_S": "0.2",
            "HFO_HEARTBEAT_TIMEOUT_S": "0.2",
            "HFO_CA_BUNDLE": str(ca_bundle),
            "HFO_STOP_GRACE_S": "1",
            "HFO_BACKEND": "kubernetes",
            "HFO_K8S_NAMESPACE": self.namespace,
            "HFO_K8S_WORKLOADS": "statefulset/bot",
            "KUBECONFIG": str(kubeconfig),
            "KUBERNETES_SERVICE_HOST": "",
            "HFO_AGENT_BIND": "127.0.0.1",
            "HFO_AGENT_METRICS_PORT": str(metrics_port),
            "HFO_AGENT_LEASE_BIND": "127.0.0.1",
            "HFO_AGENT_LEASE_PORT": str(free_port()),
            "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{free_port()}/agent-status",  # nobody listens: harmless
            "HFO_SHARDS_ENABLED": "true",
            "HFO_SHARDS_PER_POD": "2",
            "HFO_SHARDS_REFRESH_S": "1",
            "HFO_DISCORD_TIMEOUT_S": "1",
            "HFO_DISCORD_TOKEN_FILE": str(token_file),
            "HFO_DISCORD_API_URL": api,
            "HFO_LOG_LEVEL": "DEBUG",
        }
        proc = SiteProcess("agent", env, tmp / f"agent-{self.site}.log").start()
        proc.wait_http(metrics_port, "/livez")
        return proc


def test_the_lease_holder_runs_discords_shard_count_and_the_other_site_stays_at_zero(
    tmp_path: Path,
    watchdog: StandInWatchdog,
    secret_file: Path,
    ca_bundle: Path,
    kube_cluster: ControlPlane,
    discord: FakeGatewayBot,
) -> None:
    primary, standby = SiteUnderTest(kube_cluster, "primary"), SiteUnderTest(kube_cluster, "standby")
    sites = (primary, standby)
    watchdog.update(ttl_s=1, heartbeat_interval_s=1)
    watchdog.set_lease("primary")
    agents: list[SiteProcess] = []
    with (
        kube_cluster.kubelet(primary.namespace, ready_after_s=0.1, terminate_after_s=0.2),
        kube_cluster.kubelet(standby.namespace, ready_after_s=0.1, terminate_after_s=0.2),
    ):
        try:
            for site in sites:
                agents.append(site.start_agent(tmp_path, watchdog, secret_file, ca_bundle, discord.api))
            # 3 shards at 2 per pod: 2 pods on the lease holder, 0 on the other site.
            wait_until(lambda: primary.replicas() == 2, timeout=20, what="primary scaled to 2 pods")
            assert primary.shards() == {"SHARD_COUNT": "3", "SHARDS_PER_POD": "2"}
            assert standby.replicas() == 0 and standby.shards() == {"SHARD_COUNT": "1", "SHARDS_PER_POD": "1"}

            watchdog.set_lease("standby")  # failover
            wait_until(lambda: primary.replicas() == 0, timeout=20, what="primary stopped")
            wait_until(lambda: standby.replicas() == 2, timeout=20, what="standby scaled to 2 pods")
            assert standby.shards() == {"SHARD_COUNT": "3", "SHARDS_PER_POD": "2"}

            discord.shards = 5  # the bot grew: the lease holder reshards, the other site stays at 0
            wait_until(lambda: standby.replicas() == 3, timeout=20, what="standby resharded to 3 pods")
            assert standby.shards() == {"SHARD_COUNT": "5", "SHARDS_PER_POD": "2"}
            assert primary.replicas() == 0
            assert (standby.metric("hfo_agent_shard_count"), standby.metric("hfo_agent_shard_pods")) == (5, 3)
            assert standby.metric("hfo_agent_reshards_total", result="ok") == 1
            assert primary.metric("hfo_agent_reshards_total", result="ok") == 0
            # The site without the lease keeps asking (a standby has a fresh count at failover).
            wait_until(lambda: primary.metric("hfo_agent_shards_recommended") == 5, timeout=5, what="primary asked")
            assert primary.metric("hfo_agent_discord_session_starts_remaining") == 1000

            discord.rate_limit(30.0, glob=True)  # whoever asks next is told to wait 30 s
            asked = len(discord.requests())
            wait_until(lambda: len(discord.requests()) >= asked + 4, timeout=10, what="more polls")
            limited_counts = [s.metric("hfo_agent_discord_requests_total", result="rate_limited") for s in sites]
            assert sorted(limited_counts) == [0, 1]
        finally:
            codes = [agent.terminate(timeout=20) for agent in agents]
    assert codes == [0, 0]
    assert primary.replicas() == 0 and standby.replicas() == 0  # fence on exit
    for agent in agents:
        logs = agent.logs()
        assert TOKEN not in logs, "the bot token reached a log line"
    # The rate-limited agent did not ask again within retry_after, the other went on asking.
    limited = [a for a in agents if any(r.get("kind") == "rate_limited" for r in a.log_records())]
    assert len(limited) == 1
    # The start waited for the first answer: each start went straight to Discord's count, the only reshard
    # is the one for the grown bot.
    reshards = [r for a in agents for r in a.log_records() if r.get("msg", "").startswith("resharding")]
    assert len(reshards) == 1, reshards
