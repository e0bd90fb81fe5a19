"""Every kustomization Argo CD renders builds with the real ``kubectl kustomize`` and yields sane objects."""

from __future__ import annotations

from collections import Counter

import pytest
from testsupport.k8s import KUSTOMIZATIONS, bootstrap_docs, bootstrap_files, ident, render

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_builds_into_named_unique_objects(name: str) -> None:
    docs = render(name)
    assert docs, f"{KUSTOMIZATIONS[name]} renders nothing"
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), f"unnamed {doc.get('kind')} in {name}"
    dupes = [i for i, n in Counter(ident(d) for d in docs).items() if n > 1]
    assert not dupes, f"{name} renders duplicates: {dupes}"


@pytest.mark.parametrize("name", ["laptop", "aws"])
def test_overlay_puts_every_namespaced_object_in_hfo(name: str) -> None:
    for doc in render(name):
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "hfo"
        else:
            assert doc["metadata"].get("namespace") == "hfo", ident(doc)


def test_bootstrap_files_are_plain_manifests_k3s_can_apply() -> None:
    files = bootstrap_files()
    assert {f.name for f in files} == {"argo-cd.yaml", "project-bootstrap.yaml", "root-aws.yaml"}
    kinds = Counter(d["kind"] for d in bootstrap_docs())
    assert kinds == Counter({"HelmChart": 1, "AppProject": 1, "Application": 1})


def test_bootstrap_stays_small_and_secret_free() -> None:
    """Terraform's cloud-init carries these files in EC2 user data (16 KB limit, shared)."""
    total = sum(len(f.read_bytes()) for f in bootstrap_files())
    assert total < 10 * 1024, f"argocd/bootstrap is {total} bytes"
    for doc in bootstrap_docs():
        assert doc["kind"] != "Secret"
        assert "stringData" not in doc and "data" not in doc
