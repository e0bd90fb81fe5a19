"""What `terraform plan` refuses, before anything is created: bad settings (each with a message
naming the setting and its range), user data over EC2's 16 KiB limit, an instance type that
cannot run K3s, a standby host name equal to the laptop's. Plans only read from the emulator."""

from __future__ import annotations

import json
import secrets
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.moto_server import MotoServer
from testsupport.terraform import TerraformEnv, working_copy

pytestmark = [pytest.mark.terraform, pytest.mark.moto]

SSH_FROM_ANYWHERE = {"description": "ssh", "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}


@pytest.fixture(scope="module")
def example(tfenv: TerraformEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = working_copy(tmp_path_factory.mktemp("plans")) / "examples" / "complete"
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory


def plan(tfenv: TerraformEnv, example: Path, moto: MotoServer, lambda_zip: Path, **overrides: Any) -> tuple[int, str]:
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
            ["plan", "-input=false", "-no-color", "-lock=false", "-detailed-exitcode", f"-var-file={var_file.name}"],
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
    "secret_recovery_window_days": (3, "recovery_window_days must be 0 or a whole number from 7 to 30"),
    "inbound_rules": ([SSH_FROM_ANYWHERE], "An inbound rule open to the whole internet (/0) is refused"),
    "standby_max_runtime_s": (60, "standby_max_runtime_s must be from 600 to 2592000 seconds"),
    "lambda_memory_mb": (64, "lambda_memory_mb must be a whole number from 128 to 10240"),
    "heartbeat_reserved_concurrency": (1, "whole number from 2 to 1000 (two sites heartbeat at once)"),
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
    ],
    ids=["heartbeat-vs-lease", "lease-vs-down-window"],
)
def test_cross_field_rules_of_the_watchdog(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, overrides: dict[str, Any], expected: str
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, **overrides)
    assert code == 1
    assert expected in output, output[-2000:]


def _incompressible_manifest(size: int) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: filler, namespace: default}", "data:"]
    lines += [f"  k{i}: {secrets.token_urlsafe(60)}" for i in range(size // 70)]
    return "\n".join(lines) + "\n"


def test_user_data_over_16_kib_is_refused_at_plan(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "big.yaml").write_text(_incompressible_manifest(20000), encoding="utf-8")
    code, output = plan(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(manifests))
    assert code == 1
    assert "EC2 allows less than 16384" in output
    assert "HelmChart" in output  # says how to shrink it


def test_manifests_are_compressed_into_the_user_data(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    # 48 KB of repetitive YAML: far above the limit raw, well below it gzip-compressed.
    body = "".join(f"  key{i:05d}: value-{i % 7}\n" for i in range(2400))
    (manifests / "big-but-regular.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\ndata:\n{body}", encoding="utf-8")
    (manifests / "ignored.txt").write_text("not a manifest", encoding="utf-8")
    assert len(body) > 2 * 16384
    code, output = plan(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(manifests))
    assert code == 2, output[-2000:]


def test_missing_manifests_directory_gives_a_plain_node(
    tfenv: TerraformEnv, example: Path, tf_moto: MotoServer, lambda_zip: Path, tmp_path: Path
) -> None:
    code, output = plan(tfenv, example, tf_moto, lambda_zip, bootstrap_manifests_dir=str(tmp_path / "nothing-here"))
    assert code == 2, output[-2000:]


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
