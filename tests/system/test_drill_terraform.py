"""Finding Terraform for the drill: the provider mirror (setting first, then a bounded search),
the offline CLI configuration, the checkout's terraform/ tree and the Lambda package; each
missing piece is a clear reason the drill prints before it falls back."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from hfo_drill.terraform import (
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


# --- init/apply/output, with a stand-in terraform binary that records how it was called

FAKE_TERRAFORM = """#!/usr/bin/env python3
import json, os, sys
calls = os.path.join(os.environ["FAKE_TF_RECORD"])
with open(calls, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                        "secret_in_env": "TF_VAR_hmac_keyring" in os.environ,
                        "endpoint": os.environ.get("AWS_ENDPOINT_URL")}) + "\\n")
command = sys.argv[1]
if command == os.environ.get("FAKE_TF_FAIL"):
    print("Error: the emulator said no"); sys.exit(1)
if command == "apply":
    print("Apply complete! Resources: 3 added, 0 changed, 0 destroyed.")
if command == "output":
    print(json.dumps({"table_name": {"value": "hfo-state", "sensitive": False, "type": "string"}}))
"""


@pytest.fixture
def fake_tf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Terraform:
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "terraform" / "examples" / "complete").mkdir(parents=True)
    (repo / "terraform" / "examples" / "complete" / "main.tf").write_text("# example\n")
    monkeypatch.setenv("FAKE_TF_RECORD", str(tmp_path / "calls.jsonl"))
    env = {**os.environ}
    return Terraform(binary=str(binary), mirror=tmp_path, repo=repo, scratch=tmp_path / "scratch", env=env)


def calls(tmp_path: Path) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_apply_runs_init_apply_output_in_a_scratch_copy_with_secrets_only_in_the_environment(
    fake_tf: Terraform, tmp_path: Path
) -> None:
    from hfo_drill.terraform import apply_example

    registered = []
    applied = apply_example(
        fake_tf, {"health_url": "https://127.0.0.1:1/healthz"}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:5"},
        {"TF_VAR_hmac_keyring": "very-secret-keyring-value"}, registered.append,
    )  # fmt: skip
    assert applied.outputs == {"table_name": "hfo-state"}
    assert applied.resources == "Apply complete! Resources: 3 added, 0 changed, 0 destroyed."
    made = calls(tmp_path)
    assert [c["argv"][0] for c in made] == ["init", "apply", "output"]
    assert all(c["cwd"] == str(fake_tf.scratch / "tree" / "terraform" / "examples" / "complete") for c in made)
    assert [c["secret_in_env"] for c in made] == [False, True, False]  # only apply gets the secret
    assert all(c["endpoint"] == "http://127.0.0.1:5" for c in made)
    assert len(registered) == 2  # init and apply are children the drill stops on Ctrl-C
    for path in fake_tf.scratch.rglob("*"):
        if path.is_file():
            assert "very-secret-keyring-value" not in path.read_text(errors="replace"), path
    assert (Path(made[0]["cwd"]) / "drill.auto.tfvars.json").read_text().count("health_url") == 1


def test_a_failing_step_is_an_error_carrying_its_output(fake_tf: Terraform) -> None:
    from hfo_drill.terraform import TerraformFailed, apply_example

    fake_tf.env["FAKE_TF_FAIL"] = "apply"
    with pytest.raises(TerraformFailed, match=r"terraform apply failed \(exit 1\):\nError: the emulator said no"):
        apply_example(fake_tf, {}, {}, {}, lambda child: None)
