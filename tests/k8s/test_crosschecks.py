"""Cross-checks between files that must agree. Each catches a drift that no single file shows: a workload
the agent scales but Argo CD still owns, a Role that names another workload, a grace period longer than the
agent waits, a probe URL pointing at a port that does not exist, an overlay that changes more than it should.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from testsupport.k8s import (
    BOOTSTRAP_DIR,
    KUSTOMIZATIONS,
    SITE_OVERLAYS,
    Doc,
    bootstrap_docs,
    container,
    env_value,
    find,
    ident,
    load_docs,
    of_kind,
    parse_workloads,
    pod_spec,
    render,
)
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.k8s

CLUSTERS = {"laptop": "argocd-laptop", "aws": "argocd-aws"}
SITES = {"laptop": "primary", "aws": "standby"}


def agent(overlay: str) -> tuple[Doc, tuple[Doc, ...]]:
    docs = render(overlay)
    return container(find(docs, "Deployment", "hfo-site"), "agent"), docs


def workloads(overlay: str) -> set[tuple[str, str]]:
    agent_c, docs = agent(overlay)
    return parse_workloads(env_value(agent_c, "HFO_K8S_WORKLOADS", docs))


def sharding_enabled(overlay: str) -> bool:
    agent_c, docs = agent(overlay)
    return env_value(agent_c, "HFO_SHARDS_ENABLED", docs) == "true"


def shards_configmap(overlay: str) -> str:
    """The ConfigMap the agent writes the bot's shard settings into (it must have sharding on)."""
    agent_c, docs = agent(overlay)
    assert env_value(agent_c, "HFO_SHARDS_ENABLED", docs) == "true"
    names = [v.get("value") for v in agent_c["env"] if v["name"] == "HFO_SHARDS_CONFIGMAP"]
    return names[0] if names else "hfo-bot-shards"  # hfo_site.config.SHARDS_CONFIGMAP


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_the_bot_reads_its_shard_settings_from_the_configmap_the_agent_writes(overlay: str) -> None:
    agent_c, docs = agent(overlay)
    name = shards_configmap(overlay)
    bot = container(find(docs, "StatefulSet", "bot"), "bot")
    for key in ("SHARD_COUNT", "SHARDS_PER_POD"):
        (var,) = [v for v in bot["env"] if v["name"] == key]
        assert var["valueFrom"]["configMapKeyRef"] == {"name": name, "key": key}
    configmap = find(docs, "ConfigMap", name)
    assert set(configmap["data"]) == {"SHARD_COUNT", "SHARDS_PER_POD"}, "the agent owns all of /data"
    # The agent reads the bot's own token (mounted into the agent container only) for GET /gateway/bot.
    token_path = env_value(agent_c, "HFO_DISCORD_TOKEN_FILE", docs)
    site = pod_spec(find(docs, "Deployment", "hfo-site"))
    assert site is not None
    volumes = {v["name"]: v for v in site["volumes"]}
    (mount,) = [m for m in agent_c["volumeMounts"] if token_path.startswith(m["mountPath"] + "/")]
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "hfo-bot-token" and mount["readOnly"] is True
    assert [i["path"] for i in secret["items"]] == [token_path.rsplit("/", 1)[1]]
    health = container(find(docs, "Deployment", "hfo-site"), "health")
    assert mount["name"] not in {m["name"] for m in health["volumeMounts"]}, "the health service faces the internet"


@pytest.mark.parametrize("overlay", SITE_OVERLAYS)
def test_scaled_workloads_exist_start_at_zero_and_carry_their_desired_size(overlay: str) -> None:
    docs = render(overlay)
    for kind, name in workloads(overlay):
        doc = find(docs, kind, name)
        assert doc["spec"]["replicas"] == 0, f"{kind}/{name}: Git must never start the bot; the agent does"
        desired = doc["metadata"]["annotations"]["hfo.dev/desired-replicas"]
        assert int(desired) >= 1


