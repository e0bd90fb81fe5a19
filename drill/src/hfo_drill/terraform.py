"""Terraform for the drill: find the binary and an offline mirror of the hashicorp/aws provider,
copy the repository's terraform/ tree to a scratch directory, and init + apply the complete
example against the AWS emulator.

The mirror lookup, the CLI configuration and the working copy are shared with the Terraform
tests (tests/testsupport/terraform.py uses them from here): HFO_TF_PROVIDER_MIRROR wins when set
(and must then hold the provider), otherwise a bounded search of the usual places. A scratch
CLI configuration installs hashicorp/aws from the mirror and from nowhere else, so nothing is
fetched from the network and the user's ~/.terraformrc is never read. Everything Terraform
writes (.terraform/, lock file, state) stays in the scratch copy.

Anything missing (no terraform on PATH, no mirror, no terraform/ tree next to this package) is a
`TerraformUnavailable` whose message says what and how to fix it; the drill then creates the
same resources directly and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfo_drill.proc import Child, spawn

PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
MIRROR_ENV = "HFO_TF_PROVIDER_MIRROR"
SEARCH_ROOTS = (
    "/opt",
    "/usr/local/share/terraform",
    "/usr/share/terraform",
    "/var/lib/terraform",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/srv",
)
SEARCH_DEPTH = 3
EXAMPLE = Path("terraform") / "examples" / "complete"


class TerraformUnavailable(Exception):
    """Terraform cannot be used here; the message says why and what would fix it."""


class TerraformFailed(Exception):
    """terraform init or apply failed; the message carries the end of its output."""


def _has_aws_provider(mirror: Path) -> bool:
    base = mirror / PROVIDER_SOURCE
    return any(base.glob("*/*/terraform-provider-aws*")) or any(base.glob("terraform-provider-aws_*.zip"))


def _candidates(root: Path, depth: int) -> Iterator[Path]:
    yield root
    if depth == 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        yield from _candidates(child, depth - 1)


def find_provider_mirror(env: Mapping[str, str], roots: tuple[str, ...] = SEARCH_ROOTS) -> Path:
    configured = env.get(MIRROR_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not _has_aws_provider(path):
            raise TerraformUnavailable(f"{MIRROR_ENV}={configured} holds no {PROVIDER_SOURCE} provider")
        return path
    for root in roots:
        base = Path(root).expanduser()
        if not base.is_dir():
            continue
        for candidate in _candidates(base, SEARCH_DEPTH):
            if (candidate / PROVIDER_SOURCE).is_dir() and _has_aws_provider(candidate):
                return candidate
    raise TerraformUnavailable(
        f"no offline mirror of {PROVIDER_SOURCE} found (set {MIRROR_ENV} to a directory holding "
        f"{PROVIDER_SOURCE}/<version>/<os_arch>/, e.g. made by `terraform providers mirror`)"
    )


def find_repo_root(starts: tuple[Path, ...] | None = None) -> Path:
    """The checkout holding terraform/examples/complete: above this package (an editable
    install, as `make venv` makes) or above the current directory."""
    here = Path(__file__).resolve()
    for start in starts or (here.parent, Path.cwd()):
        for directory in (start, *start.parents):
            if (directory / EXAMPLE / "main.tf").is_file():
                return directory
    raise TerraformUnavailable(f"no {EXAMPLE}/ found in this checkout (the Terraform code is not here yet)")


def write_cli_config(path: Path, mirror: Path) -> Path:
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        f'    include = ["{PROVIDER_SOURCE}"]\n'
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    return path


# The owner a deployment's checkout names instead of the repository's placeholder (docs/walkthrough.md
# step 2: its fork in argocd/, its registry in k8s/base/kustomization.yaml). The module refuses the
# placeholder at plan time, so a copy applied here names this sample owner.
PLACEHOLDER_OWNER = "your-github-user"
SAMPLE_OWNER = "hfo-example"


def working_copy(repo: Path, dest: Path) -> Path:
    """terraform/ and what the module reads from the repository (argocd/bootstrap, the images of
    k8s/base/kustomization.yaml) copied under `dest` as laid out in the repository, with the sample
    owner for the placeholder, and without any .terraform/, state or auto-loaded variable files of
    the checkout, so init writes its files there and never in the checkout. Returns dest/terraform."""
    ignore = shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.auto.tfvars*")
    shutil.copytree(repo / "terraform", dest / "terraform", ignore=ignore)
    copied: list[Path] = []
    bootstrap = repo / "argocd" / "bootstrap"
    if bootstrap.is_dir():
        shutil.copytree(bootstrap, dest / "argocd" / "bootstrap")
        copied += sorted((dest / "argocd" / "bootstrap").glob("*.yaml"))
    kustomization = repo / "k8s" / "base" / "kustomization.yaml"
    if kustomization.is_file():
        (dest / "k8s" / "base").mkdir(parents=True)
        copied.append(Path(shutil.copy2(kustomization, dest / "k8s" / "base" / "kustomization.yaml")))
    for path in copied:
        path.write_text(path.read_text(encoding="utf-8").replace(PLACEHOLDER_OWNER, SAMPLE_OWNER), encoding="utf-8")
    return dest / "terraform"


def lambda_package(repo: Path, scratch: Path) -> tuple[Path, str]:
    """The zip Terraform uploads: the real package when `make lambda-zip` has built it, else
    the watchdog's sources alone (moto stores the code and never runs it; the drill runs the
    handlers in its own process). Returns the path and a sentence saying which."""
    built = repo / "build" / "lambda" / "hfo-watchdog.zip"
    if built.is_file():
        return built, f"the Lambda package built by `make lambda-zip` ({built.relative_to(repo)})"
    out = scratch / "hfo-watchdog-sources.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in (repo / "lambda" / "src" / "hfo_watchdog", repo / "protocol" / "src" / "hfo_protocol"):
            for path in sorted(package.rglob("*.py")):
                info = zipfile.ZipInfo(str(path.relative_to(package.parent)), date_time=(2020, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes())
    return out, "a zip of the watchdog's sources (no `make lambda-zip` package here; moto never runs it)"


@dataclass
class Terraform:
    binary: str
    mirror: Path
    repo: Path
    scratch: Path
    env: dict[str, str]

    @classmethod
    def locate(cls, scratch: Path, environ: Mapping[str, str] | None = None) -> Terraform:
        environ = os.environ if environ is None else environ
        binary = shutil.which("terraform", path=environ.get("PATH"))
        if binary is None:
            raise TerraformUnavailable("terraform is not on PATH (install Terraform >= 1.11)")
        mirror = find_provider_mirror(environ)
        repo = find_repo_root()
        scratch.mkdir(parents=True, exist_ok=True)
        cli_config = write_cli_config(scratch / "terraform.rc", mirror)
        env = {k: v for k, v in environ.items() if not k.startswith(("TF_", "AWS_"))}
        env.update(
            {
                "TF_CLI_CONFIG_FILE": str(cli_config),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",  # no version check call to HashiCorp
            }
        )
        return cls(binary=binary, mirror=mirror, repo=repo, scratch=scratch, env=env)

    def working_copy(self) -> Path:
        """The complete example in a scratch copy of the checkout's terraform/ tree."""
        return working_copy(self.repo, self.scratch / "tree") / "examples" / "complete"


