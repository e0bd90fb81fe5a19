"""The standby's boot, run for real: the loader of the user data fetches the node's configuration from
SSM Parameter Store with the real AWS CLI (against a moto server of this module's own), exactly as
`terraform plan` renders it, and runs the bootstrap script it contains. Stand-ins only for what cannot
run here (tailscale, dnf, curl, systemctl, k3s; tests/terraform/bootstrap_stubs).

What a user relies on: the pod and service networks reach K3s; an edit of the bootstrap manifests
reaches the node at its next boot; the Tailscale auth key is used once, through a private file, and
then overwritten so the node can no longer read it; the workload images are pulled at every boot;
a boot without SSM still brings K3s up."""

from __future__ import annotations

import base64
import gzip
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hfo_drill.moto_server import MotoServer, moto_server
from testsupport.standby_node import (
    TEMPLATES,
    StandbyNode,
    decode_parameters,
    put_parameters,
    rendered_user_data,
)
from testsupport.terraform import TerraformEnv, working_copy
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.moto, pytest.mark.slow]

MODULE = REPO_ROOT / "terraform" / "modules" / "standby"
K3S_VERSION = "v1.33.1+k3s1"
TAILSCALE_VERSION = "1.84.0"
SSM_PATH = "/hfo/standby"
SECRET = "/hfo/tailscale-auth-key"


@pytest.fixture(scope="module")
def example(tfenv: TerraformEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = working_copy(tmp_path_factory.mktemp("boot")) / "examples" / "complete"
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory


def planned_parameters(
    tfenv: TerraformEnv, example: Path, moto: MotoServer, lambda_zip: Path, **overrides: Any
) -> dict[str, str]:
    """name -> value of every SSM parameter `terraform plan` would write for the node."""
    variables = {
        "aws_emulator": True,
        "region": moto.region,
        "health_url": "https://laptop.example.ts.net/healthz",
        "lambda_zip_path": str(lambda_zip),
        **overrides,
    }
    tag = secrets.token_hex(4)
    var_file = example / f"boot-{tag}.tfvars.json"
    var_file.write_text(json.dumps(variables), encoding="utf-8")
    try:
        plan = tfenv.run(
            [
                "plan",
                "-input=false",
                "-no-color",
                "-lock=false",
                f"-var-file={var_file.name}",
                f"-out=boot-{tag}.tfplan",
            ],
            cwd=example,
            extra_env=moto.env(),
        )
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
        shown = tfenv.run(["show", "-json", f"boot-{tag}.tfplan"], cwd=example, extra_env=moto.env())
        assert shown.returncode == 0, shown.stderr
    finally:
        var_file.unlink()
        (example / f"boot-{tag}.tfplan").unlink(missing_ok=True)
    changes = json.loads(shown.stdout)["resource_changes"]
    return {
        c["change"]["after"]["name"]: c["change"]["after"]["value"]
        for c in changes
        if c["type"] == "aws_ssm_parameter" and c["address"].startswith("module.hfo.module.standby.")
    }


@pytest.fixture(scope="module")
def node_moto() -> Iterator[MotoServer]:
    """This module's own AWS: the Terraform tests' shared emulator holds the applied stack's parameters."""
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def parameters(tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path) -> dict[str, str]:
    return planned_parameters(tfenv, example, tf_moto, lambda_zip)


@pytest.fixture
def aws(node_moto: MotoServer) -> dict[str, Any]:
    node_moto.reset()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=node_moto.region
    )
    return {name: session.client(name, endpoint_url=node_moto.endpoint) for name in ("ssm",)}


@pytest.fixture
def node(tmp_path: Path, node_moto: MotoServer, aws: dict[str, Any], parameters: dict[str, str]) -> StandbyNode:
    put_parameters(aws["ssm"], parameters)
    key = "tskey-auth-" + secrets.token_hex(20)
    aws["ssm"].put_parameter(Name=SECRET, Value=key, Type="SecureString")
    result = StandbyNode.create(tmp_path / "node", node_moto, rendered_user_data(node_moto.region, SSM_PATH))
    (result.state / "expected-key").write_text(key, encoding="utf-8")
    return result


