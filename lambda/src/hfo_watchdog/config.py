"""The watchdog's settings: environment variables parsed once, at cold start, into one frozen
object (docs/configuration.md is the reference for every variable, default and range).

A bad value raises SettingsError naming the variable and its allowed range; nothing falls back
silently. Secrets are never in the environment: only the ARNs (or names) of the Secrets Manager
secrets that hold them, fetched once per container by `Secrets` and never logged or repr'd.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hfo_watchdog.core.model import Policy

T = TypeVar("T", int, float)

TABLE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
INSTANCE_ID_RE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SECRET_ID = re.compile(
    r"^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512}"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]{1,1011}|/[A-Za-z0-9/_.-]{1,1010})$"
)
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# S3 bucket names (the general-purpose rules): 3-63 of a-z 0-9 . -, starting and ending alphanumeric.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+){1,3}$")
# STS AssumeRole: 900 s is its minimum; 3600 s the default maximum session of a role.
STATE_CREDENTIALS_TTL_RANGE = (900, 3600)
_TRUE = ("true", "1", "yes")
# One renewal over the probe path lets the primary hold the lease at most this long (the health
# service refuses longer ones: hfo_protocol's renewal limit is the same hour).
MAX_PROBE_LEASE_TTL_S = 3600.0
_FALSE = ("false", "0", "no", "")


class SettingsError(ValueError):
    """A configuration value outside its allowed range. ``variable`` names the culprit."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class StateSettings:
    """The state bucket and the role whose credentials the lease holder gets
    (docs/state-handoff.md#credentials). Absent: state handoff is off."""

    bucket: str
    role_arn: str
    credentials_ttl_s: int
    region: str  # the bucket's region as the sites use it (AWS_REGION of the function)
    endpoint_url: str | None  # AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL; None on AWS


