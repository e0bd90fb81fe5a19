"""The kubernetes backend (hfo_site.backends.kubernetes, hfo_site.k8s) against a real kube-apiserver 1.20.2.

Each test gets its own namespace holding the laptop site exactly as rendered from k8s/ (the agent's
ServiceAccount, Role and RoleBinding, the bot's StatefulSet...), applied server-side, and talks to the API
with the agent's own identity: a ServiceAccount token of ``hfo-site``, so RBAC is the Role as written. The
real controller-manager creates and deletes the bot's Pods; a kubelet stand-in reports them Ready and
finishes their termination. Requests are counted from the API server's audit log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hfo_site.backends.base import WorkloadError
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.config import DESIRED_REPLICAS_ANNOTATION, ConfigError, WorkloadRef
from hfo_site.k8s import WorkloadApi, make_api_client
from testsupport.kube_apiserver import ControlPlane, apply_site, wait_for

pytestmark = [pytest.mark.network, pytest.mark.kube]

BOT = WorkloadRef("statefulset", "bot")
_NUMBERS = itertools.count(1)


@dataclass
class Site:
    plane: ControlPlane
    namespace: str
    kubeconfig: Path

    @property
    def agent(self) -> str:
        return f"system:serviceaccount:{self.namespace}:hfo-site"

    def statefulset(self, name: str = "bot"):
        return self.plane.apps().read_namespaced_stateful_set(name, self.namespace)

    def replicas(self, name: str = "bot") -> int:
        return int(self.statefulset(name).spec.replicas)

    def annotate(self, value: str | None, name: str = "bot") -> None:
        """Set (or, with None, remove) the desired size as someone else (Git, a human) would."""
        body = {"metadata": {"annotations": {DESIRED_REPLICAS_ANNOTATION: value}}}
        self.plane.apps().patch_namespaced_stateful_set(
            name, self.namespace, body, _content_type="application/merge-patch+json"
        )

    def scale(self, replicas: int, name: str = "bot") -> None:
        """``kubectl scale`` by an administrator."""
        self.plane.kubectl("-n", self.namespace, "scale", f"statefulset/{name}", f"--replicas={replicas}")

    def pods(self) -> list[str]:
        pods = self.plane.core().list_namespaced_pod(self.namespace, label_selector="app.kubernetes.io/name=hfo-bot")
        return sorted(p.metadata.name for p in pods.items)

    def agent_requests(self, verb: str | None = None) -> list[tuple[str, str, str, int]]:
        return [r for r in self.plane.requests_by(self.namespace, self.agent) if verb is None or r[0] == verb]

    def backend(self, *refs: WorkloadRef, grace: float = 2.0, api: WorkloadApi | None = None) -> KubernetesBackend:
        api = api or WorkloadApi(make_api_client(request_timeout_s=5), self.namespace)
        return KubernetesBackend(api, refs or (BOT,), grace_s=grace, poll_s=0.05)


@pytest.fixture
def site(kube_cluster: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    namespace = f"site-{next(_NUMBERS)}"
    apply_site(kube_cluster, namespace)
    kubeconfig = kube_cluster.service_account_kubeconfig(namespace, "hfo-site", tmp_path / "agent.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return Site(kube_cluster, namespace, kubeconfig)


@pytest.fixture
def kubelet(site: Site) -> Iterator:
    with site.plane.kubelet(site.namespace, ready_after_s=0.3, terminate_after_s=0.5) as stand_in:
        yield stand_in


def observe(backend: KubernetesBackend):
    return asyncio.run(backend.observe())


# -- scaling -----------------------------------------------------------------------------------
def test_start_scales_to_the_desired_size_and_reports_running_once_the_pods_are_ready(site: Site, kubelet) -> None:
    site.annotate("2")

    async def main() -> None:
        backend = site.backend()
        assert (await backend.observe()).state == "stopped"  # Git ships replicas: 0
        await backend.start()
        assert (await backend.observe()).state == "starting"  # the Pods exist, none is ready yet
        deadline = time.monotonic() + 20
        while (observed := await backend.observe()).state != "running":
            assert time.monotonic() < deadline, observed
            await asyncio.sleep(0.1)
        assert "statefulset/bot 2/2 ready" in observed.detail

    asyncio.run(main())
    assert site.replicas() == 2
    assert site.pods() == ["bot-0", "bot-1"]  # created by the real StatefulSet controller
    # Scaled through the subresource, with the agent's own identity, nothing else written.
    assert [r for r in site.agent_requests("patch")] == [("patch", "statefulsets/scale", "bot", 200)]


def test_stop_remembers_the_size_scales_to_zero_and_waits_for_the_pods_to_be_gone(site: Site, kubelet) -> None:
    site.annotate(None)  # no desired size recorded: the agent records the one it scales down from
    site.scale(3)
    wait_for(lambda: observe(site.backend()).state == "running", 30, "three ready pods")

    async def main() -> None:
        backend = site.backend(grace=1.0)
        await backend.stop()
        assert (await backend.observe()).state == "stopped"

    asyncio.run(main())
    assert site.replicas() == 0
    assert site.statefulset().metadata.annotations[DESIRED_REPLICAS_ANNOTATION] == "3"
    assert site.pods() == []  # stop returned only once the Pods were gone
    assert [r[:2] for r in site.agent_requests("patch")] == [("patch", "statefulsets"), ("patch", "statefulsets/scale")]


def test_stop_reports_stopping_while_pods_are_still_terminating(site: Site, kube_cluster: ControlPlane) -> None:
    site.annotate("2")
    with kube_cluster.kubelet(site.namespace, ready_after_s=0.1, terminate_after_s=2.0):

        async def main() -> None:
            backend = site.backend(grace=3.0)
            await backend.start()
            deadline = time.monotonic() + 20
            while (await backend.observe()).state != "running":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            stopping = asyncio.create_task(backend.stop())
            await asyncio.sleep(0.8)
            observed = await backend.observe()
            assert observed.state == "stopping" and "pods still present" in observed.detail, observed
            assert site.pods(), "the Pods are terminating (graceful deletion), not gone"
            await stopping
            assert (await backend.observe()).state == "stopped"

        asyncio.run(main())
    assert site.pods() == []


def test_start_without_a_recorded_size_scales_to_one(site: Site) -> None:
    site.annotate(None)
    asyncio.run(site.backend().start())
    assert site.replicas() == 1


def test_a_bad_annotation_is_refused_without_any_write(site: Site) -> None:
    site.annotate("lots")
    with pytest.raises(WorkloadError, match=r"hfo.dev/desired-replicas='lots' must be an integer between 1 and"):
        asyncio.run(site.backend().start())
    assert site.agent_requests("patch") == []
    assert site.replicas() == 0


def test_stop_when_already_stopped_writes_nothing(site: Site) -> None:
    asyncio.run(site.backend().stop())
    assert site.agent_requests("patch") == []
    assert site.agent_requests(), "it did read"


def test_a_scale_up_behind_our_back_is_visible(site: Site) -> None:
    async def main() -> None:
        backend = site.backend()
        await backend.stop()
        site.scale(2)  # e.g. a GitOps sync without ignoreDifferences, or a human
        assert (await backend.observe()).state == "stopping"  # we want it stopped: the agent will act
        await backend.stop()

    asyncio.run(main())
    assert site.replicas() == 0


def test_the_agent_sees_a_pod_that_stops_being_ready(site: Site, kubelet) -> None:
    site.annotate("2")
    backend = site.backend()
    asyncio.run(backend.start())
    wait_for(lambda: observe(backend).state == "running", 30, "running")
    kubelet.hold_ready = True
    site.plane.mark_pod_ready(site.namespace, "bot-1", ready=False)  # its readiness probe fails
    wait_for(lambda: "1/2 ready" in observe(backend).detail, 15, "1/2 ready")
    assert observe(backend).state == "starting"


# -- resourceVersion conflicts ------------------------------------------------------------------
class OtherWriterBetweenReadAndWrite(WorkloadApi):
    """After the agent reads the scale, someone else (an administrator) changes the StatefulSet for real,
    so the agent's write carries a stale resourceVersion and the API server answers 409."""

    def __init__(self, site: Site, times: int) -> None:
        super().__init__(make_api_client(request_timeout_s=5), site.namespace)
        self.site = site
        self.left = times

    def read_scale(self, ref: WorkloadRef) -> tuple[int, str]:
        answer = super().read_scale(ref)
        if self.left > 0:
            self.left -= 1
            body = {"metadata": {"labels": {"touched-by": f"other-{self.left}"}}}
            self.site.plane.apps().patch_namespaced_stateful_set(
                ref.name, self.site.namespace, body, _content_type="application/merge-patch+json"
            )
        return answer