def key_of(node: StandbyNode) -> str:
    return (node.state / "expected-key").read_text(encoding="utf-8")


def secret_versions(aws: dict[str, Any]) -> list[tuple[int, str]]:
    """Every version Parameter Store keeps of the key's parameter, oldest first, decrypted."""
    history = aws["ssm"].get_parameter_history(Name=SECRET, WithDecryption=True)["Parameters"]
    return [(int(v["Version"]), str(v["Value"])) for v in history]


def current_secret(aws: dict[str, Any]) -> str:
    return str(aws["ssm"].get_parameter(Name=SECRET, WithDecryption=True)["Parameter"]["Value"])


# --- the configuration Terraform writes -----------------------------------------------------------


def test_the_bootstrap_env_holds_what_the_script_reads() -> None:
    """Every variable the script reads from bootstrap.env is one the module writes, and back."""
    text = (MODULE / "main.tf").read_text(encoding="utf-8")
    block = re.search(r"bootstrap_env = \{(.*?)\n  \}", text, flags=re.DOTALL)
    assert block, "bootstrap_env not found in the standby module"
    written = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", block.group(1), flags=re.MULTILINE))
    script = (TEMPLATES / "bootstrap.sh").read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{?((?:HFO_(?:K3S_VERSION|TAILSCALE_VER|TS_[A-Z_]+))|AWS_REGION)\b", script))
    assert read <= written and written == read | {"AWS_REGION"}, (read, written)


def test_parameters_are_standard_tier_sized_and_rebuild_the_files(parameters: dict[str, str]) -> None:
    """SSM's Standard tier (free) holds at most 4096 characters a parameter: moto does not enforce it,
    AWS refuses the write. The files cut into parts rebuild byte for byte."""
    assert parameters and all(name.startswith(SSM_PATH + "/") for name in parameters)
    assert max(len(v) for v in parameters.values()) <= 4096
    assert any(name.endswith("/01") for name in parameters), "the boot script should span two parameters"
    files = decode_parameters(parameters, SSM_PATH)
    assert files["bootstrap.sh"] == (TEMPLATES / "bootstrap.sh").read_bytes()
    assert {f for f in files if f.startswith("manifests/")} == {
        f"manifests/{p.name}" for p in (REPO_ROOT / "argocd" / "bootstrap").glob("*.yaml")
    }
    k3s = yaml.safe_load(files["k3s-config.yaml"])
    assert (k3s["cluster-cidr"], k3s["service-cidr"], k3s["cluster-dns"]) == (
        "10.42.0.0/16",
        "10.43.0.0/16",
        "10.43.0.10",
    )
    assert files["images"].decode().split() == [
        "ghcr.io/hfo-example/hfo-site:0.1.0",
        "ghcr.io/hfo-example/hfo-bot:0.1.0",
    ]


# --- the first boot and the next ones -------------------------------------------------------------


def test_first_boot_configures_k3s_joins_the_tailnet_and_pulls_the_images(node: StandbyNode) -> None:
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = node.calls()
    assert f"dnf install -y -q tailscale-{TAILSCALE_VERSION}" in calls
    assert any(c.startswith("curl ") and "k3s-io/k3s/v1.33.1%2Bk3s1/install.sh" in c for c in calls)
    assert (node.state / "installer-env").read_text().split() == [
        f"INSTALL_K3S_VERSION={K3S_VERSION}",
        "SKIP_SELINUX=true",
    ]
    up = [c for c in calls if c.startswith("tailscale up")]
    assert len(up) == 1 and "--hostname=hfo-standby" in up[0] and "--ssh=true" in up[0]
    assert "systemctl enable --now k3s" in calls
    # K3s's networks, set explicitly (the defaults would collide with nothing, but are now visible)
    k3s = yaml.safe_load(node.k3s_config.read_text())
    assert (k3s["cluster-cidr"], k3s["service-cidr"], k3s["cluster-dns"]) == (
        "10.42.0.0/16",
        "10.43.0.0/16",
        "10.43.0.10",
    )
    assert oct(node.k3s_config.stat().st_mode & 0o777) == "0o600"
    # the Argo CD bootstrap manifests, byte for byte as in the checkout (with its owner)
    expected = {
        p.name: p.read_text().replace("your-github-user", "hfo-example")
        for p in (REPO_ROOT / "argocd/bootstrap").glob("*.yaml")
    }
    assert {p.name: p.read_text() for p in node.manifests.iterdir()} == expected
    # Terraform's images pulled at boot, before Argo CD has synced anything
    assert node.pulled() == ["ghcr.io/hfo-example/hfo-site:0.1.0", "ghcr.io/hfo-example/hfo-bot:0.1.0"]
    assert "hfo-bootstrap: done" in result.stdout


def test_the_auth_key_goes_through_a_private_file_and_is_then_out_of_reach(
    node: StandbyNode, aws: dict[str, Any]
) -> None:
    key = key_of(node)
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node.state / "authkey-file").read_text().strip() == "match"  # tailscale read the key from the file
    assert (node.state / "authkey-mode").read_text().strip() == "600"
    assert not list(node.run_dir.glob("tailscale-authkey*"))  # the key file is gone
    everything = "\n".join(node.calls()) + result.stdout + result.stderr
    assert key not in everything
    # Deleted once the node is on the tailnet and recreated holding a note: no version of the
    # parameter, old or new, holds the key any more (an overwrite would keep it in the history).
    assert current_secret(aws).startswith("consumed: hfo-standby joined the tailnet at ")
    assert all(key not in value for _, value in secret_versions(aws))
    described = aws["ssm"].describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [SECRET]}])["Parameters"]
    assert [(p["Type"], p["Tier"]) for p in described] == [("SecureString", "Standard")]
    assert "the stored auth key is deleted" in result.stdout


