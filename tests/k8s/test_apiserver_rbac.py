"""The site's RBAC, as applied to a real kube-apiserver 1.20.2, is minimal: each identity can do exactly
what its container needs and nothing else.

Two proofs: a table of ``can-i`` questions asked with each identity's own token (SelfSubjectAccessReview,
the request ``kubectl auth can-i`` makes), and the full rule list (``kubectl auth can-i --list``) compared
with the ``default`` ServiceAccount's of the same namespace, so nothing beyond the table can hide."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest
from testsupport.kube_apiserver import ControlPlane, apply_site, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.kube, pytest.mark.network]

NS = "hfo-rbac"
OTHER_NS = "hfo-rbac-other"

# What the agent calls (hfo_site.k8s.WorkloadApi): get the StatefulSet (status, annotations), patch it
# (the hfo.dev/desired-replicas annotation), get and patch its scale subresource; and (ConfigMapApi, shard-aware
# scaling) get and patch the bot's shard settings in ConfigMap hfo-bot-shards. That is all.
AGENT_NEEDS = {
    ("get", "statefulsets", "bot"),
    ("patch", "statefulsets", "bot"),
    ("get", "statefulsets/scale", "bot"),
    ("patch", "statefulsets/scale", "bot"),
    ("get", "configmaps", "hfo-bot-shards"),
    ("patch", "configmaps", "hfo-bot-shards"),
}
# What the health service calls: get the StatefulSet (readyReplicas).
HEALTH_NEEDS = {("get", "statefulsets", "bot")}

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
APPS_RESOURCES = ("statefulsets", "statefulsets/scale", "statefulsets/status", "deployments", "deployments/scale")
NAMES = ("bot", "other", "")
CORE = (
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("create", "pods/exec", "bot-0"),
    ("delete", "pods", "bot-0"),
    ("get", "secrets", "hfo-site-secrets"),
    ("get", "secrets", "hfo-site-health-token"),
    ("list", "secrets", ""),
    ("get", "configmaps", "hfo-site"),
    ("patch", "configmaps", "hfo-site"),
    ("get", "configmaps", "hfo-bot-shards"),
    ("patch", "configmaps", "hfo-bot-shards"),
    ("update", "configmaps", "hfo-bot-shards"),
    ("delete", "configmaps", "hfo-bot-shards"),
    ("create", "configmaps", ""),
    ("list", "configmaps", ""),
    ("watch", "configmaps", ""),
    ("create", "serviceaccounts/token", "hfo-site"),
    ("get", "events", ""),
    ("create", "events", ""),
    ("list", "namespaces", ""),
    ("get", "nodes", ""),
)
RBAC = (("get", "roles", "hfo-site-agent"), ("patch", "roles", "hfo-site-agent"), ("bind", "roles", ""),
        ("escalate", "roles", ""), ("create", "rolebindings", ""))  # fmt: skip


def questions() -> list[tuple[str, str, str, str]]:
    """(namespace, verb, resource, name): every apps verb on the bot's and another workload, plus core
    and RBAC rights an attacker would want, in the site's namespace and in another one."""
    asked = []
    for namespace in (NS, OTHER_NS):
        for verb, resource, name in itertools.product(VERBS, APPS_RESOURCES, NAMES):
            asked.append((namespace, verb, resource, name))
        for verb, resource, name in (*CORE, *RBAC):
            asked.append((namespace, verb, resource, name))
    return asked


def group_of(resource: str) -> str:
    base = resource.split("/")[0]
    if base in ("statefulsets", "deployments"):
        return "apps"
    if base in ("roles", "rolebindings"):
        return "rbac.authorization.k8s.io"
    return ""


@pytest.fixture(scope="module")
def site(kube_cluster: ControlPlane) -> ControlPlane:
    apply_site(kube_cluster, NS)
    if OTHER_NS not in {n.metadata.name for n in kube_cluster.core().list_namespace().items}:
        apply_site(kube_cluster, OTHER_NS)
    return kube_cluster


def token_of(site: ControlPlane, identity: str) -> str:
    if identity == "hfo-site-health":  # delivered as a token Secret, filled in by the controller-manager
        core = site.core()
        wait_for(lambda: bool(core.read_namespaced_secret("hfo-site-health-token", NS).data), 20, "health token")
        return base64.b64decode(core.read_namespaced_secret("hfo-site-health-token", NS).data["token"]).decode()
    return site.service_account_token(NS, identity)


def can_i(authz, namespace: str, verb: str, resource: str, name: str) -> bool:
    from kubernetes import client

    base, _, sub = resource.partition("/")
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=group_of(resource), resource=base,
                subresource=sub or None, name=name or None,
            )
        )
    )  # fmt: skip
    return bool(authz.create_self_subject_access_review(review).status.allowed)


@pytest.mark.parametrize(("identity", "needs"), [("hfo-site", AGENT_NEEDS), ("hfo-site-health", HEALTH_NEEDS),
                                                 ("hfo-bot", set())])  # fmt: skip
def test_each_identity_can_do_exactly_what_it_needs(site: ControlPlane, identity: str, needs: set) -> None:
    from kubernetes import client

    with site.api_client(token_of(site, identity)) as api:
        authz = client.AuthorizationV1Api(api)
        table = {q: can_i(authz, *q) for q in questions()}
    allowed = {(verb, resource, name) for (ns, verb, resource, name), ok in table.items() if ok}
    assert allowed == needs, f"{identity} may also: {sorted(allowed - needs)}; may not: {sorted(needs - allowed)}"
    assert not any(ok for (ns, *_), ok in table.items() if ns == OTHER_NS), "rights outside its namespace"
    assert len(table) > 250  # the table asked what it says it asks


def rules(site: ControlPlane, token: str, tmp_path: Path, name: str) -> set[str]:
    kubeconfig = site.kubeconfig(token, NS, tmp_path / f"{name}.kubeconfig")
    listed = site.kubectl("auth", "can-i", "--list", "-n", NS, "--no-headers", kubeconfig=kubeconfig).stdout
    return {" ".join(line.split()) for line in listed.splitlines() if line.strip()}


def test_kubectl_auth_can_i_list_shows_nothing_beyond_the_role(site: ControlPlane, tmp_path: Path) -> None:
    baseline = rules(site, site.service_account_token(NS, "default"), tmp_path, "default")
    agent = rules(site, token_of(site, "hfo-site"), tmp_path, "agent") - baseline
    health = rules(site, token_of(site, "hfo-site-health"), tmp_path, "health") - baseline
    bot = rules(site, token_of(site, "hfo-bot"), tmp_path, "bot") - baseline
    assert agent == {
        "statefulsets.apps/scale [] [bot] [get patch]",
        "statefulsets.apps [] [bot] [get patch]",
        "configmaps [] [hfo-bot-shards] [get patch]",
    }
    assert health == {"statefulsets.apps [] [bot] [get]"}
    assert bot == set()
