"""Security policy over every container this repository renders (both overlays, the laptop's platform and
monitoring parts, the Argo CD bootstrap): non-root, read-only root filesystem, no capabilities, no privilege
escalation, seccomp RuntimeDefault, requests and limits, separate probes with a liveness that never looks
outside the container, pinned images, and a Kubernetes API token for the site agent only."""

from __future__ import annotations

import copy
import re

import pytest
from testsupport.k8s import ContainerRef, Doc, all_docs, containers, find, of_kind, pod_spec, render

pytestmark = pytest.mark.k8s

# registry/owner/name:exact-version[@sha256:...] or name@sha256:...
PINNED = re.compile(r"^[a-z0-9.-]+(/[a-z0-9._-]+)+(:v?\d+\.\d+\.\d+[-+.\w]*)?(@sha256:[0-9a-f]{64})?$")
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# Containers that talk to the Kubernetes API, each with its own identity (checked below).
TOKEN_HOLDERS = {"agent", "health"}


def violations(ref: ContainerRef) -> list[str]:
    """Every rule a container breaks (empty when it is compliant)."""
    c, pod = ref.container, ref.pod
    sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
    out: list[str] = []
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        out.append("runAsNonRoot is not true")
    if sc.get("runAsUser", psc.get("runAsUser")) == 0:
        out.append("runs as UID 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append("readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append("allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        out.append("privileged")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        out.append("capabilities do not drop ALL")
    if sc.get("capabilities", {}).get("add"):
        out.append("adds capabilities")
    seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
        out.append("seccompProfile is not RuntimeDefault")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in res.get(kind, {}):
                out.append(f"no {what} {kind[:-1]}")
    if not ref.init:
        probes = {p: c.get(f"{p}Probe") for p in ("liveness", "readiness", "startup")}
        for name, probe in probes.items():
            if not probe:
                out.append(f"no {name} probe")
        live, ready = probes["liveness"], probes["readiness"]
        if live and ready and live == ready:
            out.append("liveness and readiness probes are the same check")
        if live and live.get("httpGet", {}).get("path") != "/livez":
            out.append("liveness probe is not the local /livez")
        if live and live.get("httpGet", {}).get("host"):
            out.append("liveness probe targets another host")
    image = c.get("image", "")
    if not PINNED.match(image) or (":" not in image.split("/")[-1] and "@sha256:" not in image):
        out.append(f"image {image!r} is not pinned to an exact version or digest")
    if image.endswith(":latest"):
        out.append("image uses :latest")
    if pod.get("automountServiceAccountToken") is not False:
        out.append("pod automounts a service account token")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            out.append(flag)
    mounts_token = any(m.get("mountPath") == SA_TOKEN_PATH for m in c.get("volumeMounts", []))
    if mounts_token and c.get("name") not in TOKEN_HOLDERS:
        out.append("mounts a Kubernetes API token but is neither the site agent nor the health service")
    return out


def every_container() -> list[ContainerRef]:
    return containers(all_docs())


def test_there_are_containers_to_check() -> None:
    names = {(r.source, r.container["name"]) for r in every_container()}
    assert {("laptop", "bot"), ("laptop", "health"), ("laptop", "agent")} <= names
    assert {("aws", "bot"), ("aws", "health"), ("aws", "agent")} <= names


@pytest.mark.parametrize("ref", every_container(), ids=lambda r: r.where)
def test_container_follows_the_security_policy(ref: ContainerRef) -> None:
    assert violations(ref) == []


def _mounted_volume(spec: Doc, container_name: str, path: str) -> Doc:
    c = next(c for c in spec["containers"] if c["name"] == container_name)
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == path)
    return next(v for v in spec["volumes"] if v["name"] == mount["name"])


def test_api_tokens_agent_gets_the_pod_identity_health_a_read_only_one_bot_none() -> None:
    for name in ("laptop", "aws"):
        docs = render(name)
        site = pod_spec(find(docs, "Deployment", "hfo-site"))
        assert site is not None
        # the agent: the Pod's own ServiceAccount, as a short-lived projected token
        agent_vol = _mounted_volume(site, "agent", SA_TOKEN_PATH)
        assert any("serviceAccountToken" in s for s in agent_vol["projected"]["sources"])
        # the health service: a separate ServiceAccount whose Role can only read
        health_vol = _mounted_volume(site, "health", SA_TOKEN_PATH)
        token = find(docs, "Secret", health_vol["secret"]["secretName"])
        assert token["type"] == "kubernetes.io/service-account-token"
        health_sa = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        assert health_sa != site["serviceAccountName"]
        binding = next(b for b in of_kind(docs, "RoleBinding") if b["subjects"][0]["name"] == health_sa)
        role = find(docs, "Role", binding["roleRef"]["name"])
        assert {v for rule in role["rules"] for v in rule["verbs"]} == {"get"}
        # nothing else holds a token, and no ServiceAccount automounts one
        holders = {
            c["name"] for c in site["containers"] for m in c.get("volumeMounts", []) if m["mountPath"] == SA_TOKEN_PATH
        }
        assert holders == TOKEN_HOLDERS
        bot = pod_spec(find(docs, "StatefulSet", "bot"))
        assert bot is not None
        assert not [m for c in bot["containers"] for m in c.get("volumeMounts", []) if m["mountPath"] == SA_TOKEN_PATH]
        for sa in of_kind(docs, "ServiceAccount"):
            assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]


def _bot(name: str = "laptop") -> ContainerRef:
    doc = copy.deepcopy(find(render(name), "StatefulSet", "bot"))
    spec = pod_spec(doc)
    assert spec is not None
    return ContainerRef(name, "StatefulSet/bot", spec, spec["containers"][0], False)


BREAKS: dict[str, tuple[str, object]] = {
    "root": ("securityContext.runAsUser", 0),
    "writable root fs": ("securityContext.readOnlyRootFilesystem", False),
    "escalation": ("securityContext.allowPrivilegeEscalation", True),
    "capabilities kept": ("securityContext.capabilities", {"drop": ["NET_RAW"]}),
    "seccomp unconfined": ("securityContext.seccompProfile", {"type": "Unconfined"}),
    "no limits": ("resources", {"requests": {"cpu": "10m", "memory": "10Mi"}}),
    "latest tag": ("image", "ghcr.io/x/hfo-bot:latest"),
    "untagged": ("image", "ghcr.io/x/hfo-bot"),
    "liveness on Discord": ("livenessProbe", {"httpGet": {"path": "/readyz", "port": "health"}}),
    "no startup probe": ("startupProbe", None),
}


@pytest.mark.parametrize("what", sorted(BREAKS))
def test_the_policy_catches_each_kind_of_breach(what: str) -> None:
    ref = _bot()
    assert violations(ref) == []
    path, value = BREAKS[what]
    *parents, last = path.split(".")
    target: Doc = ref.container
    for key in parents:
        target = target.setdefault(key, {})
    if value is None:
        del target[last]
    else:
        target[last] = value
    if what == "root":  # the pod-level runAsNonRoot must not hide a container-level UID 0
        ref.container["securityContext"].pop("runAsNonRoot")
        ref.pod["securityContext"].pop("runAsNonRoot")
    assert violations(ref), f"{what} was not caught"


def test_pod_level_token_automount_is_caught() -> None:
    ref = _bot()
    ref.pod["automountServiceAccountToken"] = True
    assert "pod automounts a service account token" in violations(ref)
