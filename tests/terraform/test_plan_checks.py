"""What `terraform plan` refuses, before anything is created: bad settings (each with a message
naming the setting and its range), overlapping networks, images not built for the standby's
architecture, missing or placeholder inputs from the repository, an instance type that cannot run
K3s, a standby host name equal to the laptop's. Plans only read from the emulator."""

from __future__ import annotations

import json
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.config import Settings
from testsupport.terraform import TerraformEnv, working_copy
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.moto]

SSH_FROM_ANYWHERE = {"description": "ssh", "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}


@pytest.fixture(scope="module")
def example(tfenv: TerraformEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = working_copy(tmp_path_factory.mktemp("plans")) / "examples" / "complete"
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory


def plan(
    tfenv: TerraformEnv, example: Path, moto: MotoServer, lambda_zip: Path, _out: str | None = None, **overrides: Any
) -> tuple[int, str]:
    variables = {
        "aws_emulator": True,
        "region": moto.region,
        "health_url": "https://laptop.example.ts.net/healthz",
        "lambda_zip_path": str(lambda_zip),
        "cpu_credits": "standard",
        **overrides,
    }
    var_file = example / f"plan-{secrets.token_hex(4)}.tfvars.json"
    var_file.write_text(json.dumps(variables), encoding="utf-8")
    try:
        result = tfenv.run(
            ["plan", "-input=false", "-no-color", "-lock=false", "-detailed-exitcode", f"-var-file={var_file.name}"]
            + ([f"-out={_out}"] if _out else []),
            cwd=example,
            extra_env=moto.env(),
        )
    finally:
        var_file.unlink()
    # Terraform wraps long messages; join the lines so that phrases can be searched.
    return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())


def test_defaults_plan_cleanly(tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip)
    assert code == 2, output  # 2: a valid plan with changes
    # Everything the size check needs is known at plan time, so it ran now, not at apply.
    assert "user_data_bytes = " in output
    assert "user_data_bytes = (known after apply)" not in output


# One bad value per setting, all in one plan (Terraform reports every failed validation at
# once, and each message names its own setting, so one plan shows each check working).
BAD_SETTINGS: dict[str, tuple[Any, str]] = {
    "tick_interval_minutes": (0, "tick_interval_minutes must be a whole number from 1"),
    "health_url": ("http://laptop.example.ts.net/healthz", "health_url must be an https:// URL"),
    "tick_reserved_concurrency": (0, "0 would stop the watchdog"),
    "log_retention_days": (10, "log_retention_days must be one of CloudWatch Logs' values"),
    "root_volume_size_gib": (4, "root_volume_size_gib must be a whole number from 8"),
    "architecture": ("sparc", "architecture must be arm64 or x86_64"),
    "alert_email": ("not-an-address", "alert_email must be an e-mail address"),
    "k3s_version": ("latest", "k3s_version must be a K3s release tag"),
    "inbound_rules": ([SSH_FROM_ANYWHERE], "An inbound rule open to the whole internet (/0) is refused"),
    "standby_max_runtime_s": (60, "standby_max_runtime_s must be from 600 to 2592000 seconds"),
    "lambda_memory_mb": (64, "lambda_memory_mb must be a whole number from 128 to 10240"),
    "heartbeat_reserved_concurrency": (1, "whole number from 2 to 1000 (two sites heartbeat at once)"),
    # The fast-failover settings, each refused at plan as the watchdog would refuse it at cold start.
    "prewarm_silence_s": (0, "prewarm_silence_s must be a whole number from 1 to 3600 seconds"),
    "prewarm_hold_s": (9, "prewarm_hold_s must be a whole number from 10 to 86400 seconds"),
    "prewarm_max_per_hour": (13, "prewarm_max_per_hour must be a whole number from 0 (pre-warm off) to 12"),
    "probe_lease_ttl_s": (
        3601,
        "probe_lease_ttl_s must be a whole number from 0 (no renewal over the probe path) to 3600",
    ),
    "probe_renew_after_s": (20.5, "probe_renew_after_s must be a whole number from 0 to 3600 seconds"),
    "handover_heartbeat_interval_s": (301, "handover_heartbeat_interval_s must be a whole number from 1 to 300"),
}


def test_bad_settings_are_refused_each_with_its_range(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **{k: v for k, (v, _) in BAD_SETTINGS.items()})
    assert code == 1
    missing = [name for name, (_, message) in BAD_SETTINGS.items() if message not in output]
    assert missing == [], output[-3000:]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"heartbeat_interval_s": 30}, "heartbeat_interval_s * 3 must be at most lease_ttl_s"),
        ({"lease_ttl_s": 150}, "lease_ttl_s + stop_grace_s + heartbeat_interval_s must be below down_heartbeat_s"),
        # A slower tick with the default probe lease TTL (90 s, not above 120 + 3 + 5): the
        # watchdog would refuse it at cold start, so plan says what to raise.
        (
            {"tick_interval_minutes": 2},
            "probe_lease_ttl_s must be 0 (no renewal over the probe path) or above tick_interval_minutes * 60 "
            "+ probe_connect_timeout_s + probe_read_timeout_s (128), got 90",
        ),
        (
            {"probe_renew_after_s": 9},
            "probe_renew_after_s must be 0 (renew at every passing probe) or at least heartbeat_interval_s (10) "
            "while probe_lease_ttl_s is not 0, got 9",
        ),
    ],
    ids=["heartbeat-vs-lease", "lease-vs-down-window", "probe-lease-vs-tick", "renew-after-vs-heartbeat"],
)
def test_cross_field_rules_of_the_watchdog(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, overrides: dict[str, Any], expected: str
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert code == 1
    assert expected in output, output[-2000:]


@pytest.mark.parametrize(
    "overrides",
    [
        # Renewal over the probe path off, so its two rules no longer apply; pre-warm off; every
        # other fast-failover setting at its lowest.
        {
            "probe_lease_ttl_s": 0, "probe_renew_after_s": 0, "prewarm_max_per_hour": 0,
            "prewarm_silence_s": 1, "prewarm_hold_s": 10, "handover_heartbeat_interval_s": 1,
        },
        # A slower tick with the probe lease TTL raised to match (129 > 120 + 3 + 5), renewal after
        # exactly one heartbeat interval, every other fast-failover setting at its highest.
        {
            "tick_interval_minutes": 2, "probe_lease_ttl_s": 129, "probe_renew_after_s": 10,
            "prewarm_max_per_hour": 12, "prewarm_silence_s": 3600, "prewarm_hold_s": 86400,
            "handover_heartbeat_interval_s": 300,
        },
    ],
    ids=["renewal-and-prewarm-off", "slower-tick-and-highest"],
)  # fmt: skip
def test_fast_failover_settings_the_watchdog_accepts_are_planned(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, overrides: dict[str, Any]
) -> None:
    """The plan-time checks refuse no more than the watchdog does: each of these plans, and the
    watchdog reads the same values (named as the module names them: HFO_ + the variable in upper
    case) into the policy it runs."""
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert code == 2, output[-3000:]
    env = {
        "HFO_TABLE_NAME": "hfo-state",
        "HFO_INSTANCE_ID": "i-0123456789abcdef0",
        "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz",
        "HFO_HMAC_SECRET_ARN": "/hfo/hmac-keyring",
        "HFO_TICK_INTERVAL_S": str(overrides.get("tick_interval_minutes", 1) * 60),
        **{f"HFO_{name.upper()}": str(value) for name, value in overrides.items() if name != "tick_interval_minutes"},
    }
    policy = Settings.from_env(env).policy
    assert {name: getattr(policy, name) for name in overrides if hasattr(policy, name)} == {
        name: value for name, value in overrides.items() if name != "tick_interval_minutes"
    }


def _incompressible_manifest(size: int) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: filler, namespace: default}", "data:"]
    lines += [f"  k{i}: {secrets.token_urlsafe(60)}" for i in range(size // 70)]
    return "\n".join(lines) + "\n"


def _planned_parameters(
    tfenv: TerraformEnv, example: Path, moto: MotoServer, lambda_zip: Path, **overrides: Any
) -> dict[str, str]:
    tag = secrets.token_hex(4)
    code, output = plan(tfenv, example, moto, lambda_zip, _out=f"p-{tag}.tfplan", **overrides)
    assert code == 2, output[-3000:]
    try:
        shown = tfenv.run(["show", "-json", f"p-{tag}.tfplan"], cwd=example, extra_env=moto.env())
    finally:
        (example / f"p-{tag}.tfplan").unlink()
    return {
        c["change"]["after"]["name"]: c["change"]["after"]["value"]
        for c in json.loads(shown.stdout)["resource_changes"]
        # The node's configuration; the secrets' parameters have no value in a plan (write-only).
        if c["type"] == "aws_ssm_parameter" and c["address"].startswith("module.hfo.module.standby.")
    }


def test_a_large_manifest_is_cut_into_free_standard_parameters(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    """SSM's Standard tier (free) takes at most 4096 characters a parameter, which moto does not
    enforce: a 20 KB manifest that gzip cannot shrink is cut into parts that each fit."""
    manifests = tmp_path / "manifests"
    shutil.copytree(example.parents[2] / "argocd" / "bootstrap", manifests)
    (manifests / "big.yaml").write_text(_incompressible_manifest(20000), encoding="utf-8")
    (manifests / "ignored.txt").write_text("not a manifest", encoding="utf-8")
    parameters = _planned_parameters(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(manifests))
    big = sorted(n for n in parameters if n.startswith("/hfo/standby/manifests/big.yaml/"))
    assert len(big) >= 5
    assert big == [f"/hfo/standby/manifests/big.yaml/{i:02d}" for i in range(len(big))]
    assert max(len(v) for v in parameters.values()) <= 4096
    assert not any("ignored.txt" in n for n in parameters)


def test_missing_manifests_are_refused(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(tmp_path / "nothing-here"))
    assert code == 1
    assert "No bootstrap manifests (*.yaml) in" in output
    assert "the standby would be a plain K3s node without Argo CD" in output


def test_the_placeholder_repository_and_registry_are_refused(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path
) -> None:
    """The repository's own files, before docs/walkthrough.md step 2: Argo CD would sync nothing."""
    code, output = plan(
        tfenv, example, tf_moto, lambda_zip,
        bootstrap_manifests_dir=str(REPO_ROOT / "argocd" / "bootstrap"),
        workload_images=["ghcr.io/your-github-user/hfo-bot:0.1.0"],
    )  # fmt: skip
    assert code == 1
    assert "still point Argo CD at the placeholder repository (your-github-user)" in output
    assert "python3 argocd/set_repo_url.py" in output
    assert "ghcr.io/your-github-user/hfo-bot:0.1.0 still name the placeholder owner" in output
    assert "make images" in output


def test_a_missing_lambda_package_is_refused(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, tmp_path: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, tmp_path / "hfo-watchdog.zip")
    assert code == 1
    assert "is not an existing .zip file: run `make lambda-zip`" in output


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"vpc_cidr": "10.42.0.0/24"},  # the old default, inside K3s's default pod network
            ["VPC (vpc_cidr) 10.42.0.0/24 and pod network (cluster_cidr) 10.42.0.0/16",
             "pod network (cluster_cidr) 10.42.0.0/16 and subnet (subnet_cidr) 10.42.0.0/26"],
        ),
        (
            {"vpc_cidr": "10.43.8.0/24", "subnet_cidr": "10.43.8.64/26"},
            ["VPC (vpc_cidr) 10.43.8.0/24 and service network (service_cidr) 10.43.0.0/16",
             "service network (service_cidr) 10.43.0.0/16 and subnet (subnet_cidr) 10.43.8.64/26"],
        ),
        (
            {"cluster_cidr": "10.40.0.0/14"},
            ["pod network (cluster_cidr) 10.40.0.0/14 and service network (service_cidr) 10.43.0.0/16"],
        ),
        (
            {"vpc_cidr": "100.64.0.0/24"},
            ["vpc_cidr (100.64.0.0/24) must be a private (RFC 1918) range", "100.64.0.0/10"],
        ),
        ({"cluster_cidr": "100.64.0.0/16"}, ["cluster_cidr must be a private (RFC 1918) IPv4 block", "100.64.0.0/10"]),
        ({"service_cidr": "100.100.0.0/16"}, ["service_cidr must be a private (RFC 1918) IPv4 block", "100.64.0.0/10"]),
        ({"subnet_cidr": "10.201.0.0/26"}, ["subnet_cidr (10.201.0.0/26) must lie inside vpc_cidr (10.200.0.0/24)"]),
    ],
    ids=["vpc-and-subnet-vs-pods", "vpc-and-subnet-vs-services", "pods-vs-services", "vpc-vs-tailnet",
         "pods-vs-tailnet", "services-vs-tailnet", "subnet-outside-vpc"],
)  # fmt: skip
def test_overlapping_networks_are_refused(
    tfenv: TerraformEnv,
    example: Path,
    tf_moto: MotoServer,
    lambda_zip: Path,
    overrides: dict[str, Any],
    expected: list[str],
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert code == 1
    missing = [e for e in expected if e not in output]
    assert missing == [], output[-3000:]


def test_k3s_networks_cannot_be_set_around_the_checks(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, k3s_config={"cluster-cidr": "10.200.0.0/16"})
    assert code == 1
    assert "k3s_config must not set node-name, cluster-cidr, service-cidr or cluster-dns" in output


@pytest.mark.parametrize(
    ("overrides", "code", "expected"),
    [
        ({"image_platforms": ["linux/amd64"]}, 1,
         "The standby is arm64 (t4g.small), so its images must be built for linux/arm64, "
         "but image_platforms is [linux/amd64]"),
        ({"image_platforms": ["linux/arm64"], "architecture": "x86_64"}, 1,
         "The standby is x86_64 (t3.small), so its images must be built for linux/amd64"),
        ({"image_platforms": ["linux/amd64"], "architecture": "x86_64"}, 2, ""),
    ],
    ids=["arm64-standby-amd64-images", "x86-standby-arm64-images", "x86-standby-amd64-images"],
)  # fmt: skip
def test_images_must_be_built_for_the_standbys_architecture(
    tfenv: TerraformEnv,
    example: Path,
    tf_moto: MotoServer,
    lambda_zip: Path,
    overrides: dict[str, Any],
    code: int,
    expected: str,
) -> None:
    result, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert result == code, output[-3000:]
    assert expected in output


def test_fallback_types_must_fit_the_standby(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, fallback_instance_types=["t4g.medium", "t3.medium"])
    assert code == 1
    assert "Every fallback_instance_types entry must support the standby's architecture (arm64)" in output


def test_standby_hostname_equal_to_the_laptops_is_refused(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, health_url="https://hfo-standby.tail1234.ts.net/healthz")
    assert code == 1
    assert "must differ from the laptop's Tailscale host name" in output


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"instance_type": "t3.small"}, "does not support architecture arm64"),
        ({"instance_type": "t4g.micro"}, "K3s's server minimum is 2 GiB"),
    ],
    ids=["wrong-architecture", "too-little-memory"],
)
def test_instance_type_must_fit_k3s_and_the_architecture(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, overrides: dict[str, Any], expected: str
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert code == 1
    assert expected in output, output[-2000:]


def _plan_with_secret_values(
    tfenv: TerraformEnv, example: Path, moto: MotoServer, lambda_zip: Path, secret_env: dict[str, str], out: Path
) -> tuple[int, str]:
    var_file = example / "saved-plan.tfvars.json"
    variables = {
        "aws_emulator": True,
        "region": moto.region,
        "health_url": "https://laptop.example.ts.net/healthz",
        "lambda_zip_path": str(lambda_zip),
        "secret_values_version": 1,
    }
    var_file.write_text(json.dumps(variables), encoding="utf-8")
    try:
        result = tfenv.run(
            ["plan", "-input=false", "-no-color", "-lock=false", f"-var-file={var_file.name}", f"-out={out}"],
            cwd=example,
            extra_env={**moto.env(), **secret_env},
        )
    finally:
        var_file.unlink()
    return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())


