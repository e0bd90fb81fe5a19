"""modules/state-bucket applied for real against the AWS emulator, then checked through boto3 as a
user's account would be: versioned, encrypted, private, TLS only (enforced: the emulator speaks
plain HTTP and is refused), conditional writes required by the policy, the lifecycle of old
versions and superseded snapshots;
bad settings are refused at plan time with their reason; destroy leaves nothing."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hfo_drill.moto_server import MotoServer
from hfo_site.state import SUPERSEDED_TAG_KEY, SUPERSEDED_TAG_VALUE, S3StateStore, StoreUnavailable
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

module "state" {
  source         = "../modules/state-bucket"
  name           = "hfo-test"
  retention_days = try(var.settings.retention_days, null)
  kms_key_arn    = try(var.settings.kms_key_arn, null)
  force_destroy  = true
  tags           = { Purpose = "state-bucket-test" }

  superseded_retention_days = try(var.settings.superseded_retention_days, null)
}

output "bucket_name" {
  value = module.state.bucket_name
}

output "bucket_arn" {
  value = module.state.bucket_arn
}

output "state_prefix_arn" {
  value = module.state.state_prefix_arn
}
"""


@dataclass
class Root:
    directory: Path
    tfenv: TerraformEnv
    moto: MotoServer

    def run(self, *args: str, settings: dict[str, Any] | None = None) -> tuple[int, str]:
        var_args = [f"-var=settings={json.dumps(settings)}"] if settings is not None else []
        result = self.tfenv.run([*args, "-input=false", "-no-color", *var_args], cwd=self.directory,
                                extra_env=self.moto.env())  # fmt: skip
        return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())