@dataclass
class Applied:
    outputs: dict[str, Any]
    seconds: float
    resources: str  # the "Apply complete!" line


def _run(
    tf: Terraform,
    name: str,
    args: list[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    register: Callable[[Child], None],
) -> str:
    log = tf.scratch / f"terraform-{name}.log"
    child = spawn(f"terraform {name}", [tf.binary, *args], env, log_path=log, cwd=cwd)
    register(child)
    deadline = time.monotonic() + timeout_s
    while child.proc.poll() is None:
        if time.monotonic() > deadline:
            child.terminate(5)
            raise TerraformFailed(f"terraform {name} did not finish within {timeout_s:.0f}s:\n{child.log_tail(20)}")
        time.sleep(0.2)
    text = log.read_text(errors="replace")
    if child.proc.returncode != 0:
        raise TerraformFailed(f"terraform {name} failed (exit {child.proc.returncode}):\n{child.log_tail(25)}")
    return text


def apply_example(
    tf: Terraform,
    variables: Mapping[str, Any],
    aws_env: Mapping[str, str],
    secret_env: Mapping[str, str],
    register: Callable[[Child], None],
    *,
    timeout_s: float = 420,
) -> Applied:
    """init + apply the complete example with `variables` (a JSON var file in the scratch copy)
    and ephemeral secret values through TF_VAR_* only (never on a command line or on disk)."""
    directory = tf.working_copy()
    (directory / "drill.auto.tfvars.json").write_text(json.dumps(dict(variables), indent=2, sort_keys=True))
    env = {**tf.env, **aws_env}
    started = time.monotonic()
    _run(tf, "init", ["init", "-no-color", "-input=false"], directory, env, 120, register)
    text = _run(
        tf, "apply", ["apply", "-no-color", "-input=false", "-auto-approve"], directory, {**env, **secret_env},
        timeout_s, register,
    )  # fmt: skip
    seconds = time.monotonic() - started
    summary = next((line for line in text.splitlines() if line.startswith("Apply complete!")), "")
    out = subprocess.run(  # noqa: S603 - the located terraform binary, fixed arguments
        [tf.binary, "output", "-no-color", "-json"], cwd=directory, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise TerraformFailed(f"terraform output failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    raw = json.loads(out.stdout)
    return Applied({k: v["value"] for k, v in raw.items()}, seconds, summary)
