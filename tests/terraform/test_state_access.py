"""The state credentials' IAM (docs/state-handoff.md#credentials, terraform/modules/watchdog/state_access.tf)
applied for real against the AWS emulator with the state bucket beside it, and read back through boto3
as in a user's account: a role only the heartbeat function's role may assume, allowed only to read and
write the bucket's state/ objects and list it; `sts:AssumeRole` on that role only, for the heartbeat
role only; both functions' environment names the bucket, the role and the lifetime, which the
watchdog's own settings reader accepts; the intersection with an epoch's session policy writes only
that epoch's prefix; a bad lifetime is refused at plan time; destroy leaves nothing."""

from __future__ import annotations

import fnmatch
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.config import Settings
from hfo_watchdog.state_access import session_policy
from testsupport.terraform import TerraformEnv, working_copy

pytestmark = [pytest.mark.terraform, pytest.mark.moto]

ROOT = """
provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 3
}

variable "settings" {
  type    = any
  default = {}
}

variable "zip" {
  type = string
}

module "state" {
  source        = "../modules/state-bucket"
  name          = "hfo-sa"
  force_destroy = true
}

module "watchdog" {
  source                    = "../modules/watchdog"
  name                      = "hfo-sa"
  lambda_zip_path           = var.zip
  health_url                = "https://laptop.example.ts.net/healthz"
  instance_id               = "i-0123456789abcdef0"
  instance_arn              = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
  hmac_secret_arn           = "arn:aws:ssm:us-east-1:123456789012:parameter/hfo/hmac"
  table_deletion_protection = false
  state_access_enabled      = true
  state_bucket_name         = module.state.bucket_name
  state_credentials_ttl_s   = try(var.settings.state_credentials_ttl_s, 900)
}

output "bucket_name" {
  value = module.state.bucket_name
}

output "state_access_role_arn" {
  value = module.watchdog.state_access_role_arn
}

output "role_names" {
  value = module.watchdog.role_names
}

output "function_names" {
  value = module.watchdog.function_names
}
"""


@dataclass
class Root:
    directory: Path
    tfenv: TerraformEnv
    moto: MotoServer
    zip: Path

    def run(self, *args: str, settings: dict[str, Any] | None = None) -> tuple[int, str]:
        var_args = [f"-var=zip={self.zip}"]
        if settings is not None:
            var_args.append(f"-var=settings={json.dumps(settings)}")
        result = self.tfenv.run([*args, "-input=false", "-no-color", *var_args], cwd=self.directory,
                                extra_env=self.moto.env())  # fmt: skip
        return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.moto.endpoint, region_name=self.moto.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture(scope="module")
def root(tfenv: TerraformEnv, tf_moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Root:
    tree = working_copy(tmp_path_factory.mktemp("state-access"))
    directory = tree / "state-access-root"
    directory.mkdir()
    (directory / "main.tf").write_text(ROOT, encoding="utf-8")
    package = directory / "package.zip"  # moto stores the code; nothing here invokes it
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "")
    root = Root(directory, tfenv, tf_moto, package)
    code, output = root.run("init", "-backend=false")
    assert code == 0, output
    return root


@pytest.fixture(scope="module")
def applied(root: Root) -> Iterator[dict[str, Any]]:
    code, output = root.run("apply", "-auto-approve")
    assert code == 0, output
    outputs = json.loads(root.tfenv.run(["output", "-json"], cwd=root.directory, extra_env=root.moto.env()).stdout)
    yield {k: v["value"] for k, v in outputs.items()}
    role = outputs["state_access_role_arn"]["value"].rsplit("/", 1)[1]
    code, output = root.run("destroy", "-auto-approve")
    assert code == 0, output
    assert role not in {r["RoleName"] for r in root.client("iam").list_roles()["Roles"]}


