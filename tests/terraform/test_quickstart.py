"""docs/terraform.md#quick-start, run as written, from a folder outside the repository, against an AWS
emulator of its own that behaves like a new account (Lambda concurrency quota 10).

The stand-ins, each for what cannot run here, and nothing else:
- GitHub: the user's fork is a Git repository on disk, made from this checkout after the documented
  step 2 of docs/walkthrough.md (`set_repo_url.py`, the image owner); the module source keeps its
  documented `git::...//terraform/modules/hybrid-failover?ref=main` form, with a file:// URL for
  https://github.com/... (the same Git getter fetches both);
- `make lambda-zip` in the clone: the package this suite builds is put where that target writes it;
- AWS: the moto server, reached through AWS_ENDPOINT_URL and AWS_MAX_ATTEMPTS, which the AWS provider
  reads (provider documentation: max_retries "can also be set using the environment variable
  AWS_MAX_ATTEMPTS"), so the documented root needs no emulator setting at all.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hfo_drill.moto_server import MotoServer, moto_server
from testsupport.docs import blocks, logical_lines
from testsupport.standby_node import decode_parameters
from testsupport.terraform import TerraformEnv
from testsupport.tools import REPO_ROOT, which

pytestmark = [pytest.mark.terraform, pytest.mark.moto, pytest.mark.slow]

FORK = "https://github.com/alice/hybrid-failover.git"
OWNER = "alice"
REGION = "eu-west-3"  # terraform/examples/quickstart/terraform.tfvars.example


def quick_start_commands() -> list[str]:
    """The command lines of the first shell block under docs/terraform.md's "Quick start"."""
    page = REPO_ROOT / "docs" / "terraform.md"
    text = page.read_text(encoding="utf-8")
    start = text.index("\n## Quick start\n")
    block = next(b for b in blocks(page) if b.is_shell and text.index(b.text) > start)
    return logical_lines(block)


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [which("git"), "-c", "user.name=alice", "-c", "user.email=alice@example.com", "-c", "init.defaultBranch=main",
         *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def new_account() -> Iterator[MotoServer]:
    """A moto server of this module's own; like a new AWS account, its concurrency quota is 10."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        mp.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "10")
        with moto_server() as server:
            yield server


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, lambda_zip: Path) -> dict[str, Path]:
    """The fork ("GitHub"), the user's clone next to where the stack folder will be, after step 2."""
    root = tmp_path_factory.mktemp("quickstart")
    origin = root / "github" / "hybrid-failover"
    origin.mkdir(parents=True)
    git("init", "--bare", "--quiet", str(origin), cwd=root)
    clone = root / "home" / "hybrid-failover"
    source = root / "source"
    for part in ("terraform", "argocd", "k8s", "Makefile", "mk", "tools"):
        src = REPO_ROOT / part
        ignore = shutil.ignore_patterns(".terraform*", "*.tfstate*", "__pycache__")
        if src.is_dir():
            shutil.copytree(src, source / part, ignore=ignore)
        else:
            shutil.copy2(src, source / part)
    git("init", "--quiet", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "--quiet", "-m", "hybrid-failover", cwd=source)
    git("push", "--quiet", str(origin), "HEAD:main", cwd=source)
    git("clone", "--quiet", str(origin), str(clone), cwd=root)
    # docs/walkthrough.md step 2: the fork's URL and the image owner, committed and pushed
    set_url = subprocess.run(
        [sys.executable, "argocd/set_repo_url.py", FORK], cwd=clone, capture_output=True, text=True, check=False
    )
    assert set_url.returncode == 0, set_url.stderr
    kustomization = clone / "k8s" / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("ghcr.io/your-github-user/", f"ghcr.io/{OWNER}/"))
    git("commit", "--quiet", "-am", "My fork and my registry", cwd=clone)
    git("push", "--quiet", "origin", "HEAD:main", cwd=clone)
    return {"root": root, "origin": origin, "clone": clone, "lambda_zip": lambda_zip}