@pytest.mark.parametrize("overlay", SITE_OVERLAYS)
def test_agent_role_names_exactly_the_scaled_workloads(overlay: str) -> None:
    docs = render(overlay)
    names = {name for _, name in workloads(overlay)}
    plural = {kind.lower() + "s" for kind, _ in workloads(overlay)}
    role = find(docs, "Role", "hfo-site-agent")
    rules = list(role["rules"])
    # Shard-aware scaling: the ConfigMap the agent writes, by that name only (shards_configmap below). The
    # -multi overlays turn it off (one token per instance), and then the agent may not touch a ConfigMap.
    configmap_rules = [r for r in rules if r["resources"] == ["configmaps"]]
    if sharding_enabled(overlay):
        assert configmap_rules == [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [shards_configmap(overlay)],
             "verbs": ["get", "patch"]}
        ]  # fmt: skip
    else:
        assert configmap_rules == []
    # One rule per resource (k8s/base) or one rule for both (k8s/instances, one list of names to keep)
    granted: dict[str, set[str]] = {}
    for rule in (r for r in rules if r not in configmap_rules):
        assert rule["apiGroups"] == ["apps"]
        assert set(rule["verbs"]) == {"get", "patch"}  # what hfo_site.k8s calls: reads and merge patches
        assert set(rule["resourceNames"]) == names, f"{rule['resources']}: {rule['resourceNames']} != {names}"
        for resource in rule["resources"]:
            assert resource not in granted, f"{resource} in two rules"
            granted[resource] = set(rule["resourceNames"])
    assert set(granted) == {f"{p}/scale" for p in plural} | plural
    health_role = find(docs, "Role", "hfo-site-health")
    (health_rule,) = health_role["rules"]
    assert health_rule["apiGroups"] == ["apps"] and health_rule["verbs"] == ["get"]
    assert (set(health_rule["resources"]), set(health_rule["resourceNames"])) == (plural, names)
    site_doc = find(docs, "Deployment", "hfo-site")
    health_env = parse_workloads(env_value(container(site_doc, "health"), "HFO_K8S_WORKLOADS", docs))
    assert health_env == workloads(overlay), "health and agent must watch the same workloads"
    binding = find(docs, "RoleBinding", "hfo-site-agent")
    site = pod_spec(find(docs, "Deployment", "hfo-site"))
    assert site is not None
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": site["serviceAccountName"], "namespace": "hfo"}]
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")


