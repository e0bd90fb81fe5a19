"""Locate external tools. Missing tools skip their tests loudly, except under CI=true where a
missing tool is a failure: CI must never go green by skipping what it was meant to check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str, path: str | None, why: str) -> str:
    """Return the tool's path, or skip (fail under CI) with a reason that says how to get it."""
    if path and Path(path).exists():
        return path
    message = f"{name} not found ({why})"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")
    raise AssertionError("unreachable")


def checkov_bin() -> str:
    path = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    return require_tool("checkov", str(path), "run `make checkov-venv`")


def which(name: str) -> str:
    return require_tool(name, shutil.which(name), f"install {name} and put it on PATH")