@pytest.fixture(scope="module")
def root(tfenv: TerraformEnv, tf_moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Root:
    tree = working_copy(tmp_path_factory.mktemp("state-bucket"))
    directory = tree / "state-bucket-root"
    directory.mkdir()
    (directory / "main.tf").write_text(ROOT, encoding="utf-8")
    root = Root(directory, tfenv, tf_moto)
    code, output = root.run("init", "-backend=false")
    assert code == 0, output
    return root


@pytest.fixture(scope="module")
def bucket(root: Root) -> Iterator[str]:
    code, output = root.run("apply", "-auto-approve")
    assert code == 0, output
    outputs = json.loads(root.tfenv.run(["output", "-json"], cwd=root.directory, extra_env=root.moto.env()).stdout)
    name = outputs["bucket_name"]["value"]
    assert name.startswith("hfo-test-state-")
    assert outputs["bucket_arn"]["value"] == f"arn:aws:s3:::{name}"
    assert outputs["state_prefix_arn"]["value"] == f"arn:aws:s3:::{name}/state/*"
    yield name
    code, output = root.run("destroy", "-auto-approve")
    assert code == 0, output
    s3 = boto3.client("s3", endpoint_url=root.moto.endpoint, region_name=root.moto.region)
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


@pytest.fixture(scope="module")
def s3(root: Root) -> Any:
    return boto3.client("s3", endpoint_url=root.moto.endpoint, region_name=root.moto.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def test_the_bucket_is_versioned_encrypted_and_private(bucket: str, s3: Any) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                     "RestrictPublicBuckets": True}  # fmt: skip
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_the_policy_denies_plain_http_and_unconditional_state_writes(bucket: str, s3: Any) -> None:
    statements = {s["Sid"]: s for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}
    tls = statements["DenyWithoutTLS"]
    assert (tls["Effect"], tls["Action"]) == ("Deny", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(tls["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    manifest = statements["DenyUnconditionalManifestWrites"]
    assert manifest["Resource"] == f"arn:aws:s3:::{bucket}/state/*/manifest.json"
    assert manifest["Condition"] == {"Null": {"s3:if-match": "true", "s3:if-none-match": "true"}}
    snapshots = statements["DenySnapshotOverwrites"]
    assert snapshots["Resource"] == f"arn:aws:s3:::{bucket}/state/*/epochs/*"
    assert snapshots["Condition"] == {"Null": {"s3:if-none-match": "true"}}


def test_the_lifecycle_expires_old_versions_and_superseded_snapshots_only(bucket: str, s3: Any) -> None:
    """The module's defaults: overwritten or deleted versions (every object) kept 30 days; replaced
    snapshots, by their tag, 7 days as the current version and 7 as a noncurrent one."""
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"expire-noncurrent-versions", "expire-superseded-snapshots"}
    noncurrent = rules["expire-noncurrent-versions"]
    assert noncurrent["Status"] == "Enabled"
    assert noncurrent["Filter"] in ({}, {"Prefix": ""})  # every object of the bucket (moto echoes an empty prefix)
    assert noncurrent["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert noncurrent["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Days" not in noncurrent.get("Expiration", {})  # current objects are never expired by age
    superseded = rules["expire-superseded-snapshots"]
    assert superseded["Status"] == "Enabled"
    assert superseded["Expiration"]["Days"] == 7
    assert superseded["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    # The very tag the writer puts on a replaced snapshot (hfo_site.state.handoff): one constant pair.
    assert superseded["Filter"] == {"Tag": {"Key": SUPERSEDED_TAG_KEY, "Value": SUPERSEDED_TAG_VALUE}}
    assert (SUPERSEDED_TAG_KEY, SUPERSEDED_TAG_VALUE) == ("hfo-state", "superseded")  # the documented tag


def test_a_request_without_tls_is_refused_by_the_bucket_policy(
    bucket: str, root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto evaluates bucket policies: the emulator speaks plain HTTP, so the TLS-only statement
    refuses the state store's requests, which report the key and the status and nothing secret.
    (moto does not know the s3:if-match / s3:if-none-match keys, so the conditional-write
    statements are checked by their content above; the store's fencing is tested on a bucket of
    its own, tests/site/test_state_store.py.)"""
    for key, value in root.moto.env().items():  # the emulator's throwaway credentials
        monkeypatch.setenv(key, value)
    store = S3StateStore(bucket, endpoint_url=root.moto.endpoint, region=root.moto.region)
    with pytest.raises(StoreUnavailable, match=r"could not read 'state/bot-a/manifest.json': .*HTTP 403"):
        store.read_manifest("bot-a")
    s3 = boto3.client("s3", endpoint_url=root.moto.endpoint, region_name=root.moto.region)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="state/bot-a/manifest.json", Body=b"{}", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retention_days": 0}, "retention_days must be a whole number of days from 1 to 3650"),
        ({"retention_days": 2.5}, "retention_days must be a whole number of days from 1 to 3650"),
        ({"kms_key_arn": "my-key"}, "kms_key_arn must be a KMS key or alias ARN"),
        ({"superseded_retention_days": 0}, "superseded_retention_days must be a whole number of days from 1 to"),
        ({"superseded_retention_days": 1.5}, "superseded_retention_days must be a whole number of days from 1 to"),
        # Not longer than an overwritten object is kept: neither above the default 30, nor above a shorter one.
        ({"superseded_retention_days": 31}, "superseded_retention_days must be a whole number of days from 1 to"),
        (
            {"retention_days": 5, "superseded_retention_days": 6},
            "superseded_retention_days must be a whole number of days from 1 to retention_days",
        ),
    ],
)
def test_bad_settings_are_refused_at_plan_time(root: Root, settings: dict[str, Any], message: str) -> None:
    code, output = root.run("plan", "-lock=false", settings=settings)
    assert code == 1 and message in output, output


def test_the_composite_module_creates_the_bucket_only_when_enabled(
    tfenv: TerraformEnv, tf_moto: MotoServer, tmp_path: Path
) -> None:
    """examples/complete with state_bucket_enabled = true plans the bucket and its settings inside
    modules/hybrid-failover (off by default: tests/terraform/test_stack.py applies the defaults)."""
    example = working_copy(tmp_path) / "examples" / "complete"
    package = tmp_path / "package.zip"  # moto stores the code, the plan only needs a file
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "")
    (example / "test.auto.tfvars.json").write_text(json.dumps({
        "aws_emulator": True, "region": tf_moto.region, "health_url": "https://laptop.example.ts.net/healthz",
        "lambda_zip_path": str(package), "cpu_credits": "standard", "state_bucket_enabled": True,
        "state_retention_days": 14, "state_superseded_retention_days": 3,
    }), encoding="utf-8")  # fmt: skip
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=example)
    assert init.returncode == 0, init.stdout + init.stderr
    result = tfenv.run(["plan", "-input=false", "-no-color", "-lock=false", "-detailed-exitcode", "-out=tfplan"],
                       cwd=example, extra_env=tf_moto.env())  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    # The example root's two retentions reach the bucket's lifecycle rules.
    shown = tfenv.run(["show", "-json", "tfplan"], cwd=example, extra_env=tf_moto.env())
    assert shown.returncode == 0, shown.stderr
    changes = {c["address"]: c["change"]["after"] for c in json.loads(shown.stdout)["resource_changes"]}
    lifecycle = changes["module.hfo.module.state_bucket[0].aws_s3_bucket_lifecycle_configuration.this"]
    rules = {rule["id"]: rule for rule in lifecycle["rule"]}
    assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"][0]["noncurrent_days"] == 14
    superseded = rules["expire-superseded-snapshots"]
    assert superseded["expiration"][0]["days"] == 3
    assert superseded["noncurrent_version_expiration"][0]["noncurrent_days"] == 3
    assert superseded["filter"][0]["tag"] == [{"key": "hfo-state", "value": "superseded"}]
    planned = set(re.findall(r"# (module\.hfo\.module\.state_bucket\[0\]\.\S+) will be created", result.stdout))
    assert {f"module.hfo.module.state_bucket[0].{r}.this" for r in (
        "aws_s3_bucket", "aws_s3_bucket_versioning", "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block", "aws_s3_bucket_ownership_controls", "aws_s3_bucket_policy",
        "aws_s3_bucket_lifecycle_configuration",
    )} <= planned  # fmt: skip
    # With it, the watchdog's role for the lease holder's state credentials (docs/state-handoff.md#credentials;
    # applied and read back in tests/terraform/test_state_access.py).
    watchdog = set(re.findall(r"# (module\.hfo\.module\.watchdog\.\S+) will be created", result.stdout))
    assert {
        "module.hfo.module.watchdog.aws_iam_role.state_access[0]",
        "module.hfo.module.watchdog.aws_iam_role_policy.state_access[0]",
        "module.hfo.module.watchdog.aws_iam_role_policy.heartbeat_state_access[0]",
    } <= watchdog
