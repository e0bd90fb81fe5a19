"""Several bot instances on a real kube-apiserver 1.20.2 (k8s/overlays/laptop-multi applied server-side in its
own namespace): the agent's own token may get and patch the three instance StatefulSets and their scale
subresource and nothing else, and the agent's Kubernetes backend, with that token and the workload list as
rendered, starts and stops all three together (Pods made by the real StatefulSet controller)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from pathlib import Path

import pytest
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.config import parse_workloads
from hfo_site.k8s import WorkloadApi, make_api_client
from testsupport.k8s import container, env_value, find, render
from testsupport.kube_apiserver import ControlPlane, apply_site, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.kube, pytest.mark.network]

NS = "hfo-instances"
INSTANCES = ("bot-a", "bot-b", "bot-c")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
APPS_RESOURCES = ("statefulsets", "statefulsets/scale", "statefulsets/status", "deployments", "deployments/scale")
NAMES = (*INSTANCES, "bot", "bot-d", "other", "")
CORE = (
    ("get", "configmaps", "bot-a"),
    ("patch", "configmaps", "bot-a"),
    ("get", "configmaps", "hfo-bot-shards"),
    ("patch", "configmaps", "hfo-bot-shards"),
    ("get", "secrets", "bot-a-token"),
    ("delete", "pods", "bot-a-0"),
    ("create", "pods/exec", "bot-a-0"),
)


@pytest.fixture(scope="module")
def site(kube_cluster: ControlPlane) -> ControlPlane:
    apply_site(kube_cluster, NS, overlay="laptop-multi")
    return kube_cluster


def workload_list() -> str:
    docs = render("laptop-multi")
    return env_value(container(find(docs, "Deployment", "hfo-site"), "agent"), "HFO_K8S_WORKLOADS", docs)


def token_of(site: ControlPlane, identity: str) -> str:
    if identity == "hfo-site-health":  # delivered as a token Secret, filled in by the controller-manager
        core = site.core()
        wait_for(lambda: bool(core.read_namespaced_secret("hfo-site-health-token", NS).data), 20, "health token")
        return base64.b64decode(core.read_namespaced_secret("hfo-site-health-token", NS).data["token"]).decode()
    return site.service_account_token(NS, identity)


def can_i(authz, verb: str, resource: str, name: str) -> bool:  # type: ignore[no-untyped-def]
    from kubernetes import client

    base, _, sub = resource.partition("/")
    group = "apps" if base in ("statefulsets", "deployments") else ""
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=NS, verb=verb, group=group, resource=base, subresource=sub or None, name=name or None
            )
        )
    )
    return bool(authz.create_self_subject_access_review(review).status.allowed)


AGENT_NEEDS = {
    (verb, resource, name)
    for verb, resource, name in itertools.product(("get", "patch"), ("statefulsets", "statefulsets/scale"), INSTANCES)
}
HEALTH_NEEDS = {("get", "statefulsets", name) for name in INSTANCES}


@pytest.mark.parametrize(
    ("identity", "needs"), [("hfo-site", AGENT_NEEDS), ("hfo-site-health", HEALTH_NEEDS), ("hfo-bot", set())]
)
def test_each_identity_may_touch_every_instance_and_nothing_else(site: ControlPlane, identity: str, needs: set) -> None:  # type: ignore[type-arg]
    from kubernetes import client

    questions = [*itertools.product(VERBS, APPS_RESOURCES, NAMES), *CORE]
    with site.api_client(token_of(site, identity)) as api:
        authz = client.AuthorizationV1Api(api)
        allowed = {q for q in questions if can_i(authz, *q)}
    assert allowed == needs, f"{identity} may also: {sorted(allowed - needs)}; may not: {sorted(needs - allowed)}"
    assert len(questions) > 250  # the table asked what it says it asks


def test_the_agent_backend_starts_and_stops_all_three_with_its_own_token(
    site: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = parse_workloads(workload_list())
    assert [r.name for r in refs] == list(INSTANCES)
    kubeconfig = site.service_account_kubeconfig(NS, "hfo-site", tmp_path / "agent.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    def pods() -> list[str]:
        listed = site.core().list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=hfo-bot")
        return sorted(p.metadata.name for p in listed.items)

    async def main() -> None:
        backend = KubernetesBackend(
            WorkloadApi(make_api_client(request_timeout_s=5), NS), refs, grace_s=1.0, poll_s=0.05
        )
        assert (await backend.observe()).state == "stopped"  # Git ships replicas: 0 for every instance
        await backend.start()
        deadline = time.monotonic() + 30
        while (observed := await backend.observe()).state != "running":
            assert time.monotonic() < deadline, observed
            await asyncio.sleep(0.1)
        for name in INSTANCES:
            assert f"statefulset/{name} 1/1 ready" in observed.detail
        assert pods() == ["bot-a-0", "bot-b-0", "bot-c-0"]  # created by the real StatefulSet controller
        await backend.stop()
        assert (await backend.observe()).state == "stopped"
        assert pods() == []
        await backend.close()

    with site.kubelet(NS, ready_after_s=0.2, terminate_after_s=0.3):
        asyncio.run(main())
    for name in INSTANCES:
        assert site.apps().read_namespaced_stateful_set(name, NS).spec.replicas == 0