def test_next_boot_reads_no_secret_writes_none_and_installs_nothing(node: StandbyNode, aws: dict[str, Any]) -> None:
    assert node.boot().returncode == 0
    (node.state / "k3s-active").touch()
    versions = secret_versions(aws)
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = node.calls()
    assert not any(c.startswith(("dnf ", "curl ", "tailscale up", "systemctl restart")) for c in calls), calls
    assert "tailscale set --hostname=hfo-standby --ssh=true" in calls  # settings kept in step
    assert secret_versions(aws) == versions
    assert "bootstrap manifests: 3 listed, 0 written, 0 removed" in result.stdout
    assert len(node.pulled()) == 2  # the images are pulled at every boot


def test_a_key_put_while_the_node_is_on_the_tailnet_is_consumed_at_its_next_boot(
    node: StandbyNode, aws: dict[str, Any]
) -> None:
    assert node.boot().returncode == 0
    fresh = "tskey-auth-" + secrets.token_hex(20)
    aws["ssm"].put_parameter(Name=SECRET, Value=fresh, Type="SecureString", Overwrite=True)
    assert node.boot().returncode == 0
    assert current_secret(aws).startswith("consumed: ")
    assert all(fresh not in value for _, value in secret_versions(aws))


def test_a_node_off_the_tailnet_with_a_consumed_key_says_what_to_do(node: StandbyNode) -> None:
    assert node.boot().returncode == 0
    (node.state / "tailscale-up").unlink()  # its device was removed from the tailnet
    result = node.boot()
    assert result.returncode == 1
    assert "holds no auth key (it was consumed by an earlier join, or never set)" in result.stdout
    assert "FAILED: tailscale" in result.stdout
    assert not any(c.startswith("tailscale up") for c in node.calls())
    assert "k3s ready" in result.stdout  # K3s still comes up


