"""Finding Terraform for the drill: the provider mirror (setting first, then a bounded search),
the offline CLI configuration, the checkout's terraform/ tree and the Lambda package; each
missing piece is a clear reason the drill prints before it falls back."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from hfo_watchdog.drill_terraform import (
    MIRROR_ENV,
    PROVIDER_SOURCE,
    Terraform,
    TerraformUnavailable,
    find_provider_mirror,
    find_repo_root,
    lambda_package,
    write_cli_config,
)


def make_mirror(root: Path) -> Path:
    binary = root / PROVIDER_SOURCE / "5.100.0" / "linux_amd64" / "terraform-provider-aws_v5.100.0_x5"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"")
    return root


def test_the_setting_wins_and_must_hold_the_provider(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mine")
    assert find_provider_mirror({MIRROR_ENV: str(mirror)}, roots=()) == mirror
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TerraformUnavailable, match=f"{MIRROR_ENV}={empty} holds no {PROVIDER_SOURCE} provider"):
        find_provider_mirror({MIRROR_ENV: str(empty)}, roots=(str(mirror),))


def test_the_search_looks_a_few_levels_deep_and_no_deeper(tmp_path: Path) -> None:
    make_mirror(tmp_path / "a" / "b" / "plugins")
    assert find_provider_mirror({}, roots=(str(tmp_path),)) == tmp_path / "a" / "b" / "plugins"
    deep = tmp_path / "deep"
    make_mirror(deep / "1" / "2" / "3" / "4")
    with pytest.raises(TerraformUnavailable, match=f"no offline mirror of {PROVIDER_SOURCE} found .*{MIRROR_ENV}"):
        find_provider_mirror({}, roots=(str(deep), str(tmp_path / "missing")))


def test_the_cli_configuration_installs_from_the_mirror_only(tmp_path: Path) -> None:
    text = write_cli_config(tmp_path / "terraform.rc", Path("/opt/mirror dir")).read_text()
    assert 'path    = "/opt/mirror dir"' in text
    assert f'include = ["{PROVIDER_SOURCE}"]' in text
    assert "direct" not in text and "network_mirror" not in text


def test_the_repo_root_is_the_checkout_holding_the_example(tmp_path: Path) -> None:
    example = tmp_path / "repo" / "terraform" / "examples" / "complete"
    example.mkdir(parents=True)
    (example / "main.tf").write_text("")
    nested = tmp_path / "repo" / "lambda" / "src"
    nested.mkdir(parents=True)
    assert find_repo_root((nested,)) == tmp_path / "repo"
    with pytest.raises(TerraformUnavailable, match="no terraform/examples/complete/ found"):
        find_repo_root((tmp_path / "elsewhere",))


def test_the_lambda_package_is_the_built_one_or_the_sources(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for package, module in (("lambda/src/hfo_watchdog", "tick.py"), ("protocol/src/hfo_protocol", "health.py")):
        (repo / package).mkdir(parents=True)
        (repo / package / module).write_text("# code\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path, note = lambda_package(repo, scratch)
    assert "sources" in note
    assert sorted(zipfile.ZipFile(path).namelist()) == ["hfo_protocol/health.py", "hfo_watchdog/tick.py"]
    built = repo / "build" / "lambda" / "hfo-watchdog.zip"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"PK")
    assert lambda_package(repo, scratch) == (
        built,
        f"the Lambda package built by `make lambda-zip` ({built.relative_to(repo)})",
    )


def test_no_terraform_on_path_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    with pytest.raises(TerraformUnavailable, match="terraform is not on PATH"):
        Terraform.locate(tmp_path / "scratch", env)
