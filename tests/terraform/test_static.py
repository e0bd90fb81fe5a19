"""Static checks of every Terraform root (each module and each example): formatting, and
`terraform validate` after an offline init from the provider mirror. Also the mirror lookup
the other Terraform tests rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testsupport.terraform import (
    MIRROR_ENV,
    PROVIDER_SOURCE,
    TerraformEnv,
    find_provider_mirror,
    module_dirs,
    working_copy,
)
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.terraform

ROOTS = sorted(p.relative_to(REPO_ROOT / "terraform").as_posix() for p in module_dirs(REPO_ROOT / "terraform"))


def test_every_module_has_the_standard_files() -> None:
    for root in ROOTS:
        if root.startswith("modules/"):
            present = {p.name for p in (REPO_ROOT / "terraform" / root).glob("*.tf")}
            assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= present, root
    assert "examples/complete" in ROOTS


def test_fmt_check(tfenv: TerraformEnv) -> None:
    result = tfenv.run(["fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=REPO_ROOT / "terraform")
    assert result.returncode == 0, f"terraform fmt would change these files:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return working_copy(tmp_path_factory.mktemp("static"))


@pytest.mark.parametrize("root", ROOTS)
def test_validate(tfenv: TerraformEnv, tree: Path, root: str) -> None:
    directory = tree / root
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    result = tfenv.run(["validate", "-json", "-no-color"], cwd=directory)
    report = json.loads(result.stdout)
    messages = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]]
    assert report["valid"], "\n".join(messages)
    assert report["warning_count"] == 0, "\n".join(messages)


def _fake_mirror(root: Path) -> Path:
    provider = root / PROVIDER_SOURCE / "5.100.0" / "linux_amd64"
    provider.mkdir(parents=True)
    (provider / "terraform-provider-aws_v5.100.0_x5").write_bytes(b"")
    return root


def test_mirror_from_environment_variable_wins(tmp_path: Path) -> None:
    configured = _fake_mirror(tmp_path / "configured")
    _fake_mirror(tmp_path / "searched" / "mirror")
    found = find_provider_mirror({MIRROR_ENV: str(configured)}, roots=(str(tmp_path / "searched"),))
    assert found == configured


def test_mirror_found_by_bounded_search(tmp_path: Path) -> None:
    expected = _fake_mirror(tmp_path / "a" / "b")
    assert find_provider_mirror({}, roots=(str(tmp_path / "missing"), str(tmp_path))) == expected
    # Deeper than the search depth: not found (the search never walks a whole disk).
    deep = tmp_path / "deep"
    _fake_mirror(deep / "1" / "2" / "3" / "4")
    assert find_provider_mirror({}, roots=(str(deep),)) is None


def test_mirror_environment_variable_without_provider_fails(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=MIRROR_ENV):
        find_provider_mirror({MIRROR_ENV: str(tmp_path)}, roots=())
