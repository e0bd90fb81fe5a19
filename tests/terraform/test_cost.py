"""`make cost` (tools/cost/cost.py): the arithmetic of every line against hand-computed figures
on a synthetic price table, settings read from Terraform's own defaults and the user's tfvars,
and refusals of bad settings and bad price tables that name the problem."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from testsupport.tools import REPO_ROOT

COST_PY = REPO_ROOT / "tools" / "cost" / "cost.py"


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hfo_cost", COST_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Round numbers, so every expected figure below can be checked by hand.
PRICES: dict[str, Any] = {
    "meta": {"currency": "USD", "compiled": "2026-01-01", "hours_per_month": 730, "usd_to_eur": 0.5},
    "sources": {"all": "test"},
    "regions": {
        "test-1": {
            "name": "Test",
            "ebs_gp3_gb_month": 0.1,
            "public_ipv4_hour": 0.005,
            "lambda_requests_per_million": 1.0,
            "lambda_gb_second": {"arm64": 0.00001, "x86_64": 0.00002},
            "scheduler_invocations_per_million": 1.0,
            "dynamodb_write_units_per_million": 1.0,
            "dynamodb_read_units_per_million": 0.1,
            "dynamodb_storage_gb_month": 0.25,
            "dynamodb_pitr_gb_month": 0.2,
            "logs_ingestion_gb": 0.5,
            "logs_storage_gb_month": 0.03,
            "custom_metric_month": 0.3,
            "alarm_month": 0.1,
            "ssm_parameter_month": 0.0,
            "ssm_api_per_10k": 0.0,
            "kms_requests_per_10k": 0.03,
            "cpu_credit_vcpu_hour": {"t4g": 0.04, "t3": 0.05},
            "ec2_hour": {"t4g.nano": 0.01, "t4g.small": 0.02, "t3.small": 0.03},
            "s3_put_per_1k": 0.005,
            "s3_get_per_1k": 0.0004,
            "s3_storage_gb_month": 0.025,
            "unverified": ["ec2_hour"],
        }
    },
    "instance_types": {
        "t4g.nano": {"vcpus": 2, "baseline": 0.05, "credit_family": "t4g"},
        "t4g.small": {"vcpus": 2, "baseline": 0.2, "credit_family": "t4g"},
        "t3.small": {"vcpus": 2, "baseline": 0.2, "credit_family": "t3"},
    },
    "free_tier": {
        "lambda_requests": 1_000_000,
        "lambda_gb_seconds": 400_000,
        "scheduler_invocations": 14_000_000,
        "custom_metrics": 10,
        "alarms": 10,
        "logs_gb": 5,
        "dynamodb_storage_gb": 25,
        "kms_requests": 20_000,
    },
    "usage": {
        "sites_heartbeating_idle": 1,
        "heartbeat_duration_ms": 100,
        "tick_duration_ms": 1000,
        "heartbeat_write_units": 1,
        "heartbeat_read_units": 1,
        "tick_write_units": 2,
        "tick_read_units": 3,
        "heartbeat_log_bytes": 1000,
        "tick_log_bytes": 2000,
        "custom_metrics": 6,
        "metrics_log_bytes": 1000,
        "cold_starts_per_day": 24,
        "state_gb": 0.001,
        "state_snapshot_mib": 2,
        "state_workloads": 1,
        "durations_at_memory_mb": 256,
        "one_vcpu_mb": 1024,
        "heartbeat_cpu_ms": 10,
        "tick_cpu_ms": 25,
    },
    "benchmark": {
        "trace": "blips",
        "source": "test",
        "prewarm_usd_per_trace": 0.05,
        "prewarm_trace_hours": 6,
        "prewarm_traces_per_month": 2,
    },
    "seed": {"claim_eur_month": 0.1, "table_eur_month": 0.91},
}


def settings(cost: ModuleType, **overrides: Any):
    values = {
        "region": "test-1",
        "architecture": "arm64",
        "instance_type": "t4g.small",
        "root_volume_size_gib": 10,
        "cpu_credits": "unlimited",
        "tick_interval_minutes": 1,
        "heartbeat_interval_s": 10.0,
        "lambda_memory_mb": 256,
        "lambda_architecture": "arm64",
        "log_retention_days": 14,
        "discord_alerts": True,
        **overrides,
    }
    return cost.Settings(**values)


def lines(result) -> dict[str, Any]:
    return {line.item.split(" (")[0]: line for line in result.idle + result.failover_hour}


def test_idle_month_line_by_line(cost: ModuleType) -> None:
    result = cost.estimate(settings(cost), PRICES)
    by = lines(result)
    # 730 h = 2,628,000 s: 262,800 heartbeats every 10 s and 43,800 ticks a minute apart.
    assert by["EBS gp3 root volume"].usd == pytest.approx(1.0)  # 10 GiB x 0.1
    assert by["Public IPv4 while stopped"].usd == 0
    assert by["Lambda requests"].usd == pytest.approx(0.3066)  # 306,600 x 1/M
    # 262,800 x 0.1 s + 43,800 x 1 s = 70,080 s, x 0.25 GB = 17,520 GB-s, x 0.00001
    assert by["Lambda compute"].usd == pytest.approx(0.1752)
    assert by["EventBridge Scheduler invocations"].usd == pytest.approx(0.0438)
    assert by["DynamoDB on-demand writes"].usd == pytest.approx(0.3504)  # 262,800 + 87,600 WRU
    assert by["DynamoDB on-demand reads"].usd == pytest.approx(0.03942)  # (262,800 + 131,400) x 0.1/M
    assert by["DynamoDB storage + point-in-time recovery"].usd == pytest.approx(0.00045)
    assert by["CloudWatch Logs ingestion"].usd == pytest.approx(0.1752)  # (262.8 + 87.6) MB = 0.3504 GB
    assert by["CloudWatch Logs storage"].usd == pytest.approx(0.3504 * 14 / (365.25 / 12) * 0.03)
    assert by["CloudWatch custom metrics"].usd == 0  # opt-in
    assert by["CloudWatch alarms"].usd == pytest.approx(0.2)  # the tick (failing or silent), heartbeat errors
    assert by["SSM SecureString parameters"].usd == 0  # Standard tier: free at rest
    # 24 cold starts a day per function, 3 secret reads per pair of cold starts, each a KMS decrypt.
    reads = 24 * 365.25 / 12 * 3
    assert by["SSM reads + KMS decrypts"].usd == pytest.approx(reads / 1e4 * 0.03)
    assert by["Pre-warm, expected"].usd == pytest.approx(0.1)  # 2 runs of the trace x 0.05
    # The failover benchmark adds its own runs' EC2 minutes to the rest.
    assert result.idle_total_without_prewarm == pytest.approx(result.idle_total - 0.1)
    assert result.idle_total == pytest.approx(sum(line.usd for line in result.idle))


def test_free_tier_column(cost: ModuleType) -> None:
    by = lines(cost.estimate(settings(cost), PRICES))
    for covered in (
        "Lambda requests", "Lambda compute", "EventBridge Scheduler invocations", "CloudWatch Logs ingestion",
        "CloudWatch Logs storage", "CloudWatch custom metrics", "CloudWatch alarms",
    ):  # fmt: skip
        assert by[covered].usd_free_tier == 0, covered
    for uncovered in ("EBS gp3 root volume", "DynamoDB on-demand writes", "Pre-warm, expected"):
        assert by[uncovered].usd_free_tier == by[uncovered].usd
    # Storage is free, PITR is not.
    assert by["DynamoDB storage + point-in-time recovery"].usd_free_tier == pytest.approx(0.0002)
    # Beyond an allowance only the excess is billed: 6 metrics against an allowance of 4.
    prices = copy.deepcopy(PRICES)
    prices["free_tier"]["custom_metrics"] = 4
    metrics = lines(cost.estimate(settings(cost, custom_metrics=True), prices))["CloudWatch custom metrics"]
    assert metrics.usd_free_tier == pytest.approx(0.6)


def test_failover_hour(cost: ModuleType) -> None:
    result = cost.estimate(settings(cost), PRICES)
    by = lines(result)
    assert by["EC2 t4g.small"].usd == 0.02
    assert by["EC2 t4g.small"].unverified  # the table says so; the output marks it
    assert by["Public IPv4 address while running"].usd == 0.005
    # 360 heartbeats: 360/M requests + 360 x 0.1 s x 0.25 GB x 0.00001 + 360 WRU + 360 RRU + 360 KB of logs
    expected = 360e-6 + 360 * 0.1 * 0.25 * 0.00001 + 360e-6 + 360 * 0.1e-6 + 360_000 / 1e9 * 0.5
    assert by["Standby heartbeats: Lambda, DynamoDB, logs"].usd == pytest.approx(expected)
    assert result.failover_hour_total == pytest.approx(0.025 + expected)
    # Unlimited credits: at most 2 vCPUs x 80 % above baseline x 0.04.
    assert result.cpu_credit_worst_hour == pytest.approx(0.064)
    assert cost.estimate(settings(cost, cpu_credits="standard"), PRICES).cpu_credit_worst_hour == 0


def test_month_with_failover_hours(cost: ModuleType) -> None:
    result = cost.estimate(settings(cost, failover_hours=10), PRICES)
    assert result.month_total(False) == pytest.approx(result.idle_total + 10 * result.failover_hour_total)
    assert result.month_total(True) == pytest.approx(result.idle_total_free_tier + 10 * result.failover_hour_total)


def test_settings_drive_the_figures(cost: ModuleType) -> None:
    base = lines(cost.estimate(settings(cost), PRICES))
    slower = lines(cost.estimate(settings(cost, heartbeat_interval_s=20.0), PRICES))
    # Half the heartbeats: 131,400 + 87,600 WRU.
    assert slower["DynamoDB on-demand writes"].usd == pytest.approx(0.219)
    assert slower["Lambda requests"].usd == pytest.approx(0.1752)
    bigger = lines(cost.estimate(settings(cost, root_volume_size_gib=20), PRICES))
    assert bigger["EBS gp3 root volume"].usd == pytest.approx(2 * base["EBS gp3 root volume"].usd)
    # Half the memory: each function's CPU time takes twice as long (Lambda's share of a vCPU
    # halves), its network wait does not. 10 ms of CPU at 256 MB of a 1,024 MB vCPU is 40 ms; at
    # 128 MB, 80: a heartbeat 100 - 40 + 80 = 140 ms, a tick 1000 - 100 + 200 = 1100 ms.
    # (262,800 x 0.14 + 43,800 x 1.1) s x 0.125 GB x 0.00001 = 0.106215, not half of 0.1752.
    small = lines(cost.estimate(settings(cost, lambda_memory_mb=128), PRICES))
    assert small["Lambda compute"].usd == pytest.approx(0.106215)
    # Past one vCPU, more memory buys no more CPU: 100 - 40 + 10 = 70 ms, 1000 - 100 + 25 = 925 ms.
    large = lines(cost.estimate(settings(cost, lambda_memory_mb=2048), PRICES))
    assert large["Lambda compute"].usd == pytest.approx((262_800 * 0.07 + 43_800 * 0.925) * 2 * 0.00001)
    x86 = lines(cost.estimate(settings(cost, lambda_architecture="x86_64"), PRICES))
    assert x86["Lambda compute"].usd == pytest.approx(2 * base["Lambda compute"].usd)
    no_discord = lines(cost.estimate(settings(cost, discord_alerts=False), PRICES))
    assert no_discord["SSM SecureString parameters"].quantity == "2"
    # Opt-ins: 6 custom metrics and their EMF document in every tick's log; a fourth alarm.
    metrics = lines(cost.estimate(settings(cost, custom_metrics=True), PRICES))
    assert metrics["CloudWatch custom metrics"].usd == pytest.approx(1.8)
    assert metrics["CloudWatch Logs ingestion"].usd == pytest.approx(base["CloudWatch Logs ingestion"].usd + 0.0219)
    alarm = lines(cost.estimate(settings(cost, standby_runtime_alarm=True), PRICES))
    assert alarm["CloudWatch alarms"].usd == pytest.approx(0.3)


def test_defaults_come_from_the_terraform_modules(cost: ModuleType) -> None:
    s = cost.read_settings()
    assert (s.region, s.architecture, s.instance_type) == ("us-east-1", "arm64", "t4g.small")
    assert s.root_volume_size_gib == 8
    assert (s.tick_interval_minutes, s.lambda_memory_mb) == (1, 256)
    assert s.heartbeat_interval_s > 0  # issue 12 chooses it; the cadence table shows its cost
    assert (s.custom_metrics, s.standby_runtime_alarm) == (False, False)
    assert (s.lambda_architecture, s.log_retention_days, s.discord_alerts, s.cpu_credits) == (
        "arm64", 14, True, "unlimited",
    )  # fmt: skip


def test_tfvars_override_defaults_in_hcl_and_json(cost: ModuleType, tmp_path: Path) -> None:
    hcl = tmp_path / "my.tfvars"
    hcl.write_text(
        'region = "eu-west-3"\narchitecture = "x86_64"\nheartbeat_interval_s = 30\n'
        "root_volume_size_gib = null  # null keeps the module's default\n"
        'health_url = "https://laptop.example.ts.net/healthz"\n'
    )
    s = cost.read_settings(hcl)
    assert (s.region, s.architecture, s.instance_type) == ("eu-west-3", "x86_64", "t3.small")
    assert s.heartbeat_interval_s == 30
    assert s.root_volume_size_gib == 8
    as_json = tmp_path / "my.tfvars.json"
    as_json.write_text(json.dumps({"instance_type": "t4g.medium", "discord_alerts": False}))
    s = cost.read_settings(as_json, region="eu-west-3")
    assert (s.instance_type, s.discord_alerts, s.region) == ("t4g.medium", False, "eu-west-3")


@pytest.mark.parametrize(
    ("tfvars", "message"),
    [
        ("heartbeat_interval_s = 0", "heartbeat_interval_s must be a number from 1 to 300, got 0"),
        ("tick_interval_minutes = 1.5", "tick_interval_minutes must be a whole number from 1 to 60, got 1.5"),
        ("root_volume_size_gib = 2000", "root_volume_size_gib must be a whole number from 8 to 1024, got 2000"),
        ('architecture = "sparc"', "architecture must be one of arm64, x86_64, got 'sparc'"),
        ("log_retention_days = 10", "log_retention_days must be one of 1, 3, 5, 7, 14"),
        ('lambda_memory_mb = "lots"', "lambda_memory_mb must be a whole number from 128 to 10240, got 'lots'"),
        ("heartbeat_intervl_s = 30", "unknown variable(s) heartbeat_intervl_s"),
        ("this is not hcl", "not a valid tfvars file"),
        ('state_bucket_enabled = "yes"', "state_bucket_enabled must be true or false, got 'yes'"),
        ("state_bucket_enabled = 1", "state_bucket_enabled must be true or false, got 1"),
        ("state_bucket_enable = true", "unknown variable(s) state_bucket_enable"),
        ("state_superseded_retention_days = 0", "state_superseded_retention_days must be a whole number from 1 to 30"),
        (
            "state_retention_days = 14\nstate_superseded_retention_days = 21",
            "state_superseded_retention_days must be a whole number from 1 to 14, got 21",
        ),
        ("state_retention_days = 4000", "state_retention_days must be a whole number from 1 to 3650, got 4000"),
    ],
)
def test_bad_settings_are_refused(cost: ModuleType, tmp_path: Path, tfvars: str, message: str) -> None:
    path = tmp_path / "bad.tfvars"
    path.write_text(tfvars + "\n")
    with pytest.raises(cost.CostInputError) as raised:
        cost.read_settings(path)
    assert message in str(raised.value)


def test_bad_failover_hours_and_missing_file(cost: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(cost.CostInputError, match=r"failover hours per month must be a number from 0 to 730, got -1"):
        cost.read_settings(failover_hours=-1)
    with pytest.raises(cost.CostInputError, match="not found"):
        cost.read_settings(tmp_path / "missing.tfvars")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "mars-1"}, "region 'mars-1' has no prices; known: test-1"),
        ({"instance_type": "m7g.large"}, "'m7g.large' has no price in test-1; known: t3.small, t4g.nano, t4g.small"),
        ({"instance_type": "t3.small"}, "instance_type t3.small does not match architecture arm64"),
    ],
)
def test_settings_the_price_table_cannot_price(
    cost: ModuleType, overrides: dict[str, Any], message: str
) -> None:  # fmt: skip
    with pytest.raises(cost.CostInputError, match=re.escape(message)):
        cost.estimate(settings(cost, **overrides), PRICES)


def _write_toml(path: Path, prices: dict[str, Any]) -> Path:
    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return json.dumps(v)

    sections = []
    for name, table in prices.items():
        if name in ("regions", "instance_types"):
            for sub, body in table.items():
                sections.append(f'[{name}."{sub}"]\n' + "\n".join(f"{k} = {value(v)}" for k, v in body.items()))
        else:
            sections.append(f"[{name}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in table.items()))
    path.write_text("\n\n".join(sections) + "\n")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["meta"].pop("compiled"), "needs [meta] compiled (a date) and [sources]"),
        (lambda p: p.pop("sources"), "needs [meta] compiled (a date) and [sources]"),
        (lambda p: p["regions"]["test-1"].update(alarm_month=-0.1), "regions.test-1.alarm_month: prices and"),
        (lambda p: p["regions"]["test-1"].pop("ssm_parameter_month"), "regions.test-1: missing ssm_parameter_month"),
        (lambda p: p["benchmark"].pop("source"), "[benchmark] needs `trace` and `source`"),
        (lambda p: p["benchmark"].update(prewarm_usd_per_trace=-1), "benchmark.prewarm_usd_per_trace: prices and"),
        (lambda p: p["seed"].pop("claim_eur_month"), "[seed] needs claim_eur_month"),
        (lambda p: p["regions"]["test-1"].update(unverified=["ec2_hour:m9.huge"]), "names 'ec2_hour:m9.huge'"),
        (lambda p: p["regions"]["test-1"].update(unverified=["nonsense"]), "unverified names 'nonsense'"),
        (lambda p: p["usage"].update(tick_duration_ms="fast"), "usage.tick_duration_ms: prices and quantities"),
    ],
)
def test_bad_price_tables_are_refused(cost: ModuleType, tmp_path: Path, mutate, message: str) -> None:
    prices = copy.deepcopy(PRICES)
    mutate(prices)
    with pytest.raises(cost.CostInputError, match=re.escape(message)):
        cost.load_prices(_write_toml(tmp_path / "prices.toml", prices))


def test_synthetic_table_round_trips(cost: ModuleType, tmp_path: Path) -> None:
    assert cost.load_prices(_write_toml(tmp_path / "prices.toml", PRICES)) == PRICES


def test_shipped_price_table_is_complete_dated_and_sourced(cost: ModuleType) -> None:
    prices = cost.load_prices()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices["meta"]["compiled"])
    assert {"us-east-1", "eu-west-3"} <= set(prices["regions"])
    for region in prices["regions"].values():
        for instance_type in ("t4g.small", "t3.small"):  # the module's defaults
            assert instance_type in region["ec2_hour"]
    assert all(url.startswith("https://aws.amazon.com/") for url in prices["sources"].values())


def test_counts_match_the_terraform_modules(cost: ModuleType) -> None:
    """The tool's alarm and secret counts are what the modules create."""
    watchdog = (REPO_ROOT / "terraform" / "modules" / "watchdog" / "main.tf").read_text()
    pattern = r'resource "aws_cloudwatch_metric_alarm" "\w+" \{\n\s+(for_each\s+= local.function_names|count )?'
    alarms = re.findall(pattern, watchdog)
    functions = len(re.findall(r"^    (\w+)\s+= \{ handler = ", watchdog, flags=re.MULTILINE))
    assert functions == 2
    # Always there: the tick's and the heartbeat's; the opt-in one (count) is counted by the setting.
    assert sum(functions if head.startswith("for_each") else 0 if head else 1 for head in alarms) == cost.ALARMS
    assert sum(head.startswith("count") for head in alarms) == 1
    secrets = (REPO_ROOT / "terraform" / "modules" / "secrets" / "main.tf").read_text()
    blocks = re.findall(r'resource "aws_ssm_parameter" "\w+" \{(.*?)\n\}', secrets, flags=re.DOTALL)
    assert all('type             = "SecureString"' in body and '"Standard"' in body for body in blocks)
    assert sum("count" not in body for body in blocks) == cost.BASE_SECRETS