def test_tailscale_failure_does_not_keep_k3s_down(node: StandbyNode, aws: dict[str, Any]) -> None:
    aws["ssm"].delete_parameter(Name=SECRET)
    result = node.boot()
    assert result.returncode == 1  # systemd retries the unit
    assert "FAILED: tailscale" in result.stdout
    assert (node.state / "k3s-installed").read_text().strip() == K3S_VERSION
    assert not (node.state / "tailscale-up").exists()
    assert not list(node.run_dir.glob("tailscale-authkey*"))


def test_a_different_k3s_version_is_replaced_by_the_pinned_one(node: StandbyNode) -> None:
    (node.state / "k3s-installed").write_text("v1.30.0+k3s1\n")
    result = node.boot()
    assert result.returncode == 0
    assert (node.state / "k3s-installed").read_text().strip() == K3S_VERSION
    assert "installing k3s v1.33.1+k3s1 (found: v1.30.0+k3s1)" in result.stdout


# --- changes that reach the node at its next boot --------------------------------------------------


def test_an_edited_manifest_reaches_the_next_boot_and_a_removed_one_leaves(
    node: StandbyNode,
    aws: dict[str, Any],
    parameters: dict[str, str],
    tfenv: TerraformEnv,
    example: Path,
    tf_moto: MotoServer,
    lambda_zip: Path,
    tmp_path: Path,
) -> None:
    assert node.boot().returncode == 0
    untouched = node.manifests / "project-bootstrap.yaml"
    before = untouched.stat().st_mtime_ns
    # A chart bump in argocd/bootstrap, and one manifest dropped, then `terraform apply`.
    edited = tmp_path / "bootstrap"
    shutil.copytree(example.parents[2] / "argocd" / "bootstrap", edited)
    argo = (edited / "argo-cd.yaml").read_text()
    bumped = re.sub(r"(?m)^(\s*version:\s*)\S+", r"\g<1>9.9.9", argo, count=1)
    assert bumped != argo
    (edited / "argo-cd.yaml").write_text(bumped)
    (edited / "root-aws.yaml").unlink()
    changed = planned_parameters(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(edited))
    for name in set(parameters) - set(changed):
        aws["ssm"].delete_parameter(Name=name)
    put_parameters(aws["ssm"], changed)

    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node.manifests / "argo-cd.yaml").read_text() == bumped
    assert not (node.manifests / "root-aws.yaml").exists()
    assert untouched.stat().st_mtime_ns == before  # unchanged files are not rewritten (K3s re-applies on change)
    assert "bootstrap manifests: 2 listed, 1 written, 1 removed" in result.stdout


def test_k3s_restarts_when_its_configuration_changed_at_boot(node: StandbyNode) -> None:
    assert node.boot().returncode == 0
    (node.state / "k3s-active").touch()  # K3s started at boot with the old file
    node.k3s_config.write_text(
        node.k3s_config.read_text().replace('"secrets-encryption": true', '"secrets-encryption": false')
    )
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemctl restart k3s" in node.calls()


def test_the_networks_of_a_started_cluster_are_never_changed(
    node: StandbyNode,
    aws: dict[str, Any],
    tfenv: TerraformEnv,
    example: Path,
    tf_moto: MotoServer,
    lambda_zip: Path,
) -> None:
    assert node.boot().returncode == 0
    node.started_cluster()
    before = node.k3s_config.read_text()
    put_parameters(aws["ssm"], planned_parameters(tfenv, example, tf_moto, lambda_zip, cluster_cidr="10.52.0.0/16"))
    result = node.boot()
    assert result.returncode == 1
    assert "FAILED: k3s-config" in result.stdout
    assert "replace the standby to use the new CIDRs" in result.stdout
    assert node.k3s_config.read_text() == before
    assert "k3s ready" in result.stdout