@pytest.fixture(scope="module")
def applied(workspace: dict[str, Path], new_account: MotoServer, tfenv: TerraformEnv) -> dict[str, object]:
    """The quick start's commands, in order, in one bash session started in the clone."""
    commands = quick_start_commands()
    assert commands[0].startswith("make lambda-zip")
    script = ["set -euo pipefail"]
    for line in commands:
        if line.startswith("make lambda-zip"):
            # what `make lambda-zip` writes (tests/terraform/test_lambda_build.py builds it the same way)
            script.append(f"mkdir -p build/lambda && cp {workspace['lambda_zip']} build/lambda/hfo-watchdog.zip")
            continue
        if line.startswith("terraform init"):
            # GitHub's URL for the fork on disk, in the module source set_repo_url.py wrote
            script.append(f"sed -i 's#git::{FORK}//#git::file://{workspace['origin']}//#' main.tf")
        script.append(line)
    script.append("pwd > ../stack-dir")
    env = {
        **{k: v for k, v in tfenv.env.items() if k != "TF_INPUT"},  # `terraform apply` asks, the test answers
        **new_account.env(),
        "AWS_MAX_ATTEMPTS": "2",
        "PATH": tfenv.env["PATH"],
    }
    proc = subprocess.run(
        [which("bash"), "-c", "\n".join(script)], cwd=workspace["clone"], env=env, input="yes\n",
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stack = Path((workspace["clone"].parent / "stack-dir").read_text().strip())
    out = subprocess.run(
        [tfenv.binary, "output", "-json"], cwd=stack, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return {
        "stack": stack,
        "stdout": proc.stdout,
        "outputs": {k: v["value"] for k, v in json.loads(out.stdout).items()},
    }


def aws(moto: MotoServer, service: str):
    return boto3.client(
        service, endpoint_url=moto.endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def test_the_stack_folder_is_outside_the_repository(applied: dict[str, object], workspace: dict[str, Path]) -> None:
    stack = applied["stack"]
    assert isinstance(stack, Path)
    assert not stack.is_relative_to(workspace["clone"]) and not stack.is_relative_to(REPO_ROOT)
    assert {p.name for p in stack.glob("*.tf")} == {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    assert "Apply complete!" in str(applied["stdout"])


def test_the_documented_next_steps_are_printed(applied: dict[str, object]) -> None:
    outputs = applied["outputs"]
    assert isinstance(outputs, dict)
    assert "aws ssm put-parameter --overwrite --type SecureString --region eu-west-3 --name /hfo/hmac-keyring" in str(
        applied["stdout"]
    )
    assert outputs["instance_id"] in outputs["next_steps"]


def test_the_defaults_apply_on_a_new_account(applied: dict[str, object], new_account: MotoServer) -> None:
    """A reservation would be refused where the quota is 10; the defaults reserve nothing."""
    outputs = applied["outputs"]
    assert isinstance(outputs, dict)
    lam = aws(new_account, "lambda")
    for name in outputs["function_names"].values():
        assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert outputs["watchdog"]["reserved_concurrency"] == {"tick": -1, "heartbeat": -1}


def test_the_standby_gets_the_forks_manifests_and_images(applied: dict[str, object], new_account: MotoServer) -> None:
    outputs = applied["outputs"]
    assert isinstance(outputs, dict)
    path = outputs["standby"]["parameter_path"]
    ssm = aws(new_account, "ssm")
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    parameters = {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}
    files = decode_parameters(parameters, path)
    root_app = files["manifests/root-aws.yaml"].decode()
    assert re.search(rf"repoURL: {re.escape(FORK)}$", root_app, re.M)
    assert files["images"].decode().split() == [f"ghcr.io/{OWNER}/hfo-site:0.1.0", f"ghcr.io/{OWNER}/hfo-bot:0.1.0"]
    assert outputs["standby"]["workload_images"] == files["images"].decode().split()
