"""Terraform in tests: find the binary and an offline mirror of the hashicorp/aws provider, and
run the project's real modules in a scratch copy of the repository's terraform/ tree.

No machine path is hard-coded: the mirror comes from HFO_TF_PROVIDER_MIRROR, or from a bounded
search of the usual places. A scratch CLI configuration points Terraform at it (and only at it),
so nothing is fetched from the network and the user's own ~/.terraformrc is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tftest
from hfo_drill import terraform as _shared

from testsupport.tools import REPO_ROOT, in_ci, require_tool

# The mirror lookup, the CLI configuration and the working copy live in package code, shared
# with the drill (`make demo` applies the same example without pytest).
PROVIDER_SOURCE = _shared.PROVIDER_SOURCE
MIRROR_ENV = _shared.MIRROR_ENV
# Where mirrors usually live, searched a few levels deep (never the whole disk).
SEARCH_ROOTS = _shared.SEARCH_ROOTS
SEARCH_DEPTH = _shared.SEARCH_DEPTH
write_cli_config = _shared.write_cli_config


def find_provider_mirror(env: Mapping[str, str] | None = None, roots: tuple[str, ...] = SEARCH_ROOTS) -> Path | None:
    """The directory holding registry.terraform.io/hashicorp/aws/..., or None.

    HFO_TF_PROVIDER_MIRROR wins when set (and must then be right); otherwise the first mirror
    found in the usual places."""
    environ = os.environ if env is None else env
    try:
        return _shared.find_provider_mirror(environ, roots)
    except _shared.TerraformUnavailable as exc:
        if environ.get(MIRROR_ENV, "").strip():
            pytest.fail(str(exc), pytrace=False)
        return None


@dataclass(frozen=True)
class TerraformEnv:
    """Everything needed to run terraform offline: the binary and the environment."""

    binary: str
    env: dict[str, str]

    def run(self, args: list[str], cwd: Path, timeout: float = 300, extra_env: Mapping[str, str] | None = None):
        return subprocess.run(
            [self.binary, *args],
            cwd=cwd,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def terraform_env(scratch: Path) -> TerraformEnv:
    """Locate terraform and the provider mirror (skip loudly, or fail under CI, when missing)."""
    binary = require_tool("terraform", shutil.which("terraform"), "install Terraform >= 1.11 and put it on PATH")
    mirror = find_provider_mirror()
    if mirror is None:
        message = (
            f"no offline mirror of {PROVIDER_SOURCE} found (set {MIRROR_ENV} to a directory holding "
            f"{PROVIDER_SOURCE}/<version>/<os_arch>/, e.g. made by `terraform providers mirror`)"
        )
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    scratch.mkdir(parents=True, exist_ok=True)
    cli_config = write_cli_config(scratch / "terraform.rc", mirror)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check call to HashiCorp
        }
    )
    return TerraformEnv(binary=binary, env=env)


def working_copy(dest: Path) -> Path:
    """A scratch copy of terraform/ and the files the example reads, laid out as in the
    repository, so init writes .terraform/ and lock files there and never in the worktree."""
    return _shared.working_copy(REPO_ROOT, dest)


def module_dirs(tree: Path) -> list[Path]:
    """Every root a user or a test runs terraform in: each module and each example."""
    return sorted(p for p in [*(tree / "modules").iterdir(), *(tree / "examples").iterdir()] if p.is_dir())


@dataclass
class Stack:
    """One root module applied against an emulator, driven through tftest."""

    tf: tftest.TerraformTest
    directory: Path
    var_file: Path
    aws_env: dict[str, str]
    destroyed: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)

    def apply(self) -> None:
        self.tf.apply(tf_var_file=str(self.var_file))
        self.outputs = {k: v for k, v in self.tf.output().items()}

    def plan(self) -> tftest.TerraformPlanOutput:
        return self.tf.plan(output=True, tf_var_file=str(self.var_file))

    def destroy(self) -> None:
        self.tf.destroy(tf_var_file=str(self.var_file))
        self.destroyed = True


def make_stack(
    tfenv: TerraformEnv, directory: Path, variables: Mapping[str, Any], aws_env: Mapping[str, str],
    secret_env: Mapping[str, str] | None = None,
) -> Stack:  # fmt: skip
    """Init a root module for the emulator. Variables go in a JSON var file; ephemeral secret
    values only through the environment (TF_VAR_*), never on a command line or on disk."""
    var_file = directory / "test.auto.tfvars.json"
    var_file.write_text(json.dumps(dict(variables), indent=2, sort_keys=True), encoding="utf-8")
    env = {**tfenv.env, **aws_env, **(secret_env or {})}
    tf = tftest.TerraformTest(str(directory), binary=tfenv.binary, env=env)
    tf.setup(cleanup_on_exit=False)
    return Stack(tf=tf, directory=directory, var_file=var_file, aws_env=dict(aws_env))


def resource_changes(plan: tftest.TerraformPlanOutput) -> list[tuple[str, list[str]]]:
    """(address, actions) of every resource the plan would touch (no-op and read excluded)."""
    changes = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions not in (["no-op"], ["read"]):
            changes.append((change["address"], actions))
    return changes