def test_command_prints_every_item_and_fails_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(COST_PY), "--failover-hours", "5"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for item in ("EBS gp3", "Lambda requests", "Lambda compute", "Scheduler", "DynamoDB", "Logs ingestion",
                 "custom metrics", "alarms", "SSM SecureString", "Public IPv4", "EC2 t4g.small",
                 "Pre-warm, expected", "Always on, t4g.small", "Always on, t4g.nano",
                 "The seed tutorial's claim", "every 5 s", "every 30 s"):  # fmt: skip
        assert item in result.stdout, item
    assert re.search(r"Total idle per month\s+\d+\.\d\d\s+\d+\.\d\d", result.stdout)
    assert "A month with 5 h of failover" in result.stdout
    bad = tmp_path / "bad.tfvars"
    bad.write_text("heartbeat_interval_s = 1000\n")
    refused = subprocess.run(
        [sys.executable, str(COST_PY), "--tfvars", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "heartbeat_interval_s must be a number from 1 to 300, got 1000" in refused.stderr


def test_beside_it_an_always_on_server_and_the_seeds_claim(cost: ModuleType) -> None:
    result = cost.estimate(settings(cost), PRICES)
    by = {c.label: c for c in result.comparisons}
    # 730 h of the instance and of its public IPv4 address, and the same 10 GiB volume.
    assert by["Always on, t4g.small"].usd == pytest.approx(730 * (0.02 + 0.005) + 1.0)
    assert by["Always on, t4g.nano"].usd == pytest.approx(730 * (0.01 + 0.005) + 1.0)
    assert by["Always on, t4g.nano"].unverified  # ec2_hour is unverified in the synthetic table
    assert by["The seed tutorial's claim"].usd == pytest.approx(0.1 / 0.5)  # EUR at the table's rate
    assert "0.91 EUR" in by["The seed tutorial's claim"].detail
    text = cost.render(result)
    assert "Always on, t4g.nano *" in text and "The seed tutorial's claim" in text


def test_the_cadence_table_is_the_estimate_at_each_interval(cost: ModuleType) -> None:
    result = cost.estimate(settings(cost), PRICES, cadences=(5.0, 10.0, 30.0))
    assert [c[0] for c in result.cadences] == [5.0, 10.0, 30.0]
    for interval, usd, usd_free in result.cadences:
        alone = cost.estimate(settings(cost, heartbeat_interval_s=interval), PRICES, cadences=())
        assert (usd, usd_free) == pytest.approx((alone.idle_total, alone.idle_total_free_tier))
    assert result.cadences[1][1] == pytest.approx(result.idle_total)  # the defaults' own row
    assert result.cadences[0][1] > result.cadences[1][1] > result.cadences[2][1]
    assert "every 10 s" in cost.render(result) and "<- this estimate" in cost.render(result)


def test_bad_heartbeat_intervals_are_refused(cost: ModuleType) -> None:
    assert cost.parse_cadences("5, 10,20") == (5.0, 10.0, 20.0)
    with pytest.raises(cost.CostInputError, match=r"--heartbeat-intervals: 'fast' is not a number of seconds"):
        cost.parse_cadences("5,fast")
    with pytest.raises(cost.CostInputError, match=r"--heartbeat-intervals must be a number from 1 to 300, got 0.5"):
        cost.parse_cadences("0.5")
    refused = subprocess.run(
        [sys.executable, str(COST_PY), "--heartbeat-intervals", "5,400"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert "got 400" in refused.stderr


def test_the_shipped_defaults_meet_the_failover_hour_target(cost: ModuleType) -> None:
    """Issue 13: the failover hour no dearer than before (0.022 USD in us-east-1, rounded)."""
    result = cost.estimate(cost.read_settings(), cost.load_prices())
    assert result.failover_hour_total <= 0.0227  # 0.0168 EC2 + 0.005 IPv4 + the standby's heartbeats
    by = lines(result)
    assert by["SSM SecureString parameters"].usd == 0 and by["CloudWatch custom metrics"].usd == 0


@pytest.mark.moto
def test_the_price_file_has_the_measured_heartbeat_units(cost: ModuleType) -> None:
    """tools/cost/heartbeat_units.py drives the real store against moto: one read of three items
    and one conditional write of the site item per heartbeat, what the price file assumes."""
    spec = importlib.util.spec_from_file_location("hfo_heartbeat_units", COST_PY.parent / "heartbeat_units.py")
    assert spec is not None and spec.loader is not None
    units = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = units  # dataclasses look their module up
    spec.loader.exec_module(units)
    measured = units.measure(heartbeats=3)
    assert measured.calls_per_heartbeat == {"BatchGetItem": 1.0, "PutItem": 1.0}  # no transaction any more
    usage = cost.load_prices()["usage"]
    assert measured.write_units_per_heartbeat == usage["heartbeat_write_units"] == 1
    assert measured.read_units_per_heartbeat == usage["heartbeat_read_units"] == 3
    assert measured.site_item_bytes < 1024  # one write unit
    tick = units.measure_tick()
    assert tick.control_writes > 50 and tick.write_units_per_control_write == usage["tick_write_units"] == 1


# ---------------------------------------------------------------------------------------
# The bots' state bucket (state_bucket_enabled, issue 14)

STATE_ITEMS = ("S3 state PUT-class", "S3 state GETs", "S3 state storage", "STS AssumeRole")


def test_state_bucket_lines_appear_only_with_the_bucket_on(cost: ModuleType) -> None:
    off = cost.estimate(settings(cost), PRICES)
    assert not [line for line in off.idle if line.item.startswith(("S3", "STS"))]
    assert not any("State bucket" in note for note in off.notes)

    # An upload every 36 s: 730 h * 3600 / 36 = 73,000 uploads, each 3 PUT-class requests and 1 GET.
    on = cost.estimate(settings(cost, state_bucket_enabled=True, state_sync_interval_s=36.0,
                                state_retention_days=30, state_superseded_retention_days=10), PRICES)  # fmt: skip
    by = lines(on)
    assert set(STATE_ITEMS) <= set(by)
    assert by["S3 state PUT-class"].quantity == "219,000"
    assert by["S3 state PUT-class"].usd == pytest.approx(219_000 / 1000 * 0.005)
    assert by["S3 state GETs"].usd == pytest.approx(73_000 / 1000 * 0.0004)
    # 2,400 uploads a day, each kept 10 days (state_superseded_retention_days) tagged and 10 more as
    # a noncurrent version, plus the current snapshot: 48,001 snapshots of 2 MiB.
    assert by["S3 state storage"].usd == pytest.approx(48_001 * 2 / 1024 * 0.025)
    assert by["STS AssumeRole"].usd == 0
    # S3 has no always-free allowance: the free-tier column is the same.
    assert all(by[item].usd_free_tier == by[item].usd for item in STATE_ITEMS)
    added = sum(by[item].usd for item in STATE_ITEMS)
    assert on.idle_total == pytest.approx(off.idle_total + added)
    # Nothing else moves.
    assert [(x.item, x.usd) for x in on.idle if x.item.split(" (")[0] not in STATE_ITEMS] == [
        (x.item, x.usd) for x in off.idle
    ]


def test_state_figures_follow_the_interval_the_size_and_the_workloads(cost: ModuleType) -> None:
    def state(interval: float, mib: float = 2, workloads: int = 1) -> dict[str, Any]:
        prices = copy.deepcopy(PRICES)
        prices["usage"].update(state_snapshot_mib=mib, state_workloads=workloads)
        s = settings(cost, state_bucket_enabled=True, state_sync_interval_s=interval,
                     state_superseded_retention_days=10)  # fmt: skip
        return lines(cost.estimate(s, prices))

    base, slower, bigger, three = state(36), state(360), state(36, mib=20), state(36, workloads=3)
    assert slower["S3 state PUT-class"].usd == pytest.approx(base["S3 state PUT-class"].usd / 10)
    assert slower["S3 state GETs"].usd == pytest.approx(base["S3 state GETs"].usd / 10)
    assert slower["S3 state storage"].usd == pytest.approx((4_800 + 1) * 2 / 1024 * 0.025)
    assert bigger["S3 state PUT-class"].usd == base["S3 state PUT-class"].usd  # requests do not grow with size
    assert bigger["S3 state storage"].usd == pytest.approx(base["S3 state storage"].usd * 10)
    for item in ("S3 state PUT-class", "S3 state GETs", "S3 state storage"):
        assert three[item].usd == pytest.approx(base[item].usd * 3)  # each workload uploads on its own
    assert "every 360 s" in slower["S3 state PUT-class"].item


def _test_region(s: Any) -> Any:
    """Settings read from the repository, priced with the round test table."""
    return dataclasses.replace(s, region="test-1", instance_type="t4g.small", architecture="arm64")


def test_state_settings_come_from_terraform_and_the_sidecar_manifest(cost: ModuleType, tmp_path: Path) -> None:
    s = cost.read_settings()
    assert s.state_bucket_enabled is False  # off by default: `make cost` prints no state line
    manifest = (REPO_ROOT / "k8s" / "components" / "state" / "state-containers.yaml").read_text()
    sync_args = re.search(r'args: \["state", "sync".*"--interval", "([0-9.]+)"', manifest)
    assert sync_args is not None
    assert s.state_sync_interval_s == float(sync_args.group(1))
    bucket = (REPO_ROOT / "terraform" / "modules" / "state-bucket" / "variables.tf").read_text()
    for name, value in (("retention_days", s.state_retention_days),
                        ("superseded_retention_days", s.state_superseded_retention_days)):  # fmt: skip
        default = re.search(rf'variable "{name}" \{{.*?default\s+= (\d+)', bucket, flags=re.DOTALL)
        assert default is not None and value == int(default.group(1)), name
    assert s.state_superseded_retention_days < s.state_retention_days  # replaced snapshots: shorter

    on = tmp_path / "on.tfvars"
    on.write_text("state_bucket_enabled = true\n")
    assert cost.read_settings(on).state_bucket_enabled is True
    assert cost.read_settings(on, state_sync_interval_s=300).state_sync_interval_s == 300
    as_json = tmp_path / "on.tfvars.json"
    as_json.write_text(json.dumps({"state_bucket_enabled": True}))
    assert cost.read_settings(as_json).state_bucket_enabled is True

    # The retentions the example root passes to the bucket, from the tfvars too.
    kept = tmp_path / "kept.tfvars"
    kept.write_text("state_bucket_enabled = true\nstate_retention_days = 60\nstate_superseded_retention_days = 2\n")
    short = cost.read_settings(kept)
    assert (short.state_retention_days, short.state_superseded_retention_days) == (60, 2)
    default = lines(cost.estimate(_test_region(cost.read_settings(on)), PRICES))
    shorter = lines(cost.estimate(_test_region(short), PRICES))
    assert shorter["S3 state storage"].usd < default["S3 state storage"].usd
    assert "kept 2+2 days" in shorter["S3 state storage"].item

    # A manifest whose sidecar runs every 5 minutes is read as such.
    other = tmp_path / "state-containers.yaml"
    other.write_text(manifest.replace('"--interval", "30"', '"--interval", "300"'))
    assert cost.state_sync_interval(other) == 300


def test_bad_state_sync_intervals_are_refused(cost: ModuleType, tmp_path: Path) -> None:
    for bad in (0, -30, 100_000, float("nan")):
        with pytest.raises(cost.CostInputError, match=r"--state-sync-interval must be a number from 0\.1 to 86400"):
            cost.read_settings(state_sync_interval_s=bad)
    broken = tmp_path / "state-containers.yaml"
    broken.write_text('spec: {template: {spec: {containers: [{args: ["state", "sync", "--interval", "soon"]}]}}}\n')
    with pytest.raises(cost.CostInputError, match="state sync --interval 'soon' is not a number"):
        cost.state_sync_interval(broken)
    broken.write_text("spec: {template: {spec: {containers: [{args: [state, sync]}]}}}\n")
    with pytest.raises(cost.CostInputError, match="no 'state sync' container with an --interval"):
        cost.state_sync_interval(broken)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(COST_PY), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_make_cost_prices_the_state_bucket_when_turned_on(tmp_path: Path) -> None:
    off = _run()
    assert off.returncode == 0, off.stderr
    assert "S3 state" not in off.stdout and "State bucket" not in off.stdout
    on_file = tmp_path / "on.tfvars"
    on_file.write_text("state_bucket_enabled = true\n")
    on = _run("--tfvars", str(on_file))
    assert on.returncode == 0, on.stderr
    for item in STATE_ITEMS:
        assert item in on.stdout, item
    slower = _run("--tfvars", str(on_file), "--state-sync-interval", "300", "--json")
    by = {line["item"].split(" (")[0]: line for line in json.loads(slower.stdout)["idle"]}
    assert by["S3 state PUT-class"]["quantity"] == f"{730 * 3600 // 300 * 3:,}"
    refused = _run("--tfvars", str(on_file), "--state-sync-interval", "0")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "--state-sync-interval must be a number from 0.1 to 86400, got 0" in refused.stderr


def test_docs_quote_the_state_bucket_figures_make_cost_prints(cost: ModuleType, tmp_path: Path) -> None:
    """docs/cost.md's state-bucket table is what the tool prints with the shipped prices."""
    on_file = tmp_path / "on.tfvars"
    on_file.write_text("state_bucket_enabled = true\n")
    page = (REPO_ROOT / "docs" / "cost.md").read_text()
    section = page.split("## The state bucket", 1)[1].split("\n## ", 1)[0]
    prices = cost.load_prices()
    for interval in (30.0, 300.0):
        result = cost.estimate(cost.read_settings(on_file, state_sync_interval_s=interval), prices)
        by = lines(result)
        requests = by["S3 state PUT-class"].usd + by["S3 state GETs"].usd
        assert f"{requests:.2f} USD" in section, (interval, requests)
        assert f"{by['S3 state storage'].usd:.2f} USD" in section, (interval, by["S3 state storage"].usd)
        assert f"{cost.state_uploads_per_month(result.settings, prices):,.0f}" in section


def test_docs_show_what_make_cost_prints_with_the_defaults() -> None:
    """docs/cost.md's "The defaults" block is `make cost`'s output, line for line (it went stale
    once: a change of default reached the tool and not the page)."""
    printed = _run()
    assert printed.returncode == 0, printed.stderr
    page = (REPO_ROOT / "docs" / "cost.md").read_text()
    block = page.split("## The defaults", 1)[1].split("```\n", 2)[1]
    start = printed.stdout.index("Idle, per month")
    end = printed.stdout.index("\n\n", printed.stdout.index("Idle month by heartbeat interval")) + 1
    assert block == printed.stdout[start:end]
