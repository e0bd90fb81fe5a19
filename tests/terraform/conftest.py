"""Fixtures of the Terraform tests: terraform with the offline provider mirror, the Lambda
package, and an AWS emulator of their own (other tests reset the shared one between tests,
which would wipe a stack applied once for the whole module)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hfo_drill.moto_server import MotoServer, moto_server
from testsupport.terraform import TerraformEnv, terraform_env
from testsupport.tools import REPO_ROOT, in_ci


@pytest.fixture(scope="session")
def tfenv(tmp_path_factory: pytest.TempPathFactory) -> TerraformEnv:
    return terraform_env(tmp_path_factory.mktemp("terraform-cli"))


@pytest.fixture(scope="session")
def tf_moto() -> Iterator[MotoServer]:
    """A moto server only the Terraform tests use. AWS's managed IAM policies (the standby
    attaches AmazonSSMManagedInstanceCore) are loaded, as they exist in every real account; like a
    new account, its Lambda concurrency quota is 10, so no reservation fits (the defaults make none)."""
    with moto_server(
        extra_env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_LAMBDA_CONCURRENCY_QUOTA": "10"}
    ) as server:
        yield server


def load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hfo_lambda_build", REPO_ROOT / "lambda" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def lambda_build() -> ModuleType:
    return load_build_module()


@pytest.fixture(scope="session")
def lambda_zip(lambda_build: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real package, built offline from the wheelhouse `make lambda-zip` filled."""
    wheelhouse = lambda_build.DEFAULT_WHEELHOUSE
    if not any(Path(wheelhouse).glob("*.whl")):
        message = f"no wheels in {wheelhouse}: run `make lambda-zip` first (it downloads the pinned wheels once)"
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    out = tmp_path_factory.mktemp("lambda") / "hfo-watchdog.zip"
    return lambda_build.build(out=out, wheelhouse=wheelhouse, offline=True).path