@pytest.mark.parametrize("cluster", ["laptop", "aws"])
def test_argocd_ignores_exactly_the_replicas_the_agent_owns(cluster: str) -> None:
    """Argo CD ignores /spec/replicas of every StatefulSet of the Application (no name: a new bot instance
    needs no change there). That is exactly what the agent owns as long as every StatefulSet the overlay
    renders is one the agent scales, in the single-bot overlay and in the one with several instances."""
    app = find(render(CLUSTERS[cluster]), "Application", "hfo")
    assert app["spec"]["source"]["path"] == KUSTOMIZATIONS[cluster]
    assert app["spec"]["ignoreDifferences"] == [
        {"group": "apps", "kind": "StatefulSet", "namespace": "hfo", "jsonPointers": ["/spec/replicas"]},
        # the shard settings the agent writes
        {"group": "", "kind": "ConfigMap", "name": shards_configmap(cluster), "namespace": "hfo",
         "jsonPointers": ["/data"]},
    ]  # fmt: skip
    for overlay in (cluster, f"{cluster}-multi"):
        statefulsets = {("StatefulSet", d["metadata"]["name"]) for d in of_kind(render(overlay), "StatefulSet")}
        assert statefulsets == workloads(overlay), f"{overlay}: Argo CD would leave a StatefulSet's replicas alone"
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_stop_timings_nest(overlay: str) -> None:
    """bot's own close timeout < its termination grace < the time the agent waits for it to stop."""
    agent_c, docs = agent(overlay)
    bot = find(docs, "StatefulSet", "bot")
    spec = pod_spec(bot)
    assert spec is not None
    grace = spec["terminationGracePeriodSeconds"]
    stop_timeout = float(env_value(container(bot, "bot"), "HFO_BOT_STOP_TIMEOUT_S", docs))
    agent_wait = float(env_value(agent_c, "HFO_STOP_GRACE_S", docs))
    assert stop_timeout < grace < agent_wait


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_shards_cover_the_desired_pods(overlay: str) -> None:
    docs = render(overlay)
    bot = find(docs, "StatefulSet", "bot")
    c = container(bot, "bot")
    count = int(env_value(c, "SHARD_COUNT", docs))
    per_pod = int(env_value(c, "SHARDS_PER_POD", docs))
    desired = int(bot["metadata"]["annotations"]["hfo.dev/desired-replicas"])
    assert -(-count // per_pod) == desired, "SHARD_COUNT / SHARDS_PER_POD pods must equal hfo.dev/desired-replicas"


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_workload_ready_url_points_at_the_bot_readiness_endpoint(overlay: str) -> None:
    agent_c, docs = agent(overlay)
    url = env_value(agent_c, "HFO_WORKLOAD_READY_URL", docs)
    health_c = container(find(docs, "Deployment", "hfo-site"), "health")
    assert env_value(health_c, "HFO_WORKLOAD_READY_URL", docs) == url
    bot = find(docs, "StatefulSet", "bot")
    service = find(docs, "Service", bot["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["containerPort"] for p in container(bot, "bot")["ports"]}
    ns = bot["metadata"]["namespace"]
    assert (
        url
        == f"http://{bot['metadata']['name']}-0.{service['metadata']['name']}.{ns}.svc.cluster.local:{ports['health']}/readyz"
    )
    assert container(bot, "bot")["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", SITE_OVERLAYS)
def test_the_lease_service_reaches_the_agents_lease_port(overlay: str) -> None:
    docs = render(overlay)
    agent_c, _ = agent(overlay)
    service = find(docs, "Service", "hfo-site-lease")
    (port,) = service["spec"]["ports"]
    lease = {p["name"]: p["containerPort"] for p in agent_c["ports"]}["lease"]
    assert (port["port"], port["targetPort"]) == (lease, "lease")
    assert env_value(agent_c, "HFO_AGENT_LEASE_PORT", docs) == str(lease)
    assert env_value(agent_c, "HFO_AGENT_LEASE_BIND", docs) == "0.0.0.0"  # noqa: S104 - behind the Service
    assert service["metadata"]["namespace"] == "hfo"  # the URL of docs/protocol.md#lease-endpoint


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_the_bot_asks_its_own_sites_lease_service(overlay: str) -> None:
    """docs/kubernetes.md#lease-aware-bot: HFO_BOT_LEASE_URL names the hfo-site-lease Service of the bot's
    namespace, on the Service's port, at /v1/lease; the NetworkPolicies open that port from the bot."""
    docs = render(overlay)
    bot = find(docs, "StatefulSet", "bot")
    url = urlsplit(env_value(container(bot, "bot"), "HFO_BOT_LEASE_URL", docs))
    service = find(docs, "Service", "hfo-site-lease")
    (port,) = service["spec"]["ports"]
    ns = bot["metadata"]["namespace"]
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "http",
        f"{service['metadata']['name']}.{ns}.svc.cluster.local",
        port["port"],
        "/v1/lease",
    )
    agent_c, _ = agent(overlay)
    target = {p["name"]: p["containerPort"] for p in agent_c["ports"]}[port["targetPort"]]
    lease_np = _policy(docs, "bot-lease")
    bot_labels = bot["spec"]["template"]["metadata"]["labels"]
    assert lease_np["spec"]["podSelector"]["matchLabels"].items() <= bot_labels.items()
    assert target in {p["port"] for r in lease_np["spec"]["egress"] for p in r["ports"]}


def _policy(docs: tuple[Doc, ...], name: str) -> Doc:
    return find(docs, "NetworkPolicy", name)


def _ports(rule: Doc) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_network_policies_open_exactly_the_declared_ports(overlay: str) -> None:
    docs = render(overlay)
    deny = _policy(docs, "default-deny-all")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    bot = find(docs, "StatefulSet", "bot")
    site = find(docs, "Deployment", "hfo-site")
    bot_port = {p["name"]: p["containerPort"] for p in container(bot, "bot")["ports"]}["health"]
    site_ports = {p["name"]: p["containerPort"] for c in pod_spec(site)["containers"] for p in c.get("ports", [])}
    bot_np, site_np = _policy(docs, "bot"), _policy(docs, "site")
    assert bot_np["spec"]["podSelector"]["matchLabels"].items() <= bot["spec"]["template"]["metadata"]["labels"].items()
    assert (
        site_np["spec"]["podSelector"]["matchLabels"].items() <= site["spec"]["template"]["metadata"]["labels"].items()
    )
    assert [_ports(r) for r in bot_np["spec"]["ingress"]] == [{bot_port}]
    assert [_ports(r) for r in site_np["spec"]["ingress"]] == [
        {site_ports["health-metrics"], site_ports["agent"]},
        {site_ports["lease"]},
    ]
    # The lease endpoint: from the bot pods only, and the bot may reach nothing else of the site.
    assert site_np["spec"]["ingress"][1]["from"] == [
        {"podSelector": {"matchLabels": bot_np["spec"]["podSelector"]["matchLabels"]}}
    ]
    lease_np = _policy(docs, "bot-lease")
    assert lease_np["spec"]["podSelector"] == bot_np["spec"]["podSelector"]
    assert lease_np["spec"]["policyTypes"] == ["Egress"]
    assert [_ports(r) for r in lease_np["spec"]["egress"]] == [{site_ports["lease"]}]
    assert lease_np["spec"]["egress"][0]["to"] == [{"podSelector": site_np["spec"]["podSelector"]}]
    egress = [_ports(r) for r in site_np["spec"]["egress"]]
    assert egress == [{443}, {443, 6443}, {bot_port}]
    assert [_ports(r) for r in bot_np["spec"]["egress"]] == [{443}]
    # public egress never reaches the cluster or the LAN
    for np in (bot_np, site_np):
        public = np["spec"]["egress"][0]["to"][0]["ipBlock"]
        assert public["cidr"] == "0.0.0.0/0"
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(public["except"])


def test_funnel_reaches_only_the_health_port_and_only_on_the_laptop() -> None:
    laptop, aws = render("laptop"), render("aws")
    assert not of_kind(aws, "Ingress")
    assert "site-funnel" not in {d["metadata"]["name"] for d in of_kind(aws, "NetworkPolicy")}
    ingress = find(laptop, "Ingress", "hfo-health")
    assert ingress["metadata"]["annotations"]["tailscale.com/funnel"] == "true"
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/healthz"], "only the watchdog's probe is public"
    backend = paths[0]["backend"]["service"]
    service = find(laptop, "Service", backend["name"])
    svc_port = next(p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])
    site = find(laptop, "Deployment", "hfo-site")
    health_ports = {p["name"]: p["containerPort"] for p in container(site, "health")["ports"]}
    assert health_ports[svc_port["targetPort"]] == 8080
    funnel = _policy(laptop, "site-funnel")
    peer = funnel["spec"]["ingress"][0]["from"][0]
    labels = peer["podSelector"]["matchLabels"]
    assert labels["tailscale.com/parent-resource"] == ingress["metadata"]["name"]
    assert labels["tailscale.com/parent-resource-ns"] == ingress["metadata"]["namespace"]
    assert labels["tailscale.com/parent-resource-type"] == "ingress"
    assert _ports(funnel["spec"]["ingress"][0]) == {8080}


def test_hostnames_are_distinct_per_cluster() -> None:
    """Funnel machine name and operator device name must not collide with each other (a second device
    asking for a taken name silently gets a suffix and the watchdog probes the wrong host)."""
    host = find(render("laptop"), "Ingress", "hfo-health")["spec"]["tls"][0]["hosts"][0]
    op = find(render("argocd-laptop"), "Application", "tailscale-operator")
    op_host = op["spec"]["source"]["helm"]["valuesObject"]["operatorConfig"]["hostname"]
    assert len({host, op_host}) == 2
    assert host.startswith("hfo-laptop") and op_host.startswith("hfo-laptop")


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_each_overlay_names_its_site(overlay: str) -> None:
    docs = render(overlay)
    cm = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("hfo-site"))
    assert cm["data"]["HFO_SITE"] == SITES[overlay]
    assert cm["data"]["HFO_HEARTBEAT_URL"].startswith("https://")


