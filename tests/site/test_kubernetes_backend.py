"""The kubernetes backend through the official client against the fake scale subresource over HTTP
(hfo_site.backends.kubernetes, hfo_site.k8s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hfo_site.backends.base import WorkloadError
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.config import DESIRED_REPLICAS_ANNOTATION, ConfigError, WorkloadRef
from hfo_site.k8s import WorkloadApi, make_api_client
from testsupport.fake_k8s import FakeKubernetes, fake_kubernetes

pytestmark = pytest.mark.network

BOT = WorkloadRef("deployment", "bot")
SHARDS = WorkloadRef("statefulset", "bot-shards")


@pytest.fixture
def k8s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    with fake_kubernetes(ready_after_s=0.1, terminate_after_s=0.3) as fake:
        path = tmp_path / "kubeconfig"
        path.write_text(fake.kubeconfig())
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield fake


def _backend(k8s: FakeKubernetes, *refs: WorkloadRef, grace: float = 2.0) -> KubernetesBackend:
    api = WorkloadApi(make_api_client(request_timeout_s=5), k8s.namespace)
    return KubernetesBackend(api, refs or (BOT,), grace_s=grace, poll_s=0.05)


def test_stop_remembers_the_size_scales_to_zero_and_waits_for_the_pods(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 3)

    async def main() -> None:
        backend = _backend(k8s)
        assert (await backend.observe()).state == "running"
        started = time.monotonic()
        await backend.stop()
        assert time.monotonic() - started >= 0.25  # the terminating pods were waited for
        assert (await backend.observe()).state == "stopped"

    asyncio.run(main())
    obj = k8s.obj("deployments", "bot")
    assert obj.replicas == 0 and obj.terminating == 0
    assert obj.annotations[DESIRED_REPLICAS_ANNOTATION] == "3"
    assert k8s.calls("PATCH", "/deployments/bot/scale") == 1  # scaled through the subresource
    assert k8s.calls("PATCH") == 2  # plus the annotation on the Deployment


def test_start_restores_the_remembered_size(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "3"})

    async def main() -> None:
        backend = _backend(k8s)
        assert (await backend.observe()).state == "stopped"
        await backend.start()
        assert (await backend.observe()).state == "starting"  # pods not ready yet
        await asyncio.sleep(0.15)
        observed = await backend.observe()
        assert observed.state == "running", observed
        assert "3/3 ready" in observed.detail

    asyncio.run(main())
    assert k8s.obj("deployments", "bot").replicas == 3


def test_stop_then_start_round_trips_several_workloads(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 2)
    k8s.add("statefulsets", "bot-shards", 4)

    async def main() -> None:
        backend = _backend(k8s, BOT, SHARDS, grace=0.5)  # the StatefulSet's pods: grace waited out
        await backend.stop()
        assert (await backend.observe()).state == "stopped"
        assert (k8s.obj("deployments", "bot").replicas, k8s.obj("statefulsets", "bot-shards").replicas) == (0, 0)
        await backend.start()
        await asyncio.sleep(0.15)
        assert (await backend.observe()).state == "running"

    asyncio.run(main())
    assert (k8s.obj("deployments", "bot").replicas, k8s.obj("statefulsets", "bot-shards").replicas) == (2, 4)


def test_statefulset_without_terminating_count_waits_for_its_pods(k8s: FakeKubernetes) -> None:
    k8s.add("statefulsets", "bot-shards", 2)

    async def main() -> None:
        backend = _backend(k8s, SHARDS, grace=1.0)
        stopping = asyncio.create_task(backend.stop())
        await asyncio.sleep(0.1)
        assert (await backend.observe()).state == "stopping"  # pods still counted while terminating
        await stopping
        assert (await backend.observe()).state in ("stopping", "stopped")

    asyncio.run(main())


def test_start_without_a_recorded_size_scales_to_one(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0)
    asyncio.run(_backend(k8s).start())
    assert k8s.obj("deployments", "bot").replicas == 1


def test_a_bad_annotation_is_refused_without_any_write(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "lots"})
    with pytest.raises(WorkloadError, match=r"hfo.dev/desired-replicas='lots' must be an integer between 1 and"):
        asyncio.run(_backend(k8s).start())
    assert k8s.calls("PATCH") == 0


def test_conflicts_are_reread_and_retried(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "2"})
    k8s.inject_conflicts(2)
    asyncio.run(_backend(k8s).start())
    assert k8s.obj("deployments", "bot").replicas == 2
    assert k8s.calls("PATCH", "/scale") == 3  # two 409s, then success
    assert k8s.calls("GET", "/scale") == 3  # each retry re-read the resourceVersion


def test_endless_conflicts_give_up_with_a_bounded_number_of_tries(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "2"})
    k8s.inject_conflicts(100)
    with pytest.raises(WorkloadError, match="conflicted 5 times"):
        asyncio.run(_backend(k8s).start())
    assert k8s.calls("PATCH") == 5
    assert k8s.obj("deployments", "bot").replicas == 0


def test_missing_workload_is_a_clear_404(k8s: FakeKubernetes) -> None:
    k8s.rules.update({("get", "deployments", "bot"), ("get", "deployments/scale", "bot")})  # allowed, absent

    async def main() -> None:
        backend = _backend(k8s)
        observed = await backend.observe()
        assert (observed.state, observed.ready) == ("unknown", False)
        assert "not found" in observed.detail and "HFO_K8S_WORKLOADS" in observed.detail
        with pytest.raises(WorkloadError, match="deployment/bot not found in namespace 'hfo'") as info:
            await backend.start()
        assert info.value.status == 404

    asyncio.run(main())


def test_missing_rbac_is_a_clear_403_naming_the_rule(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 2)
    k8s.revoke("patch", "deployments/scale", "bot")

    async def main() -> None:
        backend = _backend(k8s)
        assert (await backend.observe()).ready  # get still allowed
        with pytest.raises(WorkloadError, match=r"cannot patch deployments/scale 'bot'.*resourceNames \[bot\]") as info:
            await backend.stop()
        assert info.value.status == 403

    asyncio.run(main())
    assert k8s.obj("deployments", "bot").replicas == 2


def test_objects_outside_the_role_are_forbidden(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 1)
    k8s.add("deployments", "other", 1, grant=False)
    observed = asyncio.run(_backend(k8s, BOT, WorkloadRef("deployment", "other")).observe())
    assert (observed.state, observed.ready) == ("unknown", False)
    assert "forbidden" in observed.detail


def test_a_wrong_token_is_unauthorized(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 1)
    k8s.token = "another-token"
    observed = asyncio.run(_backend(k8s).observe())
    assert "unauthorized" in observed.detail


def test_stop_when_already_stopped_writes_nothing(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "2"})
    asyncio.run(_backend(k8s).stop())
    assert k8s.calls("PATCH") == 0


def test_a_scale_up_behind_our_back_is_visible(k8s: FakeKubernetes) -> None:
    k8s.add("deployments", "bot", 0, {DESIRED_REPLICAS_ANNOTATION: "2"})

    async def main() -> None:
        backend = _backend(k8s)
        await backend.stop()
        k8s.set_replicas_behind_our_back("deployments", "bot", 2)  # e.g. a GitOps sync
        assert (await backend.observe()).state == "stopping"  # we want it stopped: the agent will act

    asyncio.run(main())


def test_no_kubeconfig_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="HFO_BACKEND: kubernetes: neither an in-cluster service account"):
        make_api_client()
