"""The docs this area owns stay true: the commands that can run here run, the files they name exist, the
kubeseal commands name every SealedSecret the manifests render, and their links point at real sections."""

from __future__ import annotations

import re
import subprocess

import pytest
from testsupport.k8s import find, kustomize_build, of_kind, render
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.k8s

DOCS = ("docs/kubernetes.md", "docs/argocd.md", "docs/walkthrough.md", "k8s/schemas/README.md")
# Written by other parts of the project; linked from here.
ELSEWHERE = {"docs/terraform.md"}


def text(name: str) -> str:
    return (REPO_ROOT / name).read_text()


def test_every_kustomize_command_in_the_docs_runs() -> None:
    commands = {
        m.group(1): m.group(2)
        for doc in DOCS
        for m in re.finditer(r"kubectl kustomize ([\w./-]*\w)(?: \| grep (?:-E )?'([^']+)')?", text(doc))
    }
    assert {"k8s/overlays/laptop", "k8s/overlays/aws"} <= set(commands)
    for path, pattern in commands.items():
        output = kustomize_build(REPO_ROOT / path)
        if pattern:
            assert re.search(pattern, output), f"`kubectl kustomize {path} | grep {pattern}` would print nothing"


def test_files_the_docs_name_exist() -> None:
    for doc in DOCS:
        for path in set(re.findall(r"(?<![\w/.-])((?:k8s|argocd|bot|docs)/[\w./-]*\w)", text(doc))):
            if path in ELSEWHERE or "*" in path:
                continue
            assert (REPO_ROOT / path).exists(), f"{doc} names {path}, which does not exist"


def test_walkthrough_seals_every_secret_the_manifests_need() -> None:
    walkthrough = text("docs/walkthrough.md")
    sealed = [d for name in ("laptop", "platform-laptop") for d in of_kind(render(name), "SealedSecret")]
    assert len(sealed) == 4
    for doc in sealed:
        ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
        assert f"seal {ns} {name}" in walkthrough, f"no kubeseal command for {ns}/{name}"
        for key in doc["spec"]["encryptedData"]:
            assert re.search(rf"\b{re.escape(key)}\b", walkthrough), f"{ns}/{name} key {key} not explained"
        assert f"`{name}`" in text("docs/kubernetes.md")


def test_walkthrough_covers_the_issue_steps_in_order() -> None:
    walkthrough = text("docs/walkthrough.md")
    headings = re.findall(r"^## \d+\. (.+)$", walkthrough, re.M)
    steps = [
        "K3s on the laptop",
        "Tailscale and Funnel",
        "Seal the secrets",
        "terraform apply",
        "Bootstrap the standby",
        "Bootstrap the laptop's Argo CD",
        "First failover drill",
        "What to watch",
    ]
    assert [h for h in headings if h in steps] == steps
    drill = walkthrough.split("## 9. First failover drill", 1)[1]
    assert "hfo drill --minutes 10" in drill and "Grafana" in drill and "Argo CD" in drill


def _anchors(doc: str) -> set[str]:
    heads = re.findall(r"^#+ (.+)$", text(doc), re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in heads}


def test_cross_links_point_at_real_sections() -> None:
    for doc in DOCS:
        for target, anchor in re.findall(r"\]\(([\w.]+\.md)#([\w-]+)\)", text(doc)):
            assert anchor in _anchors(f"docs/{target}"), f"{doc} links to {target}#{anchor}"


def test_ui_commands_name_the_services_the_charts_create() -> None:
    argocd, walkthrough = text("docs/argocd.md"), text("docs/walkthrough.md")
    assert "svc/argocd-server" in argocd  # fullnameOverride: argocd (tests/k8s/test_crosschecks.py)
    kps = find(render("argocd-laptop"), "Application", "kube-prometheus-stack")
    release = kps["spec"]["sources"][0]["helm"]["releaseName"]
    assert f"svc/{release}-grafana" in walkthrough


def test_documented_shell_helper_is_valid_shell() -> None:
    helper = re.search(r"^(seal\(\) \{.*\})$", text("docs/walkthrough.md"), re.M)
    assert helper
    proc = subprocess.run(["bash", "-n", "-c", helper.group(1)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--raw --scope strict" in helper.group(1)