def test_conflicts_are_reread_and_retried(site: Site) -> None:
    site.annotate("2")
    asyncio.run(site.backend(api=OtherWriterBetweenReadAndWrite(site, times=2)).start())
    assert site.replicas() == 2
    scale_patches = [r for r in site.agent_requests("patch") if r[1] == "statefulsets/scale"]
    assert [r[3] for r in scale_patches] == [409, 409, 200]  # two real conflicts, then success
    assert len([r for r in site.agent_requests("get") if r[1] == "statefulsets/scale"]) == 3  # re-read each time


def test_endless_conflicts_give_up_with_a_bounded_number_of_tries(site: Site) -> None:
    site.annotate("2")
    with pytest.raises(WorkloadError, match="conflicted 5 times") as info:
        asyncio.run(site.backend(api=OtherWriterBetweenReadAndWrite(site, times=100)).start())
    assert info.value.status == 409
    assert [r[3] for r in site.agent_requests("patch")] == [409] * 5
    assert site.replicas() == 0


# -- errors that say what to fix ----------------------------------------------------------------
def test_missing_workload_is_a_clear_404(site: Site) -> None:
    site.plane.apps().delete_namespaced_stateful_set("bot", site.namespace)

    async def main() -> None:
        backend = site.backend()
        observed = await backend.observe()
        assert (observed.state, observed.ready) == ("unknown", False)
        assert "not found" in observed.detail and "HFO_K8S_WORKLOADS" in observed.detail
        with pytest.raises(WorkloadError, match=f"statefulset/bot not found in namespace '{site.namespace}'") as info:
            await backend.start()
        assert info.value.status == 404

    asyncio.run(main())