def _strip(docs: tuple[Doc, ...]) -> dict[str, Doc]:
    """Objects by identity, with the generated ConfigMap hash suffix removed from names and references."""
    text = yaml.safe_dump_all(docs)
    text = re.sub(r"hfo-site-[a-z0-9]{10}\b", "hfo-site", text)
    return {ident(d): d for d in load_docs(text)}


def test_overlays_differ_from_each_other_only_where_allowed() -> None:
    laptop, aws = _strip(render("laptop")), _strip(render("aws"))
    assert set(laptop) - set(aws) == {"Ingress/hfo/hfo-health", "NetworkPolicy/hfo/site-funnel"}
    assert set(aws) <= set(laptop)
    for key in aws:
        a, b = copy.deepcopy(laptop[key]), copy.deepcopy(aws[key])
        if key == "ConfigMap/hfo/hfo-site":
            assert (a["data"].pop("HFO_SITE"), b["data"].pop("HFO_SITE")) == ("primary", "standby")
        if key == "ResourceQuota/hfo/hfo":
            a["spec"].pop("hard"), b["spec"].pop("hard")
        for doc in (a, b):
            spec = pod_spec(doc)
            for c in (spec or {}).get("containers", []):
                c.pop("resources")
        assert a == b, f"{key} differs between the overlays beyond site name and sizing"


