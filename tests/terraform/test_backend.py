"""terraform/examples/quickstart/backend.tf.example: S3 state with Terraform's native locking,
used for real against the emulator's S3. The file's own backend block is what runs; the test
adds only what points it at the emulator (bucket, endpoint, the checks a real account needs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from testsupport.terraform import TerraformEnv
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.moto]

BACKEND_EXAMPLE = REPO_ROOT / "terraform" / "examples" / "quickstart" / "backend.tf.example"


def test_backend_example_uses_native_locking() -> None:
    text = BACKEND_EXAMPLE.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert re.search(r'backend\s+"s3"', code)
    assert re.search(r"use_lockfile\s*=\s*true", code)
    assert re.search(r"encrypt\s*=\s*true", code)
    assert "dynamodb_table" not in code  # the deprecated lock table is not needed


@pytest.fixture
def root(tmp_path: Path, tf_moto: MotoServer, tfenv: TerraformEnv) -> tuple[Path, str, dict[str, str]]:
    directory = tmp_path / "root"
    directory.mkdir()
    (directory / "backend.tf").write_text(BACKEND_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "main.tf").write_text('output "answer" {\n  value = 42\n}\n', encoding="utf-8")
    bucket = f"state-{tmp_path.name.lower().replace('_', '-')[:40]}"
    s3(tf_moto).create_bucket(Bucket=bucket)
    env = {**tf_moto.env()}
    init = tfenv.run(
        [
            "init", "-input=false", "-no-color", f"-backend-config=bucket={bucket}",
            f'-backend-config=endpoints={{s3="{tf_moto.endpoint}"}}', "-backend-config=use_path_style=true",
            "-backend-config=skip_credentials_validation=true", "-backend-config=skip_requesting_account_id=true",
            "-backend-config=skip_metadata_api_check=true",
        ],
        cwd=directory,
        extra_env=env,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    return directory, bucket, env


def s3(moto: MotoServer):
    return boto3.client(
        "s3", endpoint_url=moto.endpoint, region_name=moto.region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def keys(moto: MotoServer, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3(moto).list_objects_v2(Bucket=bucket).get("Contents", []))


def test_state_goes_to_s3_and_the_lock_is_released(
    root: tuple[Path, str, dict[str, str]], tf_moto: MotoServer, tfenv: TerraformEnv
) -> None:
    directory, bucket, env = root
    result = tfenv.run(["apply", "-auto-approve", "-input=false", "-no-color"], cwd=directory, extra_env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert keys(tf_moto, bucket) == ["hybrid-failover/terraform.tfstate"]  # no .tflock left behind
    state = json.loads(s3(tf_moto).get_object(Bucket=bucket, Key="hybrid-failover/terraform.tfstate")["Body"].read())
    assert state["outputs"]["answer"]["value"] == 42


def test_a_held_lock_stops_a_second_writer(
    root: tuple[Path, str, dict[str, str]], tf_moto: MotoServer, tfenv: TerraformEnv
) -> None:
    directory, bucket, env = root
    holder = {
        "ID": "4f9c6a2e-0000-4000-8000-000000000001",
        "Operation": "OperationTypeApply",
        "Who": "alice@laptop",
        "Version": "1.11.4",
        "Created": "2026-11-23T15:00:00Z",
        "Path": f"{bucket}/hybrid-failover/terraform.tfstate",
    }
    s3(tf_moto).put_object(Bucket=bucket, Key="hybrid-failover/terraform.tfstate.tflock", Body=json.dumps(holder))
    result = tfenv.run(
        ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=0s"], cwd=directory, extra_env=env
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Error acquiring the state lock" in output
    assert "alice@laptop" in output
    assert "hybrid-failover/terraform.tfstate" not in keys(tf_moto, bucket)  # nothing was written