def _statements(document: Any) -> list[dict[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else document
    return [s for s in doc["Statement"]]


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    """IAM's rule for Allow statements without conditions (what these policies are)."""
    for s in _statements(policy):
        assert s["Effect"] == "Allow" and "Condition" not in s
        if action in _listed(s["Action"]) and any(fnmatch.fnmatchcase(resource, p) for p in _listed(s["Resource"])):
            return True
    return False


def test_only_the_heartbeat_role_may_assume_the_state_role(root: Root, applied: dict[str, Any]) -> None:
    iam = root.client("iam")
    name = applied["state_access_role_arn"].rsplit("/", 1)[1]
    role = iam.get_role(RoleName=name)["Role"]
    assert role["MaxSessionDuration"] == 3600
    heartbeat_role = iam.get_role(RoleName=applied["role_names"]["heartbeat"])["Role"]["Arn"]
    [trust] = _statements(role["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"AWS": heartbeat_role} and trust["Action"] == "sts:AssumeRole"
    assert trust["Effect"] == "Allow" and "Condition" not in trust


def test_the_state_role_reads_and_writes_state_objects_only(root: Root, applied: dict[str, Any]) -> None:
    iam = root.client("iam")
    name = applied["state_access_role_arn"].rsplit("/", 1)[1]
    [policy_name] = iam.list_role_policies(RoleName=name)["PolicyNames"]
    policy = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
    bucket = f"arn:aws:s3:::{applied['bucket_name']}"
    assert allowed(policy, "s3:GetObject", f"{bucket}/state/bot/manifest.json")
    assert allowed(policy, "s3:PutObject", f"{bucket}/state/bot/epochs/000000000003/x.tar.gz")
    assert allowed(policy, "s3:ListBucket", bucket)
    assert not allowed(policy, "s3:PutObject", f"{bucket}/other/x")
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::another-bucket/state/bot/manifest.json")
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy", "s3:PutObjectAcl"):
        assert not allowed(policy, action, f"{bucket}/state/bot/manifest.json")
    # Tagging the snapshot a manifest write replaced (hfo-state=superseded): snapshots only.
    assert allowed(policy, "s3:PutObjectTagging", f"{bucket}/state/bot/epochs/000000000003/x.tar.gz")
    assert not allowed(policy, "s3:PutObjectTagging", f"{bucket}/state/bot/manifest.json")
    assert {a for s in _statements(policy) for a in _listed(s["Action"])} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:ListBucket",
    }
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    # With an epoch's session policy (the intersection is what a set of credentials may do):
    # manifests and that epoch's snapshots, never another epoch's prefix.
    session = session_policy(applied["bucket_name"], 7)

    def effective(action: str, resource: str) -> bool:
        return allowed(policy, action, resource) and allowed(session, action, resource)

    assert effective("s3:PutObject", f"{bucket}/state/bot/epochs/000000000007/x.tar.gz")
    assert effective("s3:PutObject", f"{bucket}/state/bot/manifest.json")
    assert not effective("s3:PutObject", f"{bucket}/state/bot/epochs/000000000006/x.tar.gz")
    assert effective("s3:GetObject", f"{bucket}/state/bot/epochs/000000000006/x.tar.gz")
    assert effective("s3:PutObjectTagging", f"{bucket}/state/bot/epochs/000000000006/x.tar.gz")
    assert not effective("s3:PutObjectTagging", f"{bucket}/state/bot/manifest.json")


def test_only_the_heartbeat_role_may_assume_it(root: Root, applied: dict[str, Any]) -> None:
    iam = root.client("iam")
    for kind, role_name in applied["role_names"].items():
        documents = [
            iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
            for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        sts = [s for d in documents for s in _statements(d) if any(a.startswith("sts:") for a in _listed(s["Action"]))]
        if kind == "heartbeat":
            assert len(sts) == 1 and _listed(sts[0]["Action"]) == ["sts:AssumeRole"]
            assert _listed(sts[0]["Resource"]) == [applied["state_access_role_arn"]]
        else:
            assert sts == []


def test_both_functions_get_the_state_settings_the_watchdog_accepts(root: Root, applied: dict[str, Any]) -> None:
    lam = root.client("lambda")
    for function in applied["function_names"].values():
        env = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert env["HFO_STATE_BUCKET"] == applied["bucket_name"]
        assert env["HFO_STATE_ROLE_ARN"] == applied["state_access_role_arn"]
        assert env["HFO_STATE_CREDENTIALS_TTL_S"] == "900"
        state = Settings.from_env({**env, "AWS_REGION": "eu-west-3"}).state
        assert state is not None and (state.bucket, state.credentials_ttl_s) == (applied["bucket_name"], 900)


@pytest.mark.parametrize("ttl", [899, 3601, 1000.5])
def test_a_bad_credentials_lifetime_is_refused_at_plan_time(root: Root, ttl: float) -> None:
    code, output = root.run("plan", "-lock=false", settings={"state_credentials_ttl_s": ttl})
    assert code == 1 and "state_credentials_ttl_s must be a whole number of seconds from 900" in output, output
