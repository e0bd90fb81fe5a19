"""Shard-aware scaling end to end on the Kubernetes side (hfo_site.backends.sharded) against the real
kube-apiserver 1.20.2 and a fake Discord on loopback.

Each test applies the laptop site as rendered from k8s/ into its own namespace (the ConfigMap hfo-bot-shards,
the agent's Role with its pinned resourceNames, the bot's StatefulSet) and acts with the agent's own
ServiceAccount token. The real StatefulSet controller creates and deletes the Pods; a kubelet stand-in
reports them Ready and finishes their termination. Requests are read back from the API server's audit log.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hfo_bot.sharding import assign
from hfo_site.backends.base import WorkloadError
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.backends.sharded import ShardedBackend
from hfo_site.config import DESIRED_REPLICAS_ANNOTATION, ShardSettings, WorkloadRef
from hfo_site.k8s import ConfigMapApi, WorkloadApi, make_api_client
from hfo_site.shards import GatewayClient, Recommender
from testsupport.fake_gateway_bot import FakeGatewayBot
from testsupport.kube_apiserver import ControlPlane, apply_site, wait_for

pytestmark = [pytest.mark.network, pytest.mark.kube]

BOT = WorkloadRef("statefulset", "bot")
TOKEN = "MTA0MDAwMDAwMDAwMDAwMDAw.GhFoTk.kube-test-token_0123456789"
_NUMBERS = itertools.count(1)


@dataclass
class Site:
    plane: ControlPlane
    namespace: str

    @property
    def agent(self) -> str:
        return f"system:serviceaccount:{self.namespace}:hfo-site"

    def replicas(self) -> int:
        return int(self.plane.apps().read_namespaced_stateful_set("bot", self.namespace).spec.replicas)

    def annotation(self) -> str | None:
        sts = self.plane.apps().read_namespaced_stateful_set("bot", self.namespace)
        return (sts.metadata.annotations or {}).get(DESIRED_REPLICAS_ANNOTATION)

    def shard_settings(self) -> dict[str, str]:
        return dict(self.plane.core().read_namespaced_config_map("hfo-bot-shards", self.namespace).data)

    def set_shard_settings(self, data: dict[str, str]) -> None:
        self.plane.core().patch_namespaced_config_map("hfo-bot-shards", self.namespace, {"data": data})

    def pods(self) -> dict[str, str]:
        """name -> uid of the bot's Pods."""
        pods = self.plane.core().list_namespaced_pod(self.namespace, label_selector="app.kubernetes.io/name=hfo-bot")
        return {p.metadata.name: p.metadata.uid for p in pods.items}

    def agent_writes(self) -> list[tuple[str, str, str, int]]:
        return [r for r in self.plane.requests_by(self.namespace, self.agent) if r[0] == "patch"]