@dataclass(frozen=True)
class Settings:
    table_name: str
    instance_id: str
    health_url: str
    hmac_secret_id: str
    discord_webhook_secret_id: str | None
    sns_topic_arn: str | None
    tick_interval_s: int
    probe_connect_timeout_s: float
    probe_read_timeout_s: float
    probe_max_body_bytes: int
    probe_ca_bundle: str | None
    max_skew_s: int
    policy: Policy
    fallback_instance_types: tuple[str, ...]
    history_days: int
    aws_max_attempts: int
    tracing: bool
    service_name: str
    metrics_namespace: str
    log_level: str
    metrics_disabled: bool = False  # Powertools reads it itself; validated here like every setting
    state: StateSettings | None = None  # None: no state credentials are handed out

    @property
    def history_ttl_s(self) -> int:
        return self.history_days * 86400

    @property
    def lease_ttl_s(self) -> int:
        return int(self.policy.lease_ttl_s)

    @property
    def heartbeat_interval_s(self) -> int:
        return int(self.policy.heartbeat_interval_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse and validate; raise SettingsError on the first bad variable."""
        r = _Reader(env)
        d = Policy()  # the shipped defaults live in one place
        policy = Policy(
            down_probes=r.number("HFO_DOWN_PROBES", int, d.down_probes, 1, 60),
            down_heartbeat_s=float(r.number("HFO_DOWN_HEARTBEAT_S", int, int(d.down_heartbeat_s), 10, 3600)),
            recovery_probes=r.number("HFO_RECOVERY_PROBES", int, d.recovery_probes, 1, 60),
            recovery_steady_s=float(r.number("HFO_RECOVERY_STEADY_S", int, int(d.recovery_steady_s), 0, 86400)),
            lease_ttl_s=float(r.number("HFO_LEASE_TTL_S", int, int(d.lease_ttl_s), 5, 3600)),
            stop_grace_s=float(r.number("HFO_STOP_GRACE_S", int, int(d.stop_grace_s), 0, 600)),
            heartbeat_interval_s=float(r.number("HFO_HEARTBEAT_INTERVAL_S", int, int(d.heartbeat_interval_s), 1, 300)),
            start_cooldown_s=float(r.number("HFO_START_COOLDOWN_S", int, int(d.start_cooldown_s), 0, 86400)),
            min_state_s=float(r.number("HFO_MIN_STATE_S", int, int(d.min_state_s), 0, 86400)),
            standby_max_runtime_s=float(
                r.number("HFO_STANDBY_MAX_RUNTIME_S", int, int(d.standby_max_runtime_s), 600, 2592000)
            ),
            prewarm_silence_s=float(r.number("HFO_PREWARM_SILENCE_S", int, int(d.prewarm_silence_s), 1, 3600)),
            prewarm_hold_s=float(r.number("HFO_PREWARM_HOLD_S", int, int(d.prewarm_hold_s), 10, 86400)),
            prewarm_max_per_hour=r.number("HFO_PREWARM_MAX_PER_HOUR", int, d.prewarm_max_per_hour, 0, 12),
            probe_lease_ttl_s=float(
                r.number("HFO_PROBE_LEASE_TTL_S", int, int(d.probe_lease_ttl_s), 0, int(MAX_PROBE_LEASE_TTL_S))
            ),
            probe_renew_after_s=float(r.number("HFO_PROBE_RENEW_AFTER_S", int, int(d.probe_renew_after_s), 0, 3600)),
            handover_heartbeat_interval_s=float(
                r.number("HFO_HANDOVER_HEARTBEAT_INTERVAL_S", int, int(d.handover_heartbeat_interval_s), 1, 300)
            ),
        )
        settings = cls(
            table_name=r.pattern("HFO_TABLE_NAME", TABLE_NAME_RE, "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"),
            instance_id=r.pattern("HFO_INSTANCE_ID", INSTANCE_ID_RE, "an EC2 instance id: i- followed by 8 or 17 hex"),
            health_url=r.https_url("HFO_HEALTH_URL"),
            hmac_secret_id=r.pattern("HFO_HMAC_SECRET_ARN", _SECRET_ID, "an SSM SecureString parameter ARN or name"),
            discord_webhook_secret_id=r.optional_pattern(
                "HFO_DISCORD_WEBHOOK_SECRET_ARN", _SECRET_ID, "empty (off) or an SSM SecureString parameter ARN or name"
            ),
            sns_topic_arn=r.optional_pattern("HFO_SNS_TOPIC_ARN", _SNS_ARN, "empty (off) or an SNS topic ARN"),
            tick_interval_s=r.number("HFO_TICK_INTERVAL_S", int, 60, 1, 3600),
            probe_connect_timeout_s=r.number("HFO_PROBE_CONNECT_TIMEOUT_S", float, 3.0, 0.1, 30.0),
            probe_read_timeout_s=r.number("HFO_PROBE_READ_TIMEOUT_S", float, 5.0, 0.1, 30.0),
            probe_max_body_bytes=r.number("HFO_PROBE_MAX_BODY_BYTES", int, 65536, 256, 1048576),
            probe_ca_bundle=r.optional_file("HFO_PROBE_CA_BUNDLE"),
            max_skew_s=r.number("HFO_MAX_SKEW_S", int, 30, 1, 300),
            policy=policy,
            fallback_instance_types=r.instance_types("HFO_FALLBACK_INSTANCE_TYPES"),
            history_days=r.number("HFO_HISTORY_DAYS", int, 30, 1, 365),
            aws_max_attempts=r.number("HFO_AWS_MAX_ATTEMPTS", int, 3, 1, 10),
            tracing=r.boolean("HFO_TRACING", False),
            service_name=r.text("POWERTOOLS_SERVICE_NAME", "hfo-watchdog"),
            metrics_namespace=r.text("POWERTOOLS_METRICS_NAMESPACE", "HybridFailover"),
            log_level=r.choice("POWERTOOLS_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
            metrics_disabled=r.boolean("POWERTOOLS_METRICS_DISABLED", False),
            state=_state_settings(r),
        )
        _check_cross_fields(settings)
        return settings


def _state_settings(r: _Reader) -> StateSettings | None:
    """HFO_STATE_BUCKET and HFO_STATE_ROLE_ARN, both or neither (neither: state handoff off)."""
    bucket = r.optional_pattern(
        "HFO_STATE_BUCKET", _BUCKET, "empty (off) or an S3 bucket name (3-63 of a-z 0-9 . -, alphanumeric at both ends)"
    )
    role = r.optional_pattern(
        "HFO_STATE_ROLE_ARN", _ROLE_ARN, "empty (off) or an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
    )
    low, high = STATE_CREDENTIALS_TTL_RANGE
    ttl = r.number("HFO_STATE_CREDENTIALS_TTL_S", int, low, low, high)
    if bucket is None and role is None:
        return None
    if bucket is None:
        raise SettingsError("HFO_STATE_BUCKET", "is required when HFO_STATE_ROLE_ARN is set (both or neither)")
    if role is None:
        raise SettingsError("HFO_STATE_ROLE_ARN", "is required when HFO_STATE_BUCKET is set (both or neither)")
    region = r.raw("AWS_REGION") or r.raw("AWS_DEFAULT_REGION")
    if not region or not _REGION.match(region):
        raise SettingsError(
            "AWS_REGION", f"must name the region the sites reach the state bucket in, got {_show(region or '')}"
        )
    endpoint = r.raw("AWS_ENDPOINT_URL_S3") or r.raw("AWS_ENDPOINT_URL") or None
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.username or parts.password:
            raise SettingsError("AWS_ENDPOINT_URL", "must not carry credentials (user:password@)")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError("AWS_ENDPOINT_URL", f"must be an http(s) URL with a host, got {_show(endpoint)}")
    return StateSettings(bucket=bucket, role_arn=role, credentials_ttl_s=ttl, region=region, endpoint_url=endpoint)


def _check_cross_fields(s: Settings) -> None:
    p = s.policy
    if not p.lease_ttl_s + p.stop_grace_s + p.heartbeat_interval_s < p.down_heartbeat_s:
        raise SettingsError(
            "HFO_DOWN_HEARTBEAT_S",
            f"must be greater than HFO_LEASE_TTL_S + HFO_STOP_GRACE_S + HFO_HEARTBEAT_INTERVAL_S "
            f"({p.lease_ttl_s:g} + {p.stop_grace_s:g} + {p.heartbeat_interval_s:g} = "
            f"{p.lease_ttl_s + p.stop_grace_s + p.heartbeat_interval_s:g}), got {p.down_heartbeat_s:g}: "
            "a primary cut off from AWS must have fenced itself before the standby can get the lease",
        )
    if not p.heartbeat_interval_s * 3 <= p.lease_ttl_s:
        raise SettingsError(
            "HFO_LEASE_TTL_S",
            f"must be at least 3 x HFO_HEARTBEAT_INTERVAL_S ({3 * p.heartbeat_interval_s:g}), got "
            f"{p.lease_ttl_s:g}: one lost heartbeat must not fence a site",
        )
    renew_gap = s.tick_interval_s + s.probe_connect_timeout_s + s.probe_read_timeout_s
    if p.probe_lease_ttl_s and not p.probe_lease_ttl_s > renew_gap:
        raise SettingsError(
            "HFO_PROBE_LEASE_TTL_S",
            f"must be 0 (no renewal over the probe path) or greater than HFO_TICK_INTERVAL_S + the probe's "
            f"timeouts ({renew_gap:g}), got {p.probe_lease_ttl_s:g}: one renewal must last until the next tick's",
        )
    if p.probe_lease_ttl_s and p.probe_renew_after_s and not p.probe_renew_after_s >= p.heartbeat_interval_s:
        raise SettingsError(
            "HFO_PROBE_RENEW_AFTER_S",
            "must be 0 (renew at every passing probe) or at least HFO_HEARTBEAT_INTERVAL_S "
            f"({p.heartbeat_interval_s:g}), got "
            f"{p.probe_renew_after_s:g}: a heartbeat is not late before one interval",
        )
    if not s.probe_connect_timeout_s + s.probe_read_timeout_s < s.tick_interval_s:
        raise SettingsError(
            "HFO_TICK_INTERVAL_S",
            f"must be greater than HFO_PROBE_CONNECT_TIMEOUT_S + HFO_PROBE_READ_TIMEOUT_S "
            f"({s.probe_connect_timeout_s + s.probe_read_timeout_s:g}), got {s.tick_interval_s}",
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _raw(self, name: str) -> str:
        return self._env.get(name, "").strip()

    def raw(self, name: str) -> str:
        return self._raw(name)

    def required(self, name: str, what: str) -> str:
        value = self._raw(name)
        if not value:
            raise SettingsError(name, f"is required: {what}")
        return value

    def pattern(self, name: str, regex: re.Pattern[str], what: str) -> str:
        value = self.required(name, what)
        if not regex.match(value):
            raise SettingsError(name, f"must be {what}, got {_show(value)}")
        return value

    def optional_pattern(self, name: str, regex: re.Pattern[str], what: str) -> str | None:
        value = self._raw(name)
        if not value:
            return None
        if not regex.match(value):
            raise SettingsError(name, f"must be {what}, got {_show(value)}")
        return value

    def https_url(self, name: str) -> str:
        return check_https_url(name, self.required(name, "an https:// URL of the primary's health endpoint"))

    def optional_file(self, name: str) -> str | None:
        value = self._raw(name)
        if not value:
            return None
        import os.path

        if not os.path.isfile(value):
            raise SettingsError(name, f"must be empty (system CAs) or a readable CA bundle file, got {_show(value)}")
        return value

    def number(self, name: str, kind: type[T], default: T, low: T, high: T) -> T:
        raw = self._raw(name)
        allowed = f"an {'integer' if kind is int else 'number'} from {low} to {high}"
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(name, f"must be {allowed}, got {_show(raw)}") from None
        if kind is float and value != value:  # NaN
            raise SettingsError(name, f"must be {allowed}, got {_show(raw)}")
        if not low <= value <= high:
            raise SettingsError(name, f"must be {allowed}, got {_show(raw)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name).lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(name, f"must be true or false, got {_show(raw)}")

    def text(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        if len(value) > 255 or not value.isprintable():
            raise SettingsError(name, "must be printable text of at most 255 characters")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (self._raw(name) or default).upper()
        if value not in allowed:
            raise SettingsError(name, f"must be one of {', '.join(allowed)}, got {_show(value)}")
        return value

    def instance_types(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if not raw:
            return ()
        types = tuple(t.strip() for t in raw.split(","))
        for t in types:
            if not _INSTANCE_TYPE.match(t):
                raise SettingsError(
                    name, f"must be a comma-separated list of EC2 instance types like t3.small, got {_show(t)}"
                )
        if len(set(types)) != len(types):
            raise SettingsError(name, "must not list an instance type twice")
        if len(types) > 10:
            raise SettingsError(name, f"must list at most 10 instance types, got {len(types)}")
        return types


def check_https_url(name: str, value: str) -> str:
    """The health endpoint's URL: https, a host, no credentials, no query (the prober adds ?nonce=)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise SettingsError(name, f"must be an https:// URL, got {_show(value)}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise SettingsError(name, f"must be an https:// URL with a host, got {_show(value)}")
    if parts.username or parts.password:
        raise SettingsError(name, "must not carry credentials (user:password@)")
    if parts.query or parts.fragment:
        raise SettingsError(name, "must have no query or fragment (the watchdog adds ?nonce=)")
    return value


def _show(value: str) -> str:
    """Quote a bad value for an error message, cut short (config values are never secrets)."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


@dataclass
class Secrets:
    """The secrets named by the settings, fetched on first use, then cached for the life of the
    container: SSM SecureString parameters (a name starting with / or an ssm ARN, what Terraform
    creates) through `ssm_client_factory`, Secrets Manager secrets (deployments made before the
    move) through `client_factory`. Values never appear in repr, logs or exceptions."""

    settings: Settings
    client_factory: Callable[[], Any] = field(repr=False)
    ssm_client_factory: Callable[[], Any] | None = field(default=None, repr=False)
    _cache: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hmac_secret(self) -> str:
        return self._get("HFO_HMAC_SECRET_ARN", self.settings.hmac_secret_id)

    def discord_webhook_url(self) -> str | None:
        if self.settings.discord_webhook_secret_id is None:
            return None
        return self._get("HFO_DISCORD_WEBHOOK_SECRET_ARN", self.settings.discord_webhook_secret_id)

    def _get(self, variable: str, secret_id: str) -> str:
        with self._lock:
            if secret_id not in self._cache:
                from hfo_watchdog.notify import is_parameter

                factory = self.client_factory
                if is_parameter(secret_id) and self.ssm_client_factory is not None:
                    factory = self.ssm_client_factory
                self._cache[secret_id] = fetch_secret_string(factory(), variable, secret_id)
            return self._cache[secret_id]


class SecretError(RuntimeError):
    """A secret could not be fetched or is empty. Names the variable and secret id, never the value."""


def fetch_secret_string(client: Any, variable: str, secret_id: str) -> str:
    """Read one secret through the adapters' reader (it keeps wire-level debug logs, which would
    hold the value, quiet), and name the variable that pointed at it when that fails."""
    from hfo_watchdog.notify import SecretError as ReadError
    from hfo_watchdog.notify import is_parameter, load_parameter_string, load_secret_string

    try:
        if is_parameter(secret_id):
            return load_parameter_string(client, secret_id)
        return load_secret_string(client, secret_id)
    except ReadError as exc:
        raise SecretError(f"{variable}: {exc}") from None
