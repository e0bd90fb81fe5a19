"""``argocd/set_repo_url.py``: the one command that points both clusters' Argo CD at a fork."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testsupport.k8s import kustomize_build, load_docs
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.k8s

SCRIPT = REPO_ROOT / "argocd" / "set_repo_url.py"
FORK = "https://github.com/alice/hybrid-failover.git"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "argocd"
    shutil.copytree(REPO_ROOT / "argocd", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.yaml")):
        h.update(p.read_bytes())
    return h.hexdigest()


def _git_urls(root: Path) -> set[str]:
    docs = [d for c in ("laptop", "aws") for d in load_docs(kustomize_build(root / "clusters" / c / "apps"))]
    docs += [d for p in root.rglob("*.yaml") if "kustomization" not in p.name for d in load_docs(p.read_text())]
    urls: set[str] = set()
    for d in docs:
        if d.get("kind") == "Application":
            sources = [d["spec"]["source"]] if "source" in d["spec"] else d["spec"]["sources"]
            urls |= {s["repoURL"] for s in sources if "chart" not in s}
        if d.get("kind") == "AppProject":
            urls |= {u for u in d["spec"]["sourceRepos"] if "github.com" in u}
    return urls


def test_rewrites_every_occurrence_and_nothing_else(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    quickstart = tmp_path / "main.tf"
    shutil.copy(REPO_ROOT / "terraform" / "examples" / "quickstart" / "main.tf", quickstart)
    before = _git_urls(root)
    assert len(before) == 1
    (old,) = before
    assert f'"git::{old}//terraform/modules/hybrid-failover?ref=' in quickstart.read_text()
    proc = _run(FORK, "--dir", str(root), "--quickstart", str(quickstart))
    assert proc.returncode == 0, proc.stderr
    # the Terraform root users deploy takes its module from the same fork
    assert f'source = "git::{FORK}//terraform/modules/hybrid-failover?ref=main"' in quickstart.read_text()
    assert old not in quickstart.read_text()
    assert _git_urls(root) == {FORK}
    assert not any(old in p.read_text() for p in root.rglob("*.yaml"))
    # chart repositories are untouched
    assert "https://bitnami-labs.github.io/sealed-secrets" in (root / "projects" / "hfo-platform.yaml").read_text()
    assert "argoproj.github.io/argo-helm" in (root / "bootstrap" / "argo-cd.yaml").read_text()
    again = _run(FORK, "--dir", str(root), "--quickstart", str(quickstart))
    assert again.returncode == 0 and "already set" in again.stdout


@pytest.mark.parametrize("bad", ["github.com/alice/hfo", "http://github.com/alice/hfo.git", "https://", ""])
def test_refuses_a_non_git_url_and_changes_nothing(tmp_path: Path, bad: str) -> None:
    root = _copy(tmp_path)
    digest = _digest(root)
    proc = _run(bad, "--dir", str(root), "--quickstart", str(tmp_path / "main.tf"))
    assert proc.returncode == 2
    assert "is not a Git URL" in proc.stderr
    assert _digest(root) == digest