def test_no_secret_value_in_a_saved_plan(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    """Ephemeral secret variables never land in a plan file (which users often keep or upload)."""
    keyring = secrets.token_urlsafe(48)
    secret_env = {
        "TF_VAR_hmac_keyring": keyring,
        "TF_VAR_tailscale_auth_key": "tskey-auth-" + secrets.token_hex(16),
        "TF_VAR_discord_webhook_url": f"https://discord.com/api/webhooks/1234/{secrets.token_urlsafe(30)}",
    }
    plan_file = tmp_path / "saved.tfplan"
    code, output = _plan_with_secret_values(tfenv, example, tf_moto, lambda_zip, secret_env, plan_file)
    assert code == 0, output[-2000:]
    with zipfile.ZipFile(plan_file) as archive:  # a plan file is a zip of the plan and state snapshots
        contents = b"".join(archive.read(name) for name in archive.namelist())
    assert b"hmac-keyring" in contents  # the plan does describe the secret...
    for value in secret_env.values():
        assert value.encode() not in contents  # ...but holds none of the values
    shown = tfenv.run(["show", "-json", str(plan_file)], cwd=example, extra_env=tf_moto.env())
    assert shown.returncode == 0
    for value in secret_env.values():
        assert value not in shown.stdout


def test_writing_secret_values_needs_every_value(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    secret_env = {"TF_VAR_hmac_keyring": secrets.token_urlsafe(48), "TF_VAR_tailscale_auth_key": "tskey-auth-abc"}
    code, output = _plan_with_secret_values(tfenv, example, tf_moto, lambda_zip, secret_env, tmp_path / "p")
    assert code == 1
    assert "discord_webhook_url is not set" in output
    assert "TF_VAR_discord_webhook_url" in output
    assert secret_env["TF_VAR_hmac_keyring"] not in output
