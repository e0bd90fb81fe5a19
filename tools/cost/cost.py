#!/usr/bin/env python3
"""What the AWS side costs: per month while the standby is idle, and per hour of failover,
item by item.

    python tools/cost/cost.py                         # the modules' defaults, us-east-1
    python tools/cost/cost.py --tfvars my.tfvars      # your settings (region included)
    python tools/cost/cost.py --region eu-west-3 --failover-hours 12
    python tools/cost/cost.py --heartbeat-intervals 5,10,20,30   # the cadence table's rows
    python tools/cost/cost.py --tfvars my.tfvars --state-sync-interval 300   # state bucket on, 5 min uploads

Settings come from Terraform itself: the defaults in terraform/modules/*/variables.tf, then
the region default of terraform/examples/complete, then your tfvars file (HCL or JSON), with
the names the example root uses. Prices, free-tier allowances and usage assumptions come
from one file, tools/cost/prices.toml, with its sources and date. With `state_bucket_enabled`,
the state sidecar's upload interval comes from k8s/components/state (its `--interval`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hcl2
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "terraform"
EXAMPLE = TERRAFORM / "examples" / "complete"
PRICES = Path(__file__).resolve().parent / "prices.toml"
STATE_CONTAINERS = REPO_ROOT / "k8s" / "components" / "state" / "state-containers.yaml"

# What the watchdog module creates: one alarm on the tick (failing or not running) and one on the
# heartbeat function's errors always, one for a standby running too long with standby_runtime_alarm
# (tests/terraform/test_cost.py checks this against the module); two secrets always (HMAC
# keyring, Tailscale key), a third for Discord alerts.
ALARMS = 2
BASE_SECRETS = 2
# The smallest instance type of each architecture, for the always-on comparison.
SMALLEST_TYPE = {"arm64": "t4g.nano", "x86_64": "t3.nano"}
PREWARM_ITEM = "Pre-warm, expected"
# Heartbeat intervals of the cadence table (`make cost`), seconds.
CADENCES = (5.0, 10.0, 20.0, 30.0)
# Secrets read at each cold start: the tick reads the keyring and the Discord webhook, the
# heartbeat handler the keyring.
SECRETS_READ_PER_COLD_START = {"tick": 2, "heartbeat": 1}
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
DAYS_PER_MONTH = 365.25 / 12
# What one accepted upload of `hfo-site state sync` sends (hfo_site.state.handoff.publish): a
# GetObject of the manifest (the fencing read), a PutObject of the new snapshot, a conditional
# PutObject of the manifest and a PutObjectTagging of the snapshot it replaced (PUT-class too).
STATE_PUTS_PER_UPLOAD = 3
STATE_GETS_PER_UPLOAD = 1
# `hfo-site state sync --interval` accepts 0.1 s to a day (hfo_site.state.cli).
STATE_SYNC_INTERVAL_RANGE = (0.1, 86400.0)


class CostInputError(Exception):
    """A setting or a price is missing or out of range; the message names it and the range."""


# ---------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Settings:
    region: str
    architecture: str
    instance_type: str
    root_volume_size_gib: int
    cpu_credits: str
    tick_interval_minutes: int
    heartbeat_interval_s: float
    lambda_memory_mb: int
    lambda_architecture: str
    log_retention_days: int
    discord_alerts: bool
    custom_metrics: bool = False
    standby_runtime_alarm: bool = False
    failover_hours: float = 0.0
    state_bucket_enabled: bool = False
    state_sync_interval_s: float = 30.0  # the sidecar's --interval (k8s/components/state)
    state_retention_days: int = 30  # modules/state-bucket retention_days: noncurrent versions
    state_superseded_retention_days: int = 7  # its superseded_retention_days: replaced snapshots


# The example root's variable names that change the bill, and the module that defines each.
COST_VARIABLES = {
    "architecture": "standby",
    "instance_type": "standby",
    "root_volume_size_gib": "standby",
    "cpu_credits": "standby",
    "tick_interval_minutes": "watchdog",
    "heartbeat_interval_s": "watchdog",
    "lambda_memory_mb": "watchdog",
    "lambda_architecture": "watchdog",
    "log_retention_days": "watchdog",
    "discord_alerts": "secrets",
    "custom_metrics": "watchdog",
    "standby_runtime_alarm": "watchdog",
    "state_bucket_enabled": "hybrid-failover",
}


def _load_hcl(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh, serialization_options=options)


def variable_defaults(path: Path) -> dict[str, Any]:
    """name -> default of every variable declared in a .tf file (None when it has none)."""
    document = _load_hcl(path)
    return {name: body.get("default") for block in document.get("variable", []) for name, body in block.items()}


def default_instance_types() -> dict[str, str]:
    """The standby module's default instance type per architecture (its `default_instance_type` local)."""
    for block in _load_hcl(TERRAFORM / "modules" / "standby" / "main.tf").get("locals", []):
        if "default_instance_type" in block:
            return dict(block["default_instance_type"])
    raise CostInputError("terraform/modules/standby/main.tf has no default_instance_type local")


