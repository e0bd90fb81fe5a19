"""Several gated bot instances (k8s/instances, docs/kubernetes.md#several-bot-instances): one StatefulSet,
ConfigMap and sealed token per instance on one pod template, the same set on both sites, and the lists that
must name every instance (the agent's HFO_K8S_WORKLOADS, the Roles' resourceNames) in step with the
StatefulSets that exist. The last tests follow the documented two-file recipe on a copy of k8s/ and show
that forgetting a step fails these checks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from testsupport.k8s import (
    MULTI_OVERLAYS,
    SITE_OVERLAYS,
    Doc,
    container,
    env_value,
    find,
    kustomize_build,
    load_docs,
    of_kind,
    parse_workloads,
    pod_spec,
    render,
)
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.k8s

INSTANCES_DIR = REPO_ROOT / "k8s" / "instances"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A StatefulSet's Pods carry the label controller-revision-hash=<name>-<10 characters>, at most 63 in all.
MAX_NAME = 52
INSTANCE_LABEL = "app.kubernetes.io/instance"


def instance_names(docs: tuple[Doc, ...]) -> list[str]:
    return sorted(d["metadata"]["name"] for d in of_kind(docs, "StatefulSet"))


def gating_problems(docs: tuple[Doc, ...]) -> list[str]:
    """Every way the StatefulSets and the lists that must name them disagree, in words (empty: they agree)."""
    statefulsets = set(instance_names(docs))
    site = find(docs, "Deployment", "hfo-site")
    problems = []
    for name in ("agent", "health"):
        listed = {n for kind, n in parse_workloads(env_value(container(site, name), "HFO_K8S_WORKLOADS", docs))}
        if listed != statefulsets:
            problems.append(f"HFO_K8S_WORKLOADS of {name}: {sorted(listed)} != StatefulSets {sorted(statefulsets)}")
    for role, resources in (
        ("hfo-site-agent", ("statefulsets", "statefulsets/scale")),
        ("hfo-site-health", ("statefulsets",)),
    ):
        for resource in resources:
            named = {
                n for r in find(docs, "Role", role)["rules"] if resource in r["resources"] for n in r["resourceNames"]
            }
            if named != statefulsets:
                problems.append(f"Role {role} on {resource}: {sorted(named)} != StatefulSets {sorted(statefulsets)}")
    return problems


@pytest.mark.parametrize("overlay", SITE_OVERLAYS)
def test_the_workload_list_and_the_roles_name_exactly_the_statefulsets_that_exist(overlay: str) -> None:
    assert gating_problems(render(overlay)) == []


def test_both_sites_run_the_same_instances_and_no_single_bot() -> None:
    """The standby takes over every instance: laptop-multi and aws-multi render the same set, from the one
    component, and the single StatefulSet/bot (and its token) of k8s/base is gone from both."""
    laptop, aws = (render(o) for o in MULTI_OVERLAYS)
    assert instance_names(laptop) == instance_names(aws)
    assert len(instance_names(laptop)) >= 3
    for docs in (laptop, aws):
        assert "bot" not in instance_names(docs)
        assert "hfo-bot-token" not in {d["metadata"]["name"] for d in of_kind(docs, "SealedSecret")}
        instance_configs = {
            d["metadata"]["name"]: d["data"]
            for d in of_kind(docs, "ConfigMap")
            if INSTANCE_LABEL in d["metadata"].get("labels", {})
        }
        assert sorted(instance_configs) == instance_names(docs)
    assert {
        d["metadata"]["name"]: d["data"]
        for d in of_kind(laptop, "ConfigMap")
        if d["metadata"]["name"].startswith("bot-")
    } == {
        d["metadata"]["name"]: d["data"] for d in of_kind(aws, "ConfigMap") if d["metadata"]["name"].startswith("bot-")
    }


@pytest.mark.parametrize("overlay", MULTI_OVERLAYS)
def test_instance_names_are_dns_labels_short_enough_for_a_statefulset(overlay: str) -> None:
    for name in instance_names(render(overlay)):
        assert DNS_LABEL.match(name), f"{name!r} is not a DNS label (a-z, 0-9, '-')"
        assert len(name) <= MAX_NAME, f"{name!r}: at most {MAX_NAME} characters (controller-revision-hash label)"


@pytest.mark.parametrize("overlay", MULTI_OVERLAYS)
def test_each_instance_has_its_own_selector_settings_and_token(overlay: str) -> None:
    docs = render(overlay)
    sealed = {d["metadata"]["name"]: d for d in of_kind(docs, "SealedSecret")}
    service = find(docs, "Service", "bot")
    selectors, tokens = [], []
    for sts in of_kind(docs, "StatefulSet"):
        name = sts["metadata"]["name"]
        selector = sts["spec"]["selector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/name": "hfo-bot", INSTANCE_LABEL: name}
        assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
        selectors.append(frozenset(selector.items()))
        # one headless Service for all instances: bot-a-0.bot.hfo.svc; NetworkPolicies select the same label
        assert sts["spec"]["serviceName"] == "bot"
        assert service["spec"]["selector"].items() <= selector.items()
        bot = container(sts, "bot")
        (source,) = bot["envFrom"]
        config = find(docs, "ConfigMap", source["configMapRef"]["name"])
        assert config["metadata"]["name"] == name and config["metadata"]["labels"][INSTANCE_LABEL] == name
        assert not {e["name"] for e in bot.get("env", [])} & set(config["data"]), "env would override the ConfigMap"
        count, per_pod = int(config["data"]["SHARD_COUNT"]), int(config["data"]["SHARDS_PER_POD"])
        desired = int(sts["metadata"]["annotations"]["hfo.dev/desired-replicas"])
        assert -(-count // per_pod) == desired, f"{name}: SHARD_COUNT / SHARDS_PER_POD pods must equal desired-replicas"
        assert sts["spec"]["replicas"] == 0
        volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
        token = volumes["token"]["secret"]["secretName"]
        assert token == f"{name}-token" and "token" in sealed[token]["spec"]["encryptedData"]
        assert sealed[token]["spec"]["template"]["metadata"]["name"] == token
        tokens.append(token)
    assert len(set(selectors)) == len(selectors) and len(set(tokens)) == len(tokens)


def _comparable(sts: Doc) -> Doc:
    """A bot StatefulSet without what belongs to the instance: name, instance label, selector, settings
    (envFrom, or the single bot's SHARD_* env), token Secret name, desired size; and without the content
    hash of the site ConfigMap's name (the instances add HFO_K8S_WORKLOADS to it)."""
    doc = yaml.safe_load(re.sub(r"hfo-site-[a-z0-9]{10}\b", "hfo-site", yaml.safe_dump(sts)))
    doc["metadata"].pop("name")
    doc["metadata"]["annotations"].pop("hfo.dev/desired-replicas")
    for labels in (doc["metadata"]["labels"], doc["spec"]["template"]["metadata"]["labels"]):
        labels.pop(INSTANCE_LABEL, None)
    doc["spec"].pop("selector")
    bot = container(doc, "bot")
    bot.pop("envFrom", None)
    bot["env"] = [e for e in bot["env"] if e["name"] not in ("SHARD_COUNT", "SHARDS_PER_POD")]
    for volume in pod_spec(doc)["volumes"]:
        if volume["name"] == "token":
            volume["secret"].pop("secretName")
    pod_spec(doc)["volumes"].sort(key=lambda v: v["name"])
    return doc


@pytest.mark.parametrize(("single", "multi"), [("laptop", "laptop-multi"), ("aws", "aws-multi")])
def test_every_instance_runs_the_single_bots_pod(single: str, multi: str) -> None:
    """k8s/instances/pod-template.yaml is a copy of the single bot's pod (security, probes, image, sizes,
    state volume): it must not drift from k8s/base/bot/statefulset.yaml and its overlay patches."""
    reference = _comparable(find(render(single), "StatefulSet", "bot"))
    for sts in of_kind(render(multi), "StatefulSet"):
        assert _comparable(sts) == reference, f"{sts['metadata']['name']} differs from StatefulSet/bot of {single}"


def _mem(value: str) -> int:
    return int(value.removesuffix("Mi")) if value.endswith("Mi") else int(value.removesuffix("Gi")) * 1024


def _cpu(value: str) -> int:
    return int(value.removesuffix("m")) if value.endswith("m") else int(float(value) * 1000)


def quota_problems(docs: tuple[Doc, ...]) -> list[str]:
    """What the namespace's ResourceQuota would refuse with every instance at its desired size."""
    quota = find(docs, "ResourceQuota", "hfo")["spec"]["hard"]
    pods = [(d, int(d["metadata"]["annotations"]["hfo.dev/desired-replicas"])) for d in of_kind(docs, "StatefulSet")]
    pods.append((find(docs, "Deployment", "hfo-site"), 1))
    total = {"limits.memory": 0, "limits.cpu": 0, "requests.memory": 0, "requests.cpu": 0}
    for doc, replicas in pods:
        for c in pod_spec(doc)["containers"]:
            for kind in ("limits", "requests"):
                total[f"{kind}.memory"] += replicas * _mem(c["resources"][kind]["memory"])
                total[f"{kind}.cpu"] += replicas * _cpu(c["resources"][kind]["cpu"])
    problems = []
    for key, used in total.items():
        allowed = _mem(quota[key]) if key.endswith("memory") else _cpu(quota[key])
        if used > allowed:
            problems.append(f"{key}: {used} > quota {quota[key]}")
    bot_pods = sum(n for _, n in pods[:-1])
    if bot_pods + 1 > int(quota["pods"]):
        problems.append(f"pods: {bot_pods + 1} > quota {quota['pods']}")
    # one state volume per bot pod, plus the single bot's, left behind (Retain) when a site moves to instances
    if bot_pods + 1 > int(quota["persistentvolumeclaims"]):
        problems.append(f"persistentvolumeclaims: {bot_pods + 1} > quota {quota['persistentvolumeclaims']}")
    if (bot_pods + 1) * 1024 > _mem(quota["requests.storage"]):
        problems.append(f"requests.storage: {bot_pods + 1} Gi > quota {quota['requests.storage']}")
    return problems


@pytest.mark.parametrize("overlay", MULTI_OVERLAYS)
def test_the_quota_admits_every_instance_at_its_desired_size(overlay: str) -> None:
    assert quota_problems(render(overlay)) == [], f"{overlay}: raise the quota in the overlay"


def test_every_instance_file_is_listed_and_every_listed_file_is_an_instance() -> None:
    component = yaml.safe_load((INSTANCES_DIR / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    files = {p.name for p in INSTANCES_DIR.glob("*.yaml")} - {"kustomization.yaml", "pod-template.yaml"}
    assert set(component["resources"]) == files, "an instance file that is not listed never reaches a cluster"
    for name in files:
        kinds = sorted(d["kind"] for d in load_docs((INSTANCES_DIR / name).read_text()))
        assert kinds == ["ConfigMap", "SealedSecret", "StatefulSet"], (
            f"{name}: one instance per file, seed 004's layout"
        )


# -- the documented recipe, on a copy of k8s/


def _copy_k8s(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "k8s", root / "k8s")
    return root / "k8s"


def _add_instance_file(k8s: Path, name: str) -> None:
    """Step 1 of docs/kubernetes.md#several-bot-instances: copy bot-a.yaml, replace every "bot-a"."""
    text = (k8s / "instances" / "bot-a.yaml").read_text()
    (k8s / "instances" / f"{name}.yaml").write_text(text.replace("bot-a", name))


def _list_instance(k8s: Path, name: str, *, after: str = "bot-c", skip: str = "") -> None:
    """Step 2: in kustomization.yaml, the file under `resources` and the name in the three INSTANCES lists
    (after `after`, the last instance listed so far)."""
    path = k8s / "instances" / "kustomization.yaml"
    text = path.read_text()
    if skip != "resources":
        text = text.replace(f"  - {after}.yaml\n", f"  - {after}.yaml\n  - {name}.yaml\n")
    if skip != "workloads":
        text = text.replace(f"statefulset/{after}\n", f"statefulset/{after},statefulset/{name}\n")
    lists = text.split(f'"{after}"]')
    assert len(lists) == 3, f"the two Roles' resourceNames end with {after}"
    agent_role, health_role, rest = lists
    agent_role += f'"{after}"' + ("" if skip == "agent-role" else f', "{name}"') + "]"
    health_role += f'"{after}"' + ("" if skip == "health-role" else f', "{name}"') + "]"
    path.write_text(agent_role + health_role + rest)


def test_adding_an_instance_is_the_documented_two_file_change(tmp_path: Path) -> None:
    k8s = _copy_k8s(tmp_path)
    before = set((k8s / "instances").iterdir())
    _add_instance_file(k8s, "bot-d")
    _list_instance(k8s, "bot-d")
    changed = {p for p in (k8s / "instances").iterdir() if p not in before} | {k8s / "instances" / "kustomization.yaml"}
    assert len(changed) == 2
    for overlay in MULTI_OVERLAYS:
        docs = load_docs(kustomize_build(k8s / "overlays" / overlay))
        assert instance_names(docs) == ["bot-a", "bot-b", "bot-c", "bot-d"]
        assert gating_problems(docs) == []
        assert quota_problems(docs) == [], "docs/kubernetes.md: four one-pod instances fit the shipped quotas"
        bot_d = find(docs, "StatefulSet", "bot-d")
        assert container(bot_d, "bot")["image"] == container(find(docs, "StatefulSet", "bot-a"), "bot")["image"]
        assert find(docs, "SealedSecret", "bot-d-token")["metadata"]["namespace"] == "hfo"
    # the doc says it, with the two files named
    doc = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    assert "k8s/instances/bot-a.yaml" in doc and "k8s/instances/kustomization.yaml" in doc


@pytest.mark.parametrize("skip", ["workloads", "agent-role", "health-role"])
def test_forgetting_a_list_when_adding_an_instance_is_caught(tmp_path: Path, skip: str) -> None:
    k8s = _copy_k8s(tmp_path)
    _add_instance_file(k8s, "bot-d")
    _list_instance(k8s, "bot-d", skip=skip)
    problems = gating_problems(load_docs(kustomize_build(k8s / "overlays" / "laptop-multi")))
    assert problems and all("bot-d" in p for p in problems), problems


def test_forgetting_to_list_the_file_is_caught(tmp_path: Path) -> None:
    k8s = _copy_k8s(tmp_path)
    _add_instance_file(k8s, "bot-d")
    _list_instance(k8s, "bot-d", skip="resources")
    problems = gating_problems(load_docs(kustomize_build(k8s / "overlays" / "laptop-multi")))
    assert any("HFO_K8S_WORKLOADS" in p for p in problems)  # listed to the agent, but no such StatefulSet


def test_a_fifth_instance_needs_a_larger_quota_on_the_small_standby(tmp_path: Path) -> None:
    """What docs/kubernetes.md says: beyond four one-pod instances, raise the quota (limits and volumes)."""
    k8s = _copy_k8s(tmp_path)
    _add_instance_file(k8s, "bot-d")
    _list_instance(k8s, "bot-d")
    _add_instance_file(k8s, "bot-e")
    _list_instance(k8s, "bot-e", after="bot-d")
    docs = load_docs(kustomize_build(k8s / "overlays" / "aws-multi"))
    assert gating_problems(docs) == []
    assert quota_problems(docs) == [
        "limits.cpu: 2400 > quota 2",
        "persistentvolumeclaims: 6 > quota 5",
        "requests.storage: 6 Gi > quota 5Gi",
    ]
