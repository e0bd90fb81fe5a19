"""Rendering and walking the Kubernetes manifests of k8s/ and argocd/ for the offline validation tests.

Everything is rendered by the real ``kubectl kustomize`` (the same Kustomize Argo CD runs), once per test
session, and parsed with PyYAML. Nothing here talks to a cluster.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testsupport.tools import REPO_ROOT, which

Doc = dict[str, Any]

# Every directory Argo CD renders with Kustomize, by the name the tests use.
KUSTOMIZATIONS: dict[str, str] = {
    "laptop": "k8s/overlays/laptop",
    "aws": "k8s/overlays/aws",
    "platform-laptop": "k8s/platform/laptop",
    "monitoring-laptop": "k8s/monitoring/laptop",
    "argocd-laptop": "argocd/clusters/laptop/apps",
    "argocd-aws": "argocd/clusters/aws/apps",
    "argocd-projects": "argocd/projects",
    # Several gated bot instances (k8s/instances, docs/kubernetes.md#several-bot-instances).
    "laptop-multi": "k8s/overlays/laptop-multi",
    "aws-multi": "k8s/overlays/aws-multi",
}
OVERLAYS = ("laptop", "aws")
MULTI_OVERLAYS = ("laptop-multi", "aws-multi")
SITE_OVERLAYS = (*OVERLAYS, *MULTI_OVERLAYS)
BOOTSTRAP_DIR = REPO_ROOT / "argocd" / "bootstrap"
SCHEMA_DIR = REPO_ROOT / "k8s" / "schemas"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def kustomize_build(path: Path) -> str:
    """``kubectl kustomize <path>``; raises with kubectl's own message when the build fails."""
    kubectl = which("kubectl")
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return proc.stdout


def load_docs(text: str) -> tuple[Doc, ...]:
    return tuple(d for d in yaml.safe_load_all(text) if d)


@functools.cache
def rendered_text(name: str) -> str:
    return kustomize_build(REPO_ROOT / KUSTOMIZATIONS[name])


def render(name: str) -> tuple[Doc, ...]:
    return load_docs(rendered_text(name))


def bootstrap_files() -> list[Path]:
    return sorted(BOOTSTRAP_DIR.glob("*.yaml"))


def bootstrap_docs() -> tuple[Doc, ...]:
    return tuple(d for f in bootstrap_files() for d in load_docs(f.read_text()))


def all_docs() -> Iterator[tuple[str, Doc]]:
    """Every object this repository can put on a cluster, labelled by where it comes from."""
    for name in KUSTOMIZATIONS:
        for doc in render(name):
            yield name, doc
    for doc in bootstrap_docs():
        yield "bootstrap", doc


def ident(doc: Doc) -> str:
    meta = doc.get("metadata", {})
    ns = meta.get("namespace", "")
    return f"{doc.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def find(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    hits = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    if len(hits) != 1:
        raise AssertionError(f"expected one {kind}/{name}, found {len(hits)}")
    return hits[0]


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(doc: Doc) -> Doc | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOAD_KINDS:
        return doc["spec"]["template"]["spec"]
    return None


@dataclass(frozen=True)
class ContainerRef:
    source: str
    workload: str
    pod: Doc
    container: Doc
    init: bool

    @property
    def where(self) -> str:
        return f"{self.source}: {self.workload} container {self.container.get('name')}"


def containers(items: Iterator[tuple[str, Doc]]) -> list[ContainerRef]:
    found: list[ContainerRef] = []
    for source, doc in items:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for init, key in ((False, "containers"), (True, "initContainers")):
            for c in spec.get(key, []) or []:
                found.append(ContainerRef(source, ident(doc), spec, c, init))
    return found


def env_value(container: Doc, name: str, docs: tuple[Doc, ...] = ()) -> str:
    """The value of one env var, following configMapKeyRef into the rendered ConfigMaps."""
    for var in container.get("env", []):
        if var["name"] != name:
            continue
        if "value" in var:
            return str(var["value"])
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            cm = find(docs, "ConfigMap", ref["name"])
            return str(cm["data"][ref["key"]])
        raise AssertionError(f"env {name} of {container['name']} has no literal or ConfigMap value")
    raise AssertionError(f"env {name} not set on container {container['name']}")


def container(doc: Doc, name: str) -> Doc:
    spec = pod_spec(doc)
    assert spec is not None, f"{ident(doc)} has no pod template"
    hits = [c for c in spec["containers"] if c["name"] == name]
    assert len(hits) == 1, f"{ident(doc)} has no container {name}"
    return hits[0]


def parse_workloads(value: str) -> set[tuple[str, str]]:
    """HFO_K8S_WORKLOADS ``statefulset/bot,deployment/x`` -> {("StatefulSet", "bot"), ...}."""
    kinds = {"statefulset": "StatefulSet", "deployment": "Deployment"}
    out: set[tuple[str, str]] = set()
    for item in value.split(","):
        kind, _, name = item.strip().partition("/")
        if kind not in kinds or not name:
            raise AssertionError(f"HFO_K8S_WORKLOADS item {item!r} is not <statefulset|deployment>/<name>")
        out.add((kinds[kind], name))
    return out


# Custom resources and the schema (k8s/schemas) each must pass. kubernetes-validate cannot check them.
SCHEMAS: dict[tuple[str, str], str] = {
    ("argoproj.io/v1alpha1", "Application"): "application.schema.json",
    ("argoproj.io/v1alpha1", "AppProject"): "appproject.schema.json",
    ("bitnami.com/v1alpha1", "SealedSecret"): "sealedsecret.schema.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json",
    ("helm.cattle.io/v1", "HelmChart"): "helmchart.schema.json",
}
TAILSCALE_INGRESS_SCHEMA = "tailscale-ingress.schema.json"


def schema_files_for(doc: Doc) -> list[str]:
    """The repository schemas a rendered object must pass (none for plain built-in objects)."""
    files = []
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in SCHEMAS:
        files.append(SCHEMAS[key])
    if doc.get("kind") == "Ingress" and doc.get("spec", {}).get("ingressClassName") == "tailscale":
        files.append(TAILSCALE_INGRESS_SCHEMA)
    return files
