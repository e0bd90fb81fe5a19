"""The workload images: `make images` builds both for linux/amd64 and linux/arm64 (a standby on arm64 and
a laptop on amd64 run the same tags), each from the right context, tagged as k8s/base/kustomization.yaml
says; tools/images/refs.py reads those references exactly as kustomize renders them (the Terraform module
and the standby's pre-pull read the same list). Docker cannot build here: the target is checked with
`make -n`, the Dockerfiles with hadolint (tests/site) and their COPY sources against their contexts."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from testsupport.k8s import kustomize_build, load_docs, render
from testsupport.tools import REPO_ROOT, which

pytestmark = pytest.mark.k8s

REFS = REPO_ROOT / "tools" / "images" / "refs.py"
PLATFORMS = "linux/amd64,linux/arm64"


def refs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REFS), *args], capture_output=True, text=True, timeout=60, check=False)


def images_of(docs: tuple[dict, ...]) -> set[str]:
    found = set()
    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            found.add(c["image"])
    return found


def buildx_commands() -> list[list[str]]:
    make = which("make")
    proc = subprocess.run(
        [make, "-n", "images"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.splitlines() if line.startswith("docker buildx build ")]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_make_images_builds_both_images_for_both_platforms_and_pushes() -> None:
    builds = buildx_commands()
    assert len(builds) == 2
    by_file = {option(b, "--file"): b for b in builds}
    assert set(by_file) == {"bot/Dockerfile", "healthcheck/Dockerfile"}
    for argv in builds:
        assert option(argv, "--platform") == PLATFORMS
        assert "--push" in argv  # a multi-platform image lives in a registry, not in the local store
    # the contexts: the bot builds from bot/, the site image needs protocol/ too, so the repository root
    assert by_file["bot/Dockerfile"][-1] == "bot"
    assert by_file["healthcheck/Dockerfile"][-1] == "."
    assert option(by_file["bot/Dockerfile"], "--tag") == refs("--tag", "hfo-bot").stdout.strip()
    assert option(by_file["healthcheck/Dockerfile"], "--tag") == refs("--tag", "hfo-site").stdout.strip()


@pytest.mark.parametrize(("dockerfile", "context"), [("bot/Dockerfile", "bot"), ("healthcheck/Dockerfile", ".")])
def test_every_copy_source_exists_in_its_build_context(dockerfile: str, context: str) -> None:
    sources = []
    for line in (REPO_ROOT / dockerfile).read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += shlex.split(line)[1:-1]
    assert sources
    missing = [s for s in sources if not (REPO_ROOT / context / s).exists()]
    assert missing == [], f"{dockerfile} copies {missing}, which are not in its context {context}/"


def test_refs_render_the_images_as_kustomize_does(tmp_path: Path) -> None:
    assert set(refs().stdout.split()) == images_of(render("aws")) == images_of(render("laptop"))
    # with a digest too, and an image without a tag
    base = tmp_path / "base"
    shutil.copytree(REPO_ROOT / "k8s" / "base", base)
    kustomization = base / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    digest = "sha256:" + "ab" * 32
    doc["images"][0]["digest"] = digest
    del doc["images"][1]["newTag"]
    kustomization.write_text(yaml.safe_dump(doc))
    rendered = images_of(load_docs(kustomize_build(base)))
    listed = set(refs("--kustomization", str(kustomization)).stdout.split())
    assert listed == rendered
    assert any(i.endswith(f":0.1.0@{digest}") for i in listed)
    # a build is tagged without the digest (it has none yet)
    name = doc["images"][0]["name"]
    assert "@" not in refs("--kustomization", str(kustomization), "--tag", name).stdout


def test_the_placeholder_owner_stops_make_images_first(tmp_path: Path) -> None:
    check = refs("--check")
    assert check.returncode == 1
    assert "still name the placeholder owner your-github-user" in check.stderr
    owned = tmp_path / "kustomization.yaml"
    owned.write_text(
        re.sub("ghcr.io/your-github-user/", "ghcr.io/alice/", (REPO_ROOT / "k8s/base/kustomization.yaml").read_text())
    )
    assert refs("--kustomization", str(owned), "--check").returncode == 0
    assert refs("--kustomization", str(owned), "hfo-bot").stdout.strip() == "ghcr.io/alice/hfo-bot:0.1.0"
    unknown = refs("--kustomization", str(owned), "hfo-nothing")
    assert unknown.returncode == 2 and "no image named 'hfo-nothing'" in unknown.stderr
