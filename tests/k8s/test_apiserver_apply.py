"""Every kustomization of k8s/ and argocd/ (and the Argo CD bootstrap files) applied to a real kube-apiserver
1.20.2: first ``kubectl apply --server-side --dry-run=server``, then for real. The custom resources go
through CustomResourceDefinitions made from k8s/schemas. What 1.20 cannot take (fields newer than 1.20) is
listed in testsupport.kube_apiserver.NEWER_THAN_SERVER with the reason; it is taken out here and stays
covered by the offline validation (test_kubernetes_validate.py, test_schemas.py)."""

from __future__ import annotations

import re

import pytest
import yaml
from testsupport.k8s import KUSTOMIZATIONS, SCHEMAS, Doc, bootstrap_docs, render
from testsupport.kube_apiserver import (
    CRD_PLURALS,
    NEWER_THAN_SERVER,
    ControlPlane,
    crds_from_schemas,
    for_server,
    in_namespace,
)
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.k8s, pytest.mark.kube, pytest.mark.network]

SOURCES = (*KUSTOMIZATIONS, "bootstrap")
# Both sites render into namespace hfo; on one API server the second site goes to its own namespace.
REAL_NAMESPACE = {"aws": "hfo-aws", "laptop-multi": "hfo-laptop-multi", "aws-multi": "hfo-aws-multi"}


def docs_of(source: str) -> tuple[Doc, ...]:
    return bootstrap_docs() if source == "bootstrap" else render(source)


@pytest.fixture(scope="module")
def cluster(kube_cluster: ControlPlane) -> ControlPlane:
    kube_cluster.ensure_crds()
    return kube_cluster


def namespaces_for(cluster: ControlPlane, docs: list[Doc]) -> None:
    """Create (for real) the namespaces the objects live in: a dry run does not create a Namespace, and a
    dry-run object in a namespace that does not exist is refused."""
    namespaces = [d for d in docs if d.get("kind") == "Namespace"]
    if namespaces:
        cluster.apply(namespaces)
    wanted = {d["metadata"]["namespace"] for d in docs if d.get("metadata", {}).get("namespace")}
    existing = {n.metadata.name for n in cluster.core().list_namespace().items}
    for name in sorted(wanted - existing):
        cluster.create_namespace(name)


def applied_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_every_custom_kind_the_manifests_use_has_a_crd_made_from_its_schema() -> None:
    assert set(CRD_PLURALS) == set(SCHEMAS)
    used = {(d.get("apiVersion"), d.get("kind")) for s in SOURCES for d in docs_of(s)}
    custom = {key for key in used if key[0] and "." in key[0].split("/")[0] and not key[0].endswith("k8s.io/v1")}
    assert custom <= set(SCHEMAS), f"custom kinds without a schema: {custom - set(SCHEMAS)}"


def test_the_crds_are_accepted_and_served(cluster: ControlPlane) -> None:
    served = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    for crd in crds_from_schemas():
        assert crd["metadata"]["name"] in served


def test_a_custom_resource_with_a_misspelt_field_is_refused(cluster: ControlPlane) -> None:
    """The CRDs made from k8s/schemas catch a typo under server-side apply, as the offline schemas do."""
    sealed = next(d for d in render("laptop") if d["kind"] == "SealedSecret")
    namespaces_for(cluster, [sealed])
    typo = {**sealed, "spec": {**sealed["spec"], "encryptedDta": sealed["spec"]["encryptedData"]}}
    answer = cluster.apply([typo], dry_run=True, check=False, extra=["--validate=false"])
    assert answer.returncode != 0 and ".spec.encryptedDta: field not declared in schema" in answer.stderr
    assert cluster.apply([sealed], dry_run=True, check=False, extra=["--validate=false"]).returncode == 0


@pytest.mark.parametrize("source", SOURCES)
def test_server_side_dry_run_then_apply(cluster: ControlPlane, source: str) -> None:
    docs = for_server(docs_of(source))
    namespaces_for(cluster, docs)
    dry = cluster.apply(docs, dry_run=True)
    assert len(applied_lines(dry.stdout)) == len(docs), dry.stdout
    assert all("serverside-applied (server dry run)" in line for line in applied_lines(dry.stdout)), dry.stdout
    if source in REAL_NAMESPACE:
        namespace = REAL_NAMESPACE[source]
        ns_doc = next(d for d in docs if d.get("kind") == "Namespace")
        cluster.apply([{**ns_doc, "metadata": {**ns_doc["metadata"], "name": namespace}}])
        docs = in_namespace(docs, namespace)
    real = cluster.apply(docs)
    assert all("serverside-applied" in line for line in applied_lines(real.stdout)), real.stdout
    # Each object is there as written: read back through the API.
    listed = cluster.kubectl("get", "-f", "-", "-o", "name", stdin=yaml.safe_dump_all(docs)).stdout.split()
    assert len(listed) == len(docs)


@pytest.mark.parametrize("source", ["laptop", "aws"])
def test_the_overlay_as_rendered_is_refused_only_for_the_listed_newer_fields(
    cluster: ControlPlane, source: str
) -> None:
    """Without taking anything out, 1.20 refuses exactly the objects that carry a listed field, and for
    that field: the list is complete and every entry in it is needed."""
    docs = list(docs_of(source))
    namespaces_for(cluster, docs)
    # --validate=false: the server's own verdict, not kubectl's check against the server's OpenAPI document.
    answer = cluster.apply(docs, dry_run=True, check=False, extra=["--validate=false"])
    accepted = set()
    for line in applied_lines(answer.stdout):  # e.g. "statefulset.apps/bot serverside-applied (server dry run)"
        resource, _, name = line.split()[0].partition("/")
        accepted.add((resource.split(".")[0], name))
    refused = {
        (d["kind"], d["metadata"]["name"]) for d in docs if (d["kind"].lower(), d["metadata"]["name"]) not in accepted
    }
    carriers = carriers_of(docs)
    assert refused == set(carriers), f"refused: {refused}, expected: {carriers}\n{answer.stderr}"
    reasons = [line for line in answer.stderr.splitlines() if line.startswith("Error from server")]
    assert len(reasons) == len(carriers)
    for path in carriers.values():
        assert any(f"{path}: field not declared in schema" in reason for reason in reasons), answer.stderr


def carriers_of(docs: list[Doc] | tuple[Doc, ...]) -> dict[tuple[str, str], str]:
    """(kind, name) -> ".path" of each object that carries a field listed in NEWER_THAN_SERVER."""
    found = {}
    for doc in docs:
        for newer in NEWER_THAN_SERVER:
            node = doc if doc.get("kind") == newer.kind else None
            for key in newer.path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None:
                found[(doc["kind"], doc["metadata"]["name"])] = "." + ".".join(newer.path)
    return found


def test_every_listed_newer_field_is_used_and_documented() -> None:
    used = {path for s in SOURCES for path in carriers_of(docs_of(s)).values()}
    text = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    for newer in NEWER_THAN_SERVER:
        assert "." + ".".join(newer.path) in used, f"{newer} is in no manifest any more: drop it from the list"
        assert newer.why and re.fullmatch(r"1\.\d+", newer.since)
        assert f"`{'.'.join(newer.path)}`" in text, (
            f"docs/kubernetes.md must list {newer.path} (what 1.20 cannot check)"
        )