def test_a_workload_outside_the_role_is_forbidden(site: Site) -> None:
    other = json.loads(json.dumps(site.plane.apps().api_client.sanitize_for_serialization(site.statefulset())))
    other["metadata"] = {"name": "other", "namespace": site.namespace}
    other.pop("status", None)
    site.plane.apps().create_namespaced_stateful_set(site.namespace, other)

    async def main() -> None:
        backend = site.backend(BOT, WorkloadRef("statefulset", "other"))
        observed = await backend.observe()
        assert (observed.state, observed.ready) == ("unknown", False)
        assert "forbidden" in observed.detail and "'other'" in observed.detail
        with pytest.raises(WorkloadError, match="forbidden") as info:
            await backend.start()
        assert info.value.status == 403

    asyncio.run(main())
    deployment = site.backend(WorkloadRef("deployment", "bot"))  # the Role names StatefulSets only
    assert "forbidden" in observe(deployment).detail


def test_a_role_without_patch_on_scale_is_a_clear_403_naming_the_rule(site: Site) -> None:
    role = site.plane.kubectl("-n", site.namespace, "get", "role", "hfo-site-agent", "-o", "json").stdout
    doc = json.loads(role)
    for rule in doc["rules"]:
        if rule["resources"] == ["statefulsets/scale"]:
            rule["verbs"] = ["get"]
    site.plane.kubectl("replace", "-f", "-", stdin=json.dumps(doc))
    site.scale(2)

    async def main() -> None:
        backend = site.backend()
        assert (await backend.observe()).ready  # get is still allowed
        with pytest.raises(
            WorkloadError, match=r"cannot patch statefulsets/scale 'bot'.*resourceNames \[bot\]"
        ) as info:
            await backend.stop()
        assert info.value.status == 403

    asyncio.run(main())
    assert site.replicas() == 2


def test_a_wrong_token_is_unauthorized(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = site.plane.kubeconfig("not-a-token", site.namespace, tmp_path / "wrong.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    observed = observe(site.backend())
    assert "unauthorized" in observed.detail and not observed.ready


def test_a_token_of_another_namespace_is_forbidden(
    site: Site, kube_cluster: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    neighbour = f"site-{next(_NUMBERS)}"
    apply_site(kube_cluster, neighbour)
    token = kube_cluster.service_account_token(neighbour, "hfo-site")
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig(token, site.namespace, tmp_path / "n.kubeconfig")))
    assert "forbidden" in observe(site.backend()).detail  # the Role is namespaced


def test_no_kubeconfig_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="HFO_BACKEND: kubernetes: neither an in-cluster service account"):
        make_api_client()