# --- boots without (complete) access to SSM --------------------------------------------------------


def test_without_ssm_the_last_good_configuration_is_used(node: StandbyNode) -> None:
    assert node.boot().returncode == 0
    result = node.boot({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"})
    assert "WARNING: using the configuration of the last good boot" in result.stdout
    assert "k3s ready" in result.stdout


def test_a_first_boot_without_any_configuration_fails_for_a_retry(node: StandbyNode) -> None:
    result = node.boot({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"})
    assert result.returncode == 1
    assert "FAILED: no configuration from /hfo/standby and none from an earlier boot" in result.stdout
    assert not any(c.startswith("k3s ") for c in node.calls())


def test_a_configuration_caught_half_written_is_not_used(
    node: StandbyNode, aws: dict[str, Any], parameters: dict[str, str]
) -> None:
    assert node.boot().returncode == 0
    good = node.state_dir.joinpath("config", "bootstrap.sh").read_text()
    # An apply under way: the first part of the script is new, the checksums are not yet.
    first = f"{SSM_PATH}/bootstrap.sh/00"
    script = gzip.decompress(
        base64.b64decode("".join(v for n, v in sorted(parameters.items()) if n.startswith(f"{SSM_PATH}/bootstrap.sh/")))
    )
    newer = base64.b64encode(
        gzip.compress(script.replace(b"hfo-bootstrap: done", b"hfo-bootstrap: finished"), mtime=0)
    ).decode()
    aws["ssm"].put_parameter(Name=first, Value=newer[:4096], Type="String", Overwrite=True)
    result = node.boot()
    assert "WARNING: using the configuration of the last good boot" in result.stdout
    assert node.state_dir.joinpath("config", "bootstrap.sh").read_text() == good
    assert "hfo-bootstrap: done" in result.stdout


# --- images ---------------------------------------------------------------------------------------


def test_the_synced_workloads_images_are_pulled_too(node: StandbyNode) -> None:
    node.synced_workloads(["ghcr.io/hfo-example/hfo-bot:0.2.0", "ghcr.io/hfo-example/hfo-site:0.1.0"])
    result = node.boot({"HFO_PREPULL_WAIT_S": "30"})
    assert result.returncode == 0, result.stdout + result.stderr
    # Terraform's list first, then what Git says now (a release not applied yet): each image once.
    assert node.pulled() == [
        "ghcr.io/hfo-example/hfo-site:0.1.0",
        "ghcr.io/hfo-example/hfo-bot:0.1.0",
        "ghcr.io/hfo-example/hfo-bot:0.2.0",
    ]


def test_workloads_not_synced_in_time_are_a_warning(node: StandbyNode) -> None:
    result = node.boot({"HFO_PREPULL_WAIT_S": "0"})
    assert result.returncode == 0
    assert "did not appear within 0s (Argo CD not synced?); pulled Terraform's list only" in result.stdout


def test_an_image_that_cannot_be_pulled_fails_the_boot_for_a_retry(node: StandbyNode) -> None:
    (node.state / "pull-fails").write_text("ghcr.io/hfo-example/hfo-bot:0.1.0\n")
    result = node.boot()
    assert result.returncode == 1
    assert "cannot pull ghcr.io/hfo-example/hfo-bot:0.1.0" in result.stdout
    assert "FAILED: prepull" in result.stdout
    assert node.pulled() == ["ghcr.io/hfo-example/hfo-site:0.1.0"]


def test_systemd_unit_runs_the_loader_at_every_boot_with_bounded_retries() -> None:
    unit = (TEMPLATES / "hfo-bootstrap.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/sbin/hfo-bootstrap" in unit
    assert "WantedBy=multi-user.target" in unit
    assert "Restart=on-failure" in unit
    assert re.search(r"StartLimitBurst=\d+", unit) and re.search(r"TimeoutStartSec=\d+", unit)