@pytest.fixture
def site(kube_cluster: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    namespace = f"shards-{next(_NUMBERS)}"
    apply_site(kube_cluster, namespace)
    kubeconfig = kube_cluster.service_account_kubeconfig(namespace, "hfo-site", tmp_path / "agent.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return Site(kube_cluster, namespace)


@pytest.fixture
def kubelet(site: Site) -> Iterator[Any]:
    with site.plane.kubelet(site.namespace, ready_after_s=0.2, terminate_after_s=0.3) as stand_in:
        yield stand_in


@pytest.fixture
def discord() -> Iterator[FakeGatewayBot]:
    with FakeGatewayBot(TOKEN, shards=6) as fake:
        yield fake


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_sharded(
    site: Site,
    discord: FakeGatewayBot,
    steps: Callable[[ShardedBackend, Clock], Awaitable[Any]],
    per_pod: int = 2,
    configmap: str = "hfo-bot-shards",
) -> Any:
    settings = ShardSettings(
        workload=BOT,
        configmap=configmap,
        per_pod=per_pod,
        min_replicas=1,
        max_replicas=8,
        grow_after_s=0.0,
        shrink_after_s=3600.0,
        refresh_s=900.0,
        token_file=Path("/unused"),
        api_url=discord.api,
        timeout_s=2.0,
    )
    clock = Clock()

    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            api = make_api_client(request_timeout_s=5)
            inner = KubernetesBackend(WorkloadApi(api, site.namespace), (BOT,), grace_s=5.0, poll_s=0.05)
            recommender = Recommender(GatewayClient(discord.api, lambda: TOKEN, session, 2.0), 900.0, clock)
            backend = ShardedBackend(inner, ConfigMapApi(api, site.namespace, configmap), settings, recommender, clock)
            return await steps(backend, clock)

    return asyncio.run(main())


async def running(backend: ShardedBackend, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (observed := await backend.observe()).state != "running":
        assert loop.time() < deadline, observed
        await asyncio.sleep(0.1)


def covered(settings: dict[str, str], pods: list[str]) -> list[int]:
    """Every shard id run by the pods, as hfo_bot.sharding assigns them from the ConfigMap's values."""
    return sorted(i for pod in pods for i in assign(settings, pod).shard_ids)


def test_a_start_writes_the_shard_settings_first_then_scales_to_ceil_shards_over_per_pod(
    site: Site, discord: FakeGatewayBot, kubelet: Any
) -> None:
    async def steps(backend: ShardedBackend, clock: Clock) -> str:
        await backend.refresh_once(may_run=lambda: False)  # the standby's view: asks Discord, runs nothing
        assert site.replicas() == 0 and site.agent_writes() == []
        await backend.start()  # the lease came
        await running(backend)
        return (await backend.observe()).detail

    detail = run_sharded(site, discord, steps)
    assert "6 shards, 2 per pod, 3 pods" in detail
    assert site.shard_settings() == {"SHARD_COUNT": "6", "SHARDS_PER_POD": "2"}
    assert site.replicas() == 3
    assert sorted(site.pods()) == ["bot-0", "bot-1", "bot-2"]
    assert covered(site.shard_settings(), list(site.pods())) == list(range(6)), "each shard exactly once"
    # The ConfigMap before the scale, both with the agent's own identity; Git's annotation never written.
    assert site.agent_writes() == [
        ("patch", "configmaps", "hfo-bot-shards", 200),
        ("patch", "statefulsets/scale", "bot", 200),
    ]
    assert site.annotation() == "1"
    assert len(discord.requests()) == 1


def test_a_changed_count_under_the_lease_restarts_every_pod_with_the_new_count(
    site: Site, discord: FakeGatewayBot, kubelet: Any
) -> None:
    async def steps(backend: ShardedBackend, clock: Clock) -> dict[str, str]:
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()
        await running(backend)
        before = site.pods()
        discord.shards = 8
        clock.now += 900
        decision = await backend.refresh_once(may_run=lambda: True)
        assert decision.changed and backend.reshards == 1
        await running(backend)
        return before

    before = run_sharded(site, discord, steps)
    after = site.pods()
    assert sorted(after) == ["bot-0", "bot-1", "bot-2", "bot-3"]
    assert all(after[name] != uid for name, uid in before.items()), "every pod restarted: none kept the old count"
    assert site.shard_settings() == {"SHARD_COUNT": "8", "SHARDS_PER_POD": "2"}
    assert covered(site.shard_settings(), list(after)) == list(range(8))
    scale_writes = [r for r in site.agent_writes() if r[1] == "statefulsets/scale"]
    assert [r[1] for r in site.agent_writes()] == [
        "configmaps", "statefulsets/scale",  # the start at 6
        "configmaps", "statefulsets/scale", "statefulsets/scale",  # reshard: settings, to 0, to 4
    ]  # fmt: skip
    assert len(scale_writes) == 3


def test_without_the_lease_a_changed_count_is_only_remembered_and_a_stop_goes_to_zero(
    site: Site, discord: FakeGatewayBot, kubelet: Any
) -> None:
    holds = {"lease": True}

    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: holds["lease"])
        await backend.start()
        await running(backend)
        holds["lease"] = False
        discord.shards = 2
        clock.now += 900
        await backend.refresh_once(may_run=lambda: holds["lease"])
        assert backend.reshards == 0 and site.shard_settings()["SHARD_COUNT"] == "6", "no lease: no reshard"
        await backend.stop()
        assert (await backend.observe()).state == "stopped"
        holds["lease"] = True  # the lease comes back: the start takes the freshest count at once
        await backend.start()
        await running(backend)

    run_sharded(site, discord, steps)
    assert site.replicas() == 1 and site.shard_settings() == {"SHARD_COUNT": "2", "SHARDS_PER_POD": "2"}
    assert site.annotation() == "1", "the agent never records a size it decides itself"


def test_discord_unreachable_at_start_takes_the_count_the_configmap_recorded(
    site: Site, discord: FakeGatewayBot
) -> None:
    site.set_shard_settings({"SHARD_COUNT": "8", "SHARDS_PER_POD": "2"})  # a previous agent's plan
    discord.then(503, b"upstream connect error")

    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)  # 503: no answer yet
        assert backend.recommender.last_good is None and backend.recommender.last_error is not None
        await backend.start()

    run_sharded(site, discord, steps)
    assert site.replicas() == 4
    assert [r[1] for r in site.agent_writes()] == ["statefulsets/scale"], "nothing to write: it already said 8"


def test_a_rate_limited_refresh_changes_nothing(site: Site, discord: FakeGatewayBot, kubelet: Any) -> None:
    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()
        discord.shards = 12
        discord.rate_limit(30.0, glob=True)
        clock.now += 900
        await backend.refresh_once(may_run=lambda: True)
        clock.now += 29
        await backend.refresh_once(may_run=lambda: True)  # inside retry_after: not even asked
        assert len(discord.requests()) == 2

    run_sharded(site, discord, steps)
    assert site.replicas() == 3 and site.shard_settings()["SHARD_COUNT"] == "6"


def test_a_configmap_outside_the_role_is_a_clear_403_and_nothing_scales(site: Site, discord: FakeGatewayBot) -> None:
    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()

    with pytest.raises(WorkloadError, match=r"cannot get ConfigMap 'other'.*resourceNames \[other\]") as info:
        run_sharded(site, discord, steps, configmap="other")
    assert info.value.status == 403
    assert site.replicas() == 0 and site.agent_writes() == []


def test_a_missing_configmap_says_where_it_ships(site: Site, discord: FakeGatewayBot) -> None:
    site.plane.core().delete_namespaced_config_map("hfo-bot-shards", site.namespace)

    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()

    with pytest.raises(WorkloadError, match="not found: it ships with the bot"):
        run_sharded(site, discord, steps)
    wait_for(lambda: site.replicas() == 0, 5, "still zero")


def test_a_recommendation_beyond_the_bounds_runs_the_most_allowed_and_says_so_once(
    site: Site, discord: FakeGatewayBot, caplog: pytest.LogCaptureFixture
) -> None:
    discord.shards = 40  # 8 pods of 2 at most

    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        clock.now += 900
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()

    with caplog.at_level("WARNING", logger="hfo_site.shards"):
        run_sharded(site, discord, steps)
    assert site.replicas() == 8 and site.shard_settings() == {"SHARD_COUNT": "16", "SHARDS_PER_POD": "2"}
    capped = [r for r in caplog.records if "recommends more shards" in r.getMessage()]
    assert len(capped) == 1 and (capped[0].recommended, capped[0].running) == (40, 16)  # type: ignore[attr-defined]


def test_a_start_that_waited_for_a_reshard_does_not_scale_up_once_the_lease_ran_out(
    site: Site, discord: FakeGatewayBot
) -> None:
    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        backend.follow_lease(lambda: False)  # the lease ran out while the start waited for the lock
        await backend.start()

    run_sharded(site, discord, steps)
    assert site.replicas() == 0 and site.agent_writes() == []


def test_a_restarted_agent_adopts_the_count_the_running_pods_have_and_changes_it_only_by_a_reshard(
    site: Site, discord: FakeGatewayBot, kubelet: Any
) -> None:
    async def first(backend: ShardedBackend, clock: Clock) -> None:  # the agent before its crash
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()
        await running(backend)

    run_sharded(site, discord, first)
    before = site.pods()
    discord.shards = 8

    async def restarted(backend: ShardedBackend, clock: Clock) -> None:  # a new process, the bot still runs
        await backend.refresh_once(may_run=lambda: True)  # it hears 8 before it holds the lease again
        await backend.start()
        assert site.pods() == before and site.shard_settings()["SHARD_COUNT"] == "6", "no pod got another total"
        assert backend.plan is not None and backend.plan.shard_count == 6
        clock.now += 900
        await backend.refresh_once(may_run=lambda: True)
        await running(backend)

    run_sharded(site, discord, restarted)
    after = site.pods()
    assert sorted(after) == ["bot-0", "bot-1", "bot-2", "bot-3"]
    assert all(after[name] != uid for name, uid in before.items())
    assert site.shard_settings() == {"SHARD_COUNT": "8", "SHARDS_PER_POD": "2"}


def test_a_start_beyond_the_session_budget_still_starts_and_says_why_it_is_risky(
    site: Site, discord: FakeGatewayBot, caplog: pytest.LogCaptureFixture
) -> None:
    discord.remaining = 4  # 6 shards to identify, 4 session starts left today

    async def steps(backend: ShardedBackend, clock: Clock) -> None:
        await backend.refresh_once(may_run=lambda: True)
        await backend.start()

    with caplog.at_level("ERROR", logger="hfo_site.shards"):
        run_sharded(site, discord, steps)
    assert site.replicas() == 3, "a failover is never held back"
    (record,) = [r for r in caplog.records if "session start budget" in r.getMessage()]
    assert (record.shards, record.remaining) == (6, 4)  # type: ignore[attr-defined]