def read_tfvars(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CostInputError(f"tfvars file {path} not found")
    try:
        values = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else _load_hcl(path)
    except Exception as exc:  # json raises ValueError, hcl2 lark errors: both mean a bad file
        raise CostInputError(f"{path}: not a valid tfvars file ({type(exc).__name__})") from None
    known = set(variable_defaults(EXAMPLE / "variables.tf"))
    unknown = sorted(set(values) - known)
    if unknown:
        names = ", ".join(unknown)
        raise CostInputError(f"{path}: unknown variable(s) {names} (not variables of terraform/examples/complete)")
    return values


def _require_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not low <= value <= high:
        raise CostInputError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _require_number(name: str, value: Any, low: float, high: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not low <= value <= high:
        raise CostInputError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _require_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CostInputError(f"{name} must be true or false, got {value!r}")
    return value


def _require_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise CostInputError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def state_sync_interval(path: Path = STATE_CONTAINERS) -> float:
    """The `--interval` the state-sync sidecar runs with in the Kubernetes component, seconds."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise CostInputError(f"{path}: cannot read the state containers ({type(exc).__name__})") from None
    for document in documents:
        spec = (document or {}).get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            args = [str(a) for a in container.get("args", [])]
            if args[:2] == ["state", "sync"] and "--interval" in args[:-1]:
                value = args[args.index("--interval") + 1]
                try:
                    number = float(value)
                except ValueError:
                    raise CostInputError(f"{path}: state sync --interval {value!r} is not a number") from None
                return _require_number("the state-sync sidecar's --interval", number, *STATE_SYNC_INTERVAL_RANGE)
    raise CostInputError(f"{path}: no 'state sync' container with an --interval")


def read_settings(
    tfvars: Path | None = None, region: str | None = None, failover_hours: float = 0.0,
    state_sync_interval_s: float | None = None,
) -> Settings:  # fmt: skip
    modules = {m: variable_defaults(TERRAFORM / "modules" / m / "variables.tf") for m in set(COST_VARIABLES.values())}
    values: dict[str, Any] = {name: modules[module][name] for name, module in COST_VARIABLES.items()}
    values["region"] = variable_defaults(EXAMPLE / "variables.tf")["region"]
    # The example root's names for the state bucket module's retentions; null there: its default.
    bucket_defaults = variable_defaults(TERRAFORM / "modules" / "state-bucket" / "variables.tf")
    values["state_retention_days"] = bucket_defaults["retention_days"]
    values["state_superseded_retention_days"] = bucket_defaults["superseded_retention_days"]
    if tfvars is not None:
        for name, value in read_tfvars(tfvars).items():
            if value is not None and name in values:
                values[name] = value
    if region is not None:
        values["region"] = region

    state_retention = _require_int("state_retention_days", values["state_retention_days"], 1, 3650)
    superseded = _require_int(
        "state_superseded_retention_days", values["state_superseded_retention_days"], 1, state_retention
    )
    if state_sync_interval_s is None:
        interval = state_sync_interval()
    else:
        interval = _require_number("--state-sync-interval", state_sync_interval_s, *STATE_SYNC_INTERVAL_RANGE)

    architecture = _require_choice("architecture", values["architecture"], ("arm64", "x86_64"))
    instance_type = values["instance_type"] or default_instance_types()[architecture]
    if not isinstance(instance_type, str):
        raise CostInputError(f"instance_type must be a string such as t4g.small, got {instance_type!r}")
    return Settings(
        region=str(values["region"]),
        architecture=architecture,
        instance_type=instance_type,
        root_volume_size_gib=_require_int("root_volume_size_gib", values["root_volume_size_gib"], 8, 1024),
        cpu_credits=_require_choice("cpu_credits", values["cpu_credits"], ("standard", "unlimited")),
        tick_interval_minutes=_require_int("tick_interval_minutes", values["tick_interval_minutes"], 1, 60),
        heartbeat_interval_s=_require_number("heartbeat_interval_s", values["heartbeat_interval_s"], 1, 300),
        lambda_memory_mb=_require_int("lambda_memory_mb", values["lambda_memory_mb"], 128, 10240),
        lambda_architecture=_require_choice("lambda_architecture", values["lambda_architecture"], ("arm64", "x86_64")),
        log_retention_days=_require_choice("log_retention_days", values["log_retention_days"], LOG_RETENTION_DAYS),
        discord_alerts=_require_choice("discord_alerts", values["discord_alerts"], (True, False)),
        custom_metrics=_require_choice("custom_metrics", values["custom_metrics"], (True, False)),
        standby_runtime_alarm=_require_choice("standby_runtime_alarm", values["standby_runtime_alarm"], (True, False)),
        failover_hours=_require_number("failover hours per month", failover_hours, 0, 730),
        state_bucket_enabled=_require_bool("state_bucket_enabled", values["state_bucket_enabled"]),
        state_sync_interval_s=interval,
        state_retention_days=state_retention,
        state_superseded_retention_days=superseded,
    )


# ---------------------------------------------------------------------------------------
# Prices

REGION_KEYS = (
    "ebs_gp3_gb_month", "public_ipv4_hour", "lambda_requests_per_million", "lambda_gb_second",
    "scheduler_invocations_per_million", "dynamodb_write_units_per_million", "dynamodb_read_units_per_million",
    "dynamodb_storage_gb_month", "dynamodb_pitr_gb_month", "logs_ingestion_gb", "logs_storage_gb_month",
    "custom_metric_month", "alarm_month", "ssm_parameter_month", "ssm_api_per_10k", "kms_requests_per_10k",
    "cpu_credit_vcpu_hour", "ec2_hour", "s3_put_per_1k", "s3_get_per_1k", "s3_storage_gb_month",
)  # fmt: skip
FREE_TIER_KEYS = (
    "lambda_requests", "lambda_gb_seconds", "scheduler_invocations", "custom_metrics", "alarms", "logs_gb",
    "dynamodb_storage_gb", "kms_requests",
)  # fmt: skip
USAGE_KEYS = (
    "sites_heartbeating_idle", "heartbeat_duration_ms", "tick_duration_ms", "heartbeat_write_units",
    "heartbeat_read_units", "tick_write_units", "tick_read_units", "heartbeat_log_bytes", "tick_log_bytes",
    "custom_metrics", "metrics_log_bytes", "cold_starts_per_day", "state_gb", "state_snapshot_mib",
    "state_workloads", "durations_at_memory_mb", "one_vcpu_mb", "heartbeat_cpu_ms", "tick_cpu_ms",
)  # fmt: skip
BENCHMARK_KEYS = ("prewarm_usd_per_trace", "prewarm_trace_hours", "prewarm_traces_per_month")


def _check_numbers(where: str, table: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in table:
            raise CostInputError(f"{where}: missing {key}")
        values = table[key].values() if isinstance(table[key], Mapping) else [table[key]]
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
                raise CostInputError(f"{where}.{key}: prices and quantities must be numbers >= 0, got {value!r}")


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    try:
        prices = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CostInputError(f"price table {path}: {exc}") from None
    meta = prices.get("meta", {})
    if not meta.get("compiled") or not prices.get("sources"):
        raise CostInputError(
            f"price table {path}: needs [meta] compiled (a date) and [sources]: prices without both are not honest"
        )
    for name, region in prices.get("regions", {}).items():
        _check_numbers(f"regions.{name}", region, REGION_KEYS)
        for key in region.get("unverified", []):
            base, _, entry = str(key).partition(":")
            if base not in REGION_KEYS or (entry and entry not in region[base]):
                raise CostInputError(f"regions.{name}.unverified names {key!r}, which is not a price key")
    _check_numbers("free_tier", prices.get("free_tier", {}), FREE_TIER_KEYS)
    _check_numbers("usage", prices.get("usage", {}), USAGE_KEYS)
    _check_numbers("benchmark", prices.get("benchmark", {}), BENCHMARK_KEYS)
    if not prices["benchmark"].get("source") or not prices["benchmark"].get("trace"):
        raise CostInputError(f"price table {path}: [benchmark] needs `trace` and `source` (which run measured it)")
    if not prices.get("seed", {}).get("claim_eur_month"):
        raise CostInputError(f"price table {path}: [seed] needs claim_eur_month (the seed tutorial's headline)")
    return prices


# ---------------------------------------------------------------------------------------
# Estimate


@dataclass(frozen=True)
class Line:
    item: str
    quantity: str
    usd: float  # without any free tier
    usd_free_tier: float  # with the always-free allowances (when this stack is alone in the account)
    unverified: bool = False


@dataclass(frozen=True)
class Comparison:
    """A month of something the idle standby is measured against."""

    label: str
    usd: float
    detail: str
    unverified: bool = False


@dataclass
class Estimate:
    settings: Settings
    region_name: str
    compiled: str
    usd_to_eur: float
    idle: list[Line] = field(default_factory=list)
    failover_hour: list[Line] = field(default_factory=list)
    cpu_credit_worst_hour: float = 0.0
    cpu_credit_unverified: bool = False
    comparisons: list[Comparison] = field(default_factory=list)
    cadences: list[tuple[float, float, float]] = field(default_factory=list)  # (interval s, USD, USD free tier)
    notes: list[str] = field(default_factory=list)

    @property
    def idle_total(self) -> float:
        return sum(line.usd for line in self.idle)

    @property
    def idle_total_free_tier(self) -> float:
        return sum(line.usd_free_tier for line in self.idle)

    @property
    def idle_total_without_prewarm(self) -> float:
        """The idle month less the pre-warm line: what the failover benchmark adds its own
        measured EC2 minutes to (it would count pre-warm twice otherwise)."""
        return sum(line.usd for line in self.idle if not line.item.startswith(PREWARM_ITEM))

    @property
    def failover_hour_total(self) -> float:
        return sum(line.usd for line in self.failover_hour)

    def month_total(self, free_tier: bool) -> float:
        idle = self.idle_total_free_tier if free_tier else self.idle_total
        return idle + self.settings.failover_hours * self.failover_hour_total


def _billed(quantity: float, allowance: float) -> float:
    return max(0.0, quantity - allowance)


def _instance_spec(settings: Settings, prices: Mapping[str, Any], instance_type: str) -> Mapping[str, Any]:
    p = prices["regions"][settings.region]
    if instance_type not in p["ec2_hour"] or instance_type not in prices["instance_types"]:
        known = ", ".join(sorted(set(p["ec2_hour"]) & set(prices["instance_types"])))
        raise CostInputError(f"instance_type {instance_type!r} has no price in {settings.region}; known: {known}")
    spec: Mapping[str, Any] = prices["instance_types"][instance_type]
    return spec


def estimate(settings: Settings, prices: Mapping[str, Any], *, cadences: tuple[float, ...] = CADENCES) -> Estimate:
    """The idle month and the failover hour, item by item, with the comparisons and, for each
    heartbeat interval of `cadences`, the idle month it would cost (everything else unchanged)."""
    regions = prices["regions"]
    if settings.region not in regions:
        raise CostInputError(f"region {settings.region!r} has no prices; known: {', '.join(sorted(regions))}")
    spec = _instance_spec(settings, prices, settings.instance_type)
    if (spec["credit_family"] == "t4g") != (settings.architecture == "arm64"):
        raise CostInputError(
            f"instance_type {settings.instance_type} does not match architecture {settings.architecture}"
        )
    result = _estimate(settings, prices, spec)
    for interval in cadences:
        other = _estimate(replace(settings, heartbeat_interval_s=interval), prices, spec)
        result.cadences.append((interval, other.idle_total, other.idle_total_free_tier))
    return result


def state_uploads_per_month(settings: Settings, prices: Mapping[str, Any]) -> float:
    """The worst case: every gated workload's state changes between any two checks, so each
    sidecar uploads once per interval (it uploads nothing while the content is unchanged)."""
    seconds = float(prices["meta"]["hours_per_month"]) * 3600
    return float(prices["usage"]["state_workloads"]) * seconds / settings.state_sync_interval_s


def state_snapshots_kept(settings: Settings, prices: Mapping[str, Any]) -> float:
    """Snapshot objects S3 holds at the worst case's steady state. A superseded snapshot expires
    `superseded_retention_days` after its upload (the tag rule counts from creation); in the
    versioned bucket that expiry only makes it a noncurrent version, which the same rule removes
    `superseded_retention_days` later (the shorter of it and the noncurrent rule's
    `retention_days`): each upload is stored for twice that (S3 rounds each step up to the next
    midnight UTC, up to a day more). Plus each workload's current snapshot."""
    per_day = state_uploads_per_month(settings, prices) / (float(prices["meta"]["hours_per_month"]) / 24)
    kept_days = 2 * settings.state_superseded_retention_days  # read_settings keeps it <= state_retention_days
    return per_day * kept_days + float(prices["usage"]["state_workloads"])


def _state_lines(settings: Settings, prices: Mapping[str, Any], line: Callable[..., Line]) -> list[Line]:
    """The bots' state bucket (state_bucket_enabled): S3 requests of the sidecars' uploads, the
    retained snapshots, and the STS calls of the credentials (free)."""
    p = prices["regions"][settings.region]
    use = prices["usage"]
    uploads = state_uploads_per_month(settings, prices)
    puts = uploads * STATE_PUTS_PER_UPLOAD
    gets = uploads * STATE_GETS_PER_UPLOAD
    stored_gb = state_snapshots_kept(settings, prices) * use["state_snapshot_mib"] / 1024  # S3's GB: 2^30 bytes
    every = f"every {settings.state_sync_interval_s:g} s"
    kept_days = settings.state_superseded_retention_days
    return [
        line(f"S3 state PUT-class ({STATE_PUTS_PER_UPLOAD} per upload, {every})", f"{puts:,.0f}",
             puts / 1000 * p["s3_put_per_1k"], None, "s3_put_per_1k"),
        line(f"S3 state GETs ({STATE_GETS_PER_UPLOAD} per upload)", f"{gets:,.0f}",
             gets / 1000 * p["s3_get_per_1k"], None, "s3_get_per_1k"),
        line(
            f"S3 state storage ({use['state_snapshot_mib']:g} MiB, kept {kept_days}+{kept_days} days)",
            f"{stored_gb:,.1f} GB", stored_gb * p["s3_storage_gb_month"], None, "s3_storage_gb_month",
        ),
        line("STS AssumeRole (state credentials: free)", "-", 0.0),
    ]  # fmt: skip


def billed_ms(use: Mapping[str, Any], function: str, memory_mb: int) -> float:
    """A function's duration at `memory_mb`. The price file's duration is measured at one memory
    setting; of it, the function's own CPU time stretches with Lambda's share of a vCPU (in
    proportion to memory, a whole one at `one_vcpu_mb`) while the network wait does not."""
    vcpu = use["one_vcpu_mb"]
    at_reference = use[f"{function}_cpu_ms"] * vcpu / min(use["durations_at_memory_mb"], vcpu)
    at_memory = use[f"{function}_cpu_ms"] * vcpu / min(memory_mb, vcpu)
    return float(max(0.0, use[f"{function}_duration_ms"] - at_reference) + at_memory)


def _estimate(settings: Settings, prices: Mapping[str, Any], spec: Mapping[str, Any]) -> Estimate:
    p = prices["regions"][settings.region]
    free = prices["free_tier"]
    use = prices["usage"]
    bench = prices["benchmark"]
    unverified = set(p.get("unverified", []))

    hours = prices["meta"]["hours_per_month"]
    seconds = hours * 3600
    gb = settings.lambda_memory_mb / 1024
    gb_second = p["lambda_gb_second"][settings.lambda_architecture]
    heartbeats = use["sites_heartbeating_idle"] * seconds / settings.heartbeat_interval_s
    ticks = hours * 60 / settings.tick_interval_minutes
    requests = heartbeats + ticks
    heartbeat_ms = billed_ms(use, "heartbeat", settings.lambda_memory_mb)
    tick_ms = billed_ms(use, "tick", settings.lambda_memory_mb)
    compute = (heartbeats * heartbeat_ms + ticks * tick_ms) / 1000 * gb
    writes = heartbeats * use["heartbeat_write_units"] + ticks * use["tick_write_units"]
    reads = heartbeats * use["heartbeat_read_units"] + ticks * use["tick_read_units"]
    tick_log_bytes = use["tick_log_bytes"] + (use["metrics_log_bytes"] if settings.custom_metrics else 0)
    log_gb = (heartbeats * use["heartbeat_log_bytes"] + ticks * tick_log_bytes) / 1e9
    stored_log_gb = log_gb * min(settings.log_retention_days, DAYS_PER_MONTH) / DAYS_PER_MONTH
    secrets = BASE_SECRETS + (1 if settings.discord_alerts else 0)
    metrics = use["custom_metrics"] if settings.custom_metrics else 0
    alarms = ALARMS + (1 if settings.standby_runtime_alarm else 0)
    secret_reads = (
        use["cold_starts_per_day"] * DAYS_PER_MONTH * (SECRETS_READ_PER_COLD_START["heartbeat"]
        + SECRETS_READ_PER_COLD_START["tick"] - (0 if settings.discord_alerts else 1))
    )  # fmt: skip
    logs_free_left = max(0.0, free["logs_gb"] - log_gb)
    prewarm_traces = bench["prewarm_traces_per_month"]
    prewarm = prewarm_traces * bench["prewarm_usd_per_trace"]

    def line(item: str, quantity: str, usd: float, usd_free: float | None = None, *keys: str) -> Line:
        return Line(item, quantity, usd, usd if usd_free is None else usd_free, bool(unverified & set(keys)))

    result = Estimate(settings, p["name"], prices["meta"]["compiled"], prices["meta"]["usd_to_eur"])
    ebs = settings.root_volume_size_gib * p["ebs_gp3_gb_month"]
    result.idle = [
        line(
            "EBS gp3 root volume (billed while stopped)", f"{settings.root_volume_size_gib} GiB", ebs, None,
            "ebs_gp3_gb_month",
        ),
        line("Public IPv4 while stopped (no Elastic IP)", "0 h", 0.0),
        line(
            "Lambda requests (heartbeats + ticks)", f"{requests:,.0f}",
            requests / 1e6 * p["lambda_requests_per_million"],
            _billed(requests, free["lambda_requests"]) / 1e6 * p["lambda_requests_per_million"],
        ),
        line(
            f"Lambda compute ({settings.lambda_memory_mb} MB {settings.lambda_architecture})", f"{compute:,.0f} GB-s",
            compute * gb_second, _billed(compute, free["lambda_gb_seconds"]) * gb_second,
        ),
        line(
            "EventBridge Scheduler invocations", f"{ticks:,.0f}",
            ticks / 1e6 * p["scheduler_invocations_per_million"],
            _billed(ticks, free["scheduler_invocations"]) / 1e6 * p["scheduler_invocations_per_million"],
        ),
        line("DynamoDB on-demand writes", f"{writes:,.0f} WRU", writes / 1e6 * p["dynamodb_write_units_per_million"],
             None, "dynamodb_write_units_per_million"),
        line("DynamoDB on-demand reads", f"{reads:,.0f} RRU", reads / 1e6 * p["dynamodb_read_units_per_million"],
             None, "dynamodb_read_units_per_million"),
        line(
            "DynamoDB storage + point-in-time recovery", f"{use['state_gb'] * 1000:g} MB",
            use["state_gb"] * (p["dynamodb_storage_gb_month"] + p["dynamodb_pitr_gb_month"]),
            use["state_gb"] * p["dynamodb_pitr_gb_month"], "dynamodb_storage_gb_month", "dynamodb_pitr_gb_month",
        ),
        line(
            "CloudWatch Logs ingestion", f"{log_gb:.3f} GB", log_gb * p["logs_ingestion_gb"],
            _billed(log_gb, free["logs_gb"]) * p["logs_ingestion_gb"], "logs_ingestion_gb",
        ),
        line(
            f"CloudWatch Logs storage ({settings.log_retention_days} days kept)", f"{stored_log_gb:.3f} GB",
            stored_log_gb * p["logs_storage_gb_month"],
            _billed(stored_log_gb, logs_free_left) * p["logs_storage_gb_month"], "logs_storage_gb_month",
        ),
        line(
            "CloudWatch custom metrics (" + ("custom_metrics = true" if metrics else "off: custom_metrics") + ")",
            f"{metrics}", metrics * p["custom_metric_month"],
            _billed(metrics, free["custom_metrics"]) * p["custom_metric_month"],
        ),
        line(
            "CloudWatch alarms (AWS's free Lambda and EC2 metrics)", f"{alarms}", alarms * p["alarm_month"],
            _billed(alarms, free["alarms"]) * p["alarm_month"],
        ),
        line(
            "SSM SecureString parameters (Standard tier)", f"{secrets}", secrets * p["ssm_parameter_month"], None,
            "ssm_parameter_month",
        ),
        line(
            "SSM reads + KMS decrypts (cold starts)", f"{secret_reads:,.0f}",
            secret_reads / 1e4 * (p["ssm_api_per_10k"] + p["kms_requests_per_10k"]),
            secret_reads / 1e4 * p["ssm_api_per_10k"]
            + _billed(secret_reads, free["kms_requests"]) / 1e4 * p["kms_requests_per_10k"],
        ),
        *(_state_lines(settings, prices, line) if settings.state_bucket_enabled else []),
        Line(
            f"{PREWARM_ITEM} (benchmark: '{bench['trace']}' trace) +",
            f"{prewarm_traces:g} x {bench['prewarm_trace_hours']:g} h", prewarm, prewarm,
            bool(unverified & {"ec2_hour"}),
        ),
    ]  # fmt: skip

    standby_beats = 3600 / settings.heartbeat_interval_s
    standby_compute = standby_beats * heartbeat_ms / 1000 * gb
    standby_logs = standby_beats * use["heartbeat_log_bytes"] / 1e9
    result.failover_hour = [
        line(
            f"EC2 {settings.instance_type}", "1 h", p["ec2_hour"][settings.instance_type], None, "ec2_hour",
            f"ec2_hour:{settings.instance_type}",
        ),
        line("Public IPv4 address while running", "1 h", p["public_ipv4_hour"]),
        line(
            "Standby heartbeats: Lambda, DynamoDB, logs", f"{standby_beats:,.0f}",
            standby_beats / 1e6 * p["lambda_requests_per_million"] + standby_compute * gb_second
            + standby_beats * use["heartbeat_write_units"] / 1e6 * p["dynamodb_write_units_per_million"]
            + standby_beats * use["heartbeat_read_units"] / 1e6 * p["dynamodb_read_units_per_million"]
            + standby_logs * p["logs_ingestion_gb"],
            None, "dynamodb_write_units_per_million", "logs_ingestion_gb",
        ),
    ]  # fmt: skip
    if settings.cpu_credits == "unlimited":
        surplus_vcpu_hours = spec["vcpus"] * (1 - spec["baseline"])
        result.cpu_credit_worst_hour = surplus_vcpu_hours * p["cpu_credit_vcpu_hour"][spec["credit_family"]]
        result.cpu_credit_unverified = "cpu_credit_vcpu_hour" in unverified

    # An always-on server needs no watchdog: the instance, the same volume and its public IPv4
    # address, all month.
    def always_on(instance_type: str) -> Comparison:
        usd = hours * (p["ec2_hour"][instance_type] + p["public_ipv4_hour"]) + ebs
        detail = f"{instance_type}, {settings.root_volume_size_gib} GiB gp3, public IPv4, {hours:g} h"
        keys = {"ec2_hour", f"ec2_hour:{instance_type}", "ebs_gp3_gb_month", "public_ipv4_hour"}
        return Comparison(f"Always on, {instance_type}", usd, detail, bool(unverified & keys))

    smallest = SMALLEST_TYPE[settings.architecture]
    seed = prices["seed"]
    rate = prices["meta"]["usd_to_eur"]
    result.comparisons = [
        always_on(settings.instance_type),
        *([always_on(smallest)] if smallest in p["ec2_hour"] and smallest != settings.instance_type else []),
        Comparison(
            "The seed tutorial's claim",
            seed["claim_eur_month"] / rate,
            f"about {seed['claim_eur_month']:g} EUR a month; its own table adds up to"
            f" {seed['table_eur_month']:g} EUR (docs/cost.md)",
        ),
    ]
    result.notes = [
        "Free-tier column: AWS's always-free allowances, if nothing else in the account uses them. EBS,"
        " DynamoDB requests and the public IPv4 address have none (12-month offers, or credits for accounts"
        " created since 2025-07-15, are left out).",
        f"+ Pre-warm: EC2 minutes of standbys started on suspicion, from the failover benchmark ({bench['source']}):"
        f" {bench['prewarm_usd_per_trace']:g} USD per {bench['prewarm_trace_hours']:g} h of the '{bench['trace']}'"
        f" trace, counted {prewarm_traces:g} time(s) a month (`prewarm_traces_per_month` in the price file).",
        f"Custom metrics are opt-in (custom_metrics = true): {use['custom_metrics']} metrics,"
        f" {use['custom_metrics'] * p['custom_metric_month']:.2f} USD a month beyond the free tier.",
        *(_state_notes(settings, prices) if settings.state_bucket_enabled else []),
        "Not counted: data transfer out (the first 100 GB a month are free; heartbeats and probes are a few MB),"
        " SNS e-mails (the first 1,000 a month are free), X-Ray (off by default).",
    ]
    return result


def _state_notes(settings: Settings, prices: Mapping[str, Any]) -> list[str]:
    use = prices["usage"]
    return [
        f"State bucket (state_bucket_enabled): the worst case, where the state of each of"
        f" {use['state_workloads']:g} workload(s) (`state_workloads`) changes between every two checks of the"
        f" sidecar, which runs every {settings.state_sync_interval_s:g} s (`--interval` in k8s/components/state,"
        f" or --state-sync-interval): {state_uploads_per_month(settings, prices):,.0f} uploads a month. It uploads"
        " nothing while the directory is unchanged: an idle bot costs its current snapshot only. Restores"
        " (one manifest and one snapshot GET per pod start) and the lease's claims are too rare to count;"
        " noncurrent manifest versions are a few hundred bytes each. S3 has no always-free allowance, and"
        " STS AssumeRole is free.",
    ]


# ---------------------------------------------------------------------------------------
# Output


def render(result: Estimate) -> str:
    s = result.settings
    rate = result.usd_to_eur

    def mark(line: Line) -> str:
        return " *" if line.unverified else ""

    out = [
        f"hybrid-failover: AWS cost estimate for {result.region_name} ({s.region}), prices compiled {result.compiled}",
        f"  standby {s.instance_type} ({s.architecture}), {s.root_volume_size_gib} GiB gp3,"
        f" CPU credits {s.cpu_credits};"
        f" heartbeat every {s.heartbeat_interval_s:g} s, tick every {s.tick_interval_minutes} min;"
        f" Lambda {s.lambda_memory_mb} MB {s.lambda_architecture}; logs kept {s.log_retention_days} days",
        "",
        f"{'Idle, per month':<58}{'quantity':>14}{'USD':>10}{'USD free tier':>15}",
    ]
    for line in result.idle:
        out.append(f"  {line.item + mark(line):<56}{line.quantity:>14}{line.usd:>10.4f}{line.usd_free_tier:>15.4f}")
    out += [
        f"  {'Total idle per month':<56}{'':>14}{result.idle_total:>10.2f}{result.idle_total_free_tier:>15.2f}",
        f"  {'  in EUR (approximate rate ' + f'{rate:g})':<56}{'':>14}"
        f"{result.idle_total * rate:>10.2f}{result.idle_total_free_tier * rate:>15.2f}",
        "",
        f"{'Failover, per hour the standby runs':<58}{'quantity':>14}{'USD':>10}",
    ]
    for line in result.failover_hour:
        out.append(f"  {line.item + mark(line):<56}{line.quantity:>14}{line.usd:>10.4f}")
    out.append(f"  {'Total per failover hour':<56}{'':>14}{result.failover_hour_total:>10.4f}")
    if result.cpu_credit_worst_hour:
        out.append(
            f"  (plus at most {result.cpu_credit_worst_hour:.4f} USD of CPU credits in an hour at 100 % CPU"
            f" on both vCPUs: unlimited mode){' *' if result.cpu_credit_unverified else ''}"
        )
    if s.failover_hours:
        out += [
            "",
            f"A month with {s.failover_hours:g} h of failover: {result.month_total(False):.2f} USD"
            f" ({result.month_total(True):.2f} USD with the free tier)",
        ]
    out += ["", f"{'Beside it, per month':<58}{'':>14}{'USD':>10}{'EUR':>15}"]
    out.append(f"  {'This standby, idle':<56}{'':>14}{result.idle_total:>10.2f}{result.idle_total * rate:>15.2f}")
    for c in result.comparisons:
        out.append(f"  {c.label + (' *' if c.unverified else ''):<56}{'':>14}{c.usd:>10.2f}{c.usd * rate:>15.2f}")
        out.append(f"    {c.detail}")
    if result.cadences:
        title = "Idle month by heartbeat interval (heartbeat_interval_s)"
        out += ["", f"{title:<58}{'':>14}{'USD':>10}{'USD free tier':>15}"]
        for interval, usd, usd_free in result.cadences:
            chosen = "  <- this estimate" if interval == s.heartbeat_interval_s else ""
            out.append(f"  {f'every {interval:g} s':<56}{'':>14}{usd:>10.2f}{usd_free:>15.2f}{chosen}")
    if (
        result.cpu_credit_unverified
        or any(line.unverified for line in result.idle + result.failover_hour)
        or any(c.unverified for c in result.comparisons)
    ):
        out += ["", "* uses a price not checked against a primary source (tools/cost/prices.toml, `unverified`)"]
    out += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(out)


def parse_cadences(text: str) -> tuple[float, ...]:
    """ "5,10,20,30" -> (5.0, 10.0, 20.0, 30.0); each from 1 to 300 s, as heartbeat_interval_s."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise CostInputError(f"--heartbeat-intervals: {part.strip()!r} is not a number of seconds") from None
        values.append(_require_number("--heartbeat-intervals", value, 1, 300))
    return tuple(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfvars", type=Path, help="your terraform.tfvars (HCL) or .tfvars.json")
    parser.add_argument("--region", help="price region (default: the tfvars region, else the example's default)")
    parser.add_argument("--failover-hours", type=float, default=0.0, help="hours of failover in the month (0-730)")
    parser.add_argument("--prices", type=Path, default=PRICES, help="price table (default: %(default)s)")
    parser.add_argument(
        "--heartbeat-intervals", default=",".join(f"{c:g}" for c in CADENCES),
        help="the cadence table's heartbeat intervals, seconds, comma-separated (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--state-sync-interval", type=float,
        help="with state_bucket_enabled: the state sidecar's upload interval, seconds (default: its --interval"
        " in k8s/components/state)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        cadences = parse_cadences(args.heartbeat_intervals)
        settings = read_settings(args.tfvars, args.region, args.failover_hours, args.state_sync_interval)
        result = estimate(settings, load_prices(args.prices), cadences=cadences)
    except CostInputError as exc:
        print(f"cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "settings": settings.__dict__, "idle": [line.__dict__ for line in result.idle],
            "failover_hour": [line.__dict__ for line in result.failover_hour],
            "idle_total_usd": result.idle_total, "idle_total_free_tier_usd": result.idle_total_free_tier,
            "failover_hour_total_usd": result.failover_hour_total,
            "cpu_credit_worst_hour_usd": result.cpu_credit_worst_hour,
            "comparisons": [c.__dict__ for c in result.comparisons],
            "cadences": [{"heartbeat_interval_s": i, "idle_usd": u, "idle_free_tier_usd": f}
                         for i, u, f in result.cadences],
        }, indent=2))  # fmt: skip
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