def test_aws_is_sized_smaller_than_the_laptop() -> None:
    def mem(value: str) -> int:
        return int(value.removesuffix("Mi")) if value.endswith("Mi") else int(value.removesuffix("Gi")) * 1024

    laptop, aws = render("laptop"), render("aws")
    for kind, name, cname in [
        ("StatefulSet", "bot", "bot"),
        ("Deployment", "hfo-site", "health"),
        ("Deployment", "hfo-site", "agent"),
    ]:
        big = container(find(laptop, kind, name), cname)["resources"]["limits"]["memory"]
        small = container(find(aws, kind, name), cname)["resources"]["limits"]["memory"]
        assert mem(small) < mem(big)
    quota = find(aws, "ResourceQuota", "hfo")["spec"]["hard"]
    limits = sum(
        mem(container(find(aws, k, n), c)["resources"]["limits"]["memory"])
        for k, n, c in [
            ("StatefulSet", "bot", "bot"),
            ("Deployment", "hfo-site", "health"),
            ("Deployment", "hfo-site", "agent"),
        ]
    )
    assert limits <= mem(quota["limits.memory"]), "the quota must admit one bot pod and the site pod"


def _quantity(value: str | int) -> float:
    """A Kubernetes quantity (``50m``, ``96Mi``, ``1Gi``, ``2``) as a plain number (cores, bytes, count)."""
    text = str(value)
    for suffix, factor in (("m", 1e-3), ("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30)):
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


@pytest.mark.parametrize("overlay", ["laptop", "aws"])
def test_the_quota_admits_the_most_bot_pods_the_agent_may_run(overlay: str) -> None:
    """HFO_SHARDS_MAX_REPLICAS bot pods (each with its containers and its volume claims) and the site Pod must fit
    the namespace's ResourceQuota on each site: a pod or claim over the quota is refused, and a shard whose pod
    cannot exist never connects. The standby must be able to run what the primary runs."""
    agent_c, docs = agent(overlay)
    pods = int(env_value(agent_c, "HFO_SHARDS_MAX_REPLICAS", docs))
    hard = find(docs, "ResourceQuota", "hfo")["spec"]["hard"]
    bot, site = find(docs, "StatefulSet", "bot"), find(docs, "Deployment", "hfo-site")
    need: dict[str, float] = {"pods": pods + 1}
    for doc, count in ((bot, pods), (site, 1)):
        spec = pod_spec(doc)
        assert spec is not None
        for c in spec["containers"]:
            for kind in ("requests", "limits"):
                for resource, value in c["resources"][kind].items():
                    key = f"{kind}.{resource}"
                    need[key] = need.get(key, 0.0) + count * _quantity(value)
    claims = bot["spec"].get("volumeClaimTemplates", [])
    need["persistentvolumeclaims"] = pods * len(claims)
    need["requests.storage"] = pods * sum(_quantity(t["spec"]["resources"]["requests"]["storage"]) for t in claims)
    for key, amount in need.items():
        if key in hard:
            assert amount <= _quantity(hard[key]), f"{overlay}: {pods} bot pods need {key} {amount:g} > {hard[key]}"


def test_images_come_from_the_one_kustomize_images_entry() -> None:
    base = yaml.safe_load((REPO_ROOT / "k8s/base/kustomization.yaml").read_text())
    want = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in base["images"]}
    for overlay in ("laptop", "aws"):
        docs = render(overlay)
        images = {c["image"] for d in docs if pod_spec(d) for c in pod_spec(d)["containers"]}
        assert images == set(want.values())
    owners = {v.rsplit("/", 1)[0] for v in want.values()}
    assert len(owners) == 1, "both images live under one owner, changed in one place"


def test_dockerfile_user_matches_the_pod_uid() -> None:
    dockerfile = (REPO_ROOT / "bot/Dockerfile").read_text()
    uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert uid, "the bot image must run as a numeric non-root user"
    spec = pod_spec(find(render("laptop"), "StatefulSet", "bot"))
    assert spec is not None
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (
        int(uid.group(1)),
        int(uid.group(2)),
    )
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+$", dockerfile, re.M), "pinned base image"
    assert 'ENTRYPOINT ["python", "-m", "hfo_bot"]' in dockerfile


def _hfo_project_kinds() -> set[tuple[str, str]]:
    kinds: set[tuple[str, str]] = set()
    for name in ("laptop", "aws", "platform-laptop", "monitoring-laptop"):
        for d in render(name):
            group = d["apiVersion"].rpartition("/")[0]
            kinds.add((group, d["kind"]))
    return kinds


def test_hfo_project_allows_exactly_the_kinds_it_deploys() -> None:
    project = find(render("argocd-projects"), "AppProject", "hfo")
    allowed = {(g["group"], g["kind"]) for g in project["spec"]["namespaceResourceWhitelist"]}
    allowed |= {(g["group"], g["kind"]) for g in project["spec"]["clusterResourceWhitelist"]}
    assert allowed == _hfo_project_kinds()


def _apps(cluster: str) -> list[Doc]:
    return of_kind(render(CLUSTERS[cluster]), "Application")


def _sources(app: Doc) -> list[Doc]:
    return [app["spec"]["source"]] if "source" in app["spec"] else app["spec"]["sources"]


def _repo_urls() -> set[str]:
    """Every Git repository URL: Application sources that are not Helm charts, and project sourceRepos
    that are not one of the chart repositories."""
    roots = [d for c in CLUSTERS for d in load_docs((REPO_ROOT / f"argocd/clusters/{c}/root.yaml").read_text())]
    docs = [*render("argocd-laptop"), *render("argocd-aws"), *render("argocd-projects"), *bootstrap_docs(), *roots]
    apps = [d for d in docs if d["kind"] == "Application"]
    charts = {s["repoURL"] for a in apps for s in _sources(a) if "chart" in s}
    urls = {s["repoURL"] for a in apps for s in _sources(a) if "chart" not in s}
    for project in (d for d in docs if d["kind"] == "AppProject"):
        urls |= set(project["spec"]["sourceRepos"]) - charts
    return urls


def test_one_repository_url_everywhere() -> None:
    assert len(_repo_urls()) == 1, _repo_urls()


@pytest.mark.parametrize("cluster", ["laptop", "aws"])
def test_every_application_is_allowed_by_its_project(cluster: str) -> None:
    projects = {p["metadata"]["name"]: p for p in of_kind(render("argocd-projects"), "AppProject")}
    for app in _apps(cluster):
        project = projects[app["spec"]["project"]]["spec"]
        for src in _sources(app):
            assert src["repoURL"] in project["sourceRepos"], f"{app['metadata']['name']}: {src['repoURL']}"
            if "path" in src:
                assert (REPO_ROOT / src["path"] / "kustomization.yaml").is_file(), src["path"]
            if "chart" in src:
                assert re.fullmatch(r"\d+\.\d+\.\d+", src["targetRevision"]), "charts are pinned"
            for values in src.get("helm", {}).get("valueFiles", []):
                assert values.startswith("$values/") and (REPO_ROOT / values.removeprefix("$values/")).is_file()
        dest = app["spec"]["destination"]
        assert {"server": dest["server"], "namespace": dest["namespace"]} in project["destinations"]
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert policy["retry"]["limit"] == -1 and policy["retry"]["backoff"]["factor"] >= 2


def test_children_create_dependencies_first() -> None:
    waves = {
        a["metadata"]["name"]: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for a in _apps("laptop")
    }
    assert waves["sealed-secrets"] < waves["laptop-config"] < waves["tailscale-operator"] <= waves["hfo"] - 1
    assert waves["kube-prometheus-stack"] < waves["hfo-monitoring"]
    aws = {
        a["metadata"]["name"]: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in _apps("aws")
    }
    assert aws["sealed-secrets"] < aws["hfo"]


def test_both_clusters_run_the_same_sealed_secrets_without_key_renewal() -> None:
    laptop = find(render("argocd-laptop"), "Application", "sealed-secrets")
    aws = find(render("argocd-aws"), "Application", "sealed-secrets")
    assert laptop["spec"] == aws["spec"]
    values = laptop["spec"]["source"]["helm"]["valuesObject"]
    assert values["keyrenewperiod"] == "0", "a key renewed on one cluster only would split the two"
    assert values["fullnameOverride"] == "sealed-secrets-controller"


def test_bootstrap_copies_match_their_sources() -> None:
    copies = {p.name: load_docs(p.read_text()) for p in BOOTSTRAP_DIR.glob("*.yaml")}
    assert copies["project-bootstrap.yaml"] == (find(render("argocd-projects"), "AppProject", "hfo-bootstrap"),)
    root = load_docs((REPO_ROOT / "argocd/clusters/aws/root.yaml").read_text())
    assert copies["root-aws.yaml"] == root


@pytest.mark.parametrize("cluster", ["laptop", "aws"])
def test_root_application_syncs_its_cluster_apps(cluster: str) -> None:
    (root,) = load_docs((REPO_ROOT / f"argocd/clusters/{cluster}/root.yaml").read_text())
    assert root["spec"]["source"]["path"] == KUSTOMIZATIONS[CLUSTERS[cluster]]
    assert root["spec"]["project"] == "hfo-bootstrap"
    assert root["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_argocd_polls_git_every_minute() -> None:
    chart = next(d for d in bootstrap_docs() if d["kind"] == "HelmChart")
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["configs"]["cm"]["timeout.reconciliation"] == "60s"
    assert values["dex"]["enabled"] is False and values["notifications"]["enabled"] is False
    assert chart["spec"]["targetNamespace"] == "argocd" and chart["spec"]["createNamespace"] is True
    assert values["fullnameOverride"] == "argocd", "docs/argocd.md uses svc/argocd-server"


def test_kube_prometheus_stack_finds_our_monitors_and_dashboard() -> None:
    values = yaml.safe_load((REPO_ROOT / "k8s/monitoring/kube-prometheus-stack-values.yaml").read_text())
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    dashboard = find(render("monitoring-laptop"), "ConfigMap", "hfo-dashboard")
    assert dashboard["metadata"]["namespace"] == sidecar["searchNamespace"]
    assert dashboard["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    admin = values["grafana"]["admin"]
    sealed = find(render("platform-laptop"), "SealedSecret", admin["existingSecret"])
    assert sealed["metadata"]["namespace"] == "monitoring"
    assert {admin["userKey"], admin["passwordKey"]} == set(sealed["spec"]["encryptedData"])


def test_service_monitors_select_existing_services_and_ports() -> None:
    docs = render("laptop")
    for monitor in of_kind(render("monitoring-laptop"), "ServiceMonitor"):
        want = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in of_kind(docs, "Service")
            if want.items() <= s["metadata"].get("labels", {}).items()
            and s["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        ]
        assert len(services) == 1, f"{monitor['metadata']['name']} selects {len(services)} services"
        ports = {p["name"] for p in services[0]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} == ports


def test_sealed_secrets_feed_the_volumes_that_use_them() -> None:
    for overlay in ("laptop", "aws"):
        docs = render(overlay)
        sealed = {d["metadata"]["name"]: set(d["spec"]["encryptedData"]) for d in of_kind(docs, "SealedSecret")}
        # service-account-token Secrets are filled in by the cluster with these keys
        sealed |= {
            d["metadata"]["name"]: {"token", "ca.crt", "namespace"}
            for d in of_kind(docs, "Secret")
            if d.get("type") == "kubernetes.io/service-account-token"
        }
        for d in docs:
            spec = pod_spec(d)
            for vol in (spec or {}).get("volumes", []):
                if "secret" in vol:
                    name = vol["secret"]["secretName"]
                    assert name in sealed, f"{ident(d)} mounts {name}, which no SealedSecret provides"
                    assert {i["key"] for i in vol["secret"]["items"]} <= sealed[name]


def test_config_files_referenced_by_env_exist_in_mounts() -> None:
    docs = render("laptop")
    site = find(docs, "Deployment", "hfo-site")
    bot = find(docs, "StatefulSet", "bot")
    pairs = [
        (container(site, "health"), "HFO_HMAC_SECRET_FILE"),
        (container(site, "health"), "HFO_DETAILS_TOKEN_FILE"),
        (container(site, "agent"), "HFO_HMAC_SECRET_FILE"),
        (container(bot, "bot"), "DISCORD_TOKEN_FILE"),
    ]
    volumes = {v["name"]: v for d in (site, bot) for v in pod_spec(d)["volumes"]}
    for c, var in pairs:
        path = Path(env_value(c, var, docs))
        mount = next(m for m in c["volumeMounts"] if Path(m["mountPath"]) == path.parent)
        items = {i["path"] for i in volumes[mount["name"]]["secret"]["items"]}
        assert path.name in items, f"{c['name']}: {var}={path} is not a mounted file"
