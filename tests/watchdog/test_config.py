"""Settings: every variable parsed once, bad values refused with the variable and its range named."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.config import SecretError, Secrets, Settings, SettingsError, fetch_secret_string
from hfo_watchdog.core.model import Policy

BASE = {
    "HFO_TABLE_NAME": "hfo-state",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://laptop.tail1234.ts.net/healthz",
    "HFO_HMAC_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hfo/hmac-AbCdEf",
}


def settings(**overrides: str) -> Settings:
    return Settings.from_env({**BASE, **overrides})


def test_defaults_follow_the_documented_table() -> None:
    s = settings()
    assert s.policy == Policy(
        down_probes=2,
        down_heartbeat_s=75,
        recovery_probes=3,
        recovery_steady_s=600,
        lease_ttl_s=30,
        stop_grace_s=30,
        heartbeat_interval_s=10,
        start_cooldown_s=900,
        min_state_s=120,
        standby_max_runtime_s=86400,
    )
    assert (s.tick_interval_s, s.probe_connect_timeout_s, s.probe_read_timeout_s) == (60, 3.0, 5.0)
    assert (s.probe_max_body_bytes, s.max_skew_s, s.history_days, s.aws_max_attempts) == (65536, 30, 30, 3)
    assert s.discord_webhook_secret_id is None and s.sns_topic_arn is None and s.probe_ca_bundle is None
    assert s.fallback_instance_types == () and s.tracing is False
    assert (s.service_name, s.metrics_namespace, s.log_level) == ("hfo-watchdog", "HybridFailover", "INFO")
    assert s.history_ttl_s == 30 * 86400 and s.lease_ttl_s == 30 and s.heartbeat_interval_s == 10


def test_every_variable_is_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = settings(
        HFO_DISCORD_WEBHOOK_SECRET_ARN="hfo/discord",
        HFO_SNS_TOPIC_ARN="arn:aws:sns:eu-west-3:123456789012:hfo-alerts",
        HFO_TICK_INTERVAL_S="30",
        HFO_PROBE_CONNECT_TIMEOUT_S="0.5",
        HFO_PROBE_READ_TIMEOUT_S="1.5",
        HFO_PROBE_MAX_BODY_BYTES="4096",
        HFO_PROBE_CA_BUNDLE=str(ca),
        HFO_MAX_SKEW_S="10",
        HFO_DOWN_PROBES="5",
        HFO_DOWN_HEARTBEAT_S="120",
        HFO_RECOVERY_PROBES="4",
        HFO_RECOVERY_STEADY_S="0",
        HFO_HEARTBEAT_INTERVAL_S="5",
        HFO_LEASE_TTL_S="45",
        HFO_STOP_GRACE_S="20",
        HFO_START_COOLDOWN_S="600",
        HFO_MIN_STATE_S="60",
        HFO_STANDBY_MAX_RUNTIME_S="7200",
        HFO_FALLBACK_INSTANCE_TYPES=" t3.small, t3a.small ,m5.large",
        HFO_HISTORY_DAYS="7",
        HFO_AWS_MAX_ATTEMPTS="5",
        HFO_TRACING="TRUE",
        POWERTOOLS_SERVICE_NAME="my-watchdog",
        POWERTOOLS_METRICS_NAMESPACE="Mine",
        POWERTOOLS_LOG_LEVEL="debug",
    )
    assert s.discord_webhook_secret_id == "hfo/discord"
    assert s.sns_topic_arn == "arn:aws:sns:eu-west-3:123456789012:hfo-alerts"
    assert (s.tick_interval_s, s.probe_connect_timeout_s, s.probe_read_timeout_s) == (30, 0.5, 1.5)
    assert (s.probe_max_body_bytes, s.probe_ca_bundle, s.max_skew_s) == (4096, str(ca), 10)
    p = s.policy
    assert (p.down_probes, p.down_heartbeat_s, p.recovery_probes, p.recovery_steady_s) == (5, 120, 4, 0)
    assert (p.heartbeat_interval_s, p.lease_ttl_s, p.stop_grace_s) == (5, 45, 20)
    assert (p.start_cooldown_s, p.min_state_s, p.standby_max_runtime_s) == (600, 60, 7200)
    assert s.fallback_instance_types == ("t3.small", "t3a.small", "m5.large")
    assert (s.history_days, s.aws_max_attempts, s.tracing) == (7, 5, True)
    assert (s.service_name, s.metrics_namespace, s.log_level) == ("my-watchdog", "Mine", "DEBUG")


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(AttributeError):
        s.table_name = "other"


@pytest.mark.parametrize("name", sorted(BASE))
def test_required_variables_missing_or_blank(name: str) -> None:
    env = dict(BASE)
    del env[name]
    with pytest.raises(SettingsError, match=f"^{name}: is required") as missing:
        Settings.from_env(env)
    assert missing.value.variable == name
    with pytest.raises(SettingsError, match=f"^{name}: is required"):
        Settings.from_env({**BASE, name: "   "})


# (variable, bad value, words the message must contain)
BAD_VALUES = [
    ("HFO_TABLE_NAME", "ab", "DynamoDB table name"),
    ("HFO_TABLE_NAME", "bad name!", "DynamoDB table name"),
    ("HFO_INSTANCE_ID", "i-123", "i- followed by 8 or 17 hex"),
    ("HFO_INSTANCE_ID", "i-0123456789ABCDEF0", "i- followed by 8 or 17 hex"),
    ("HFO_INSTANCE_ID", "vol-01234567", "i- followed by 8 or 17 hex"),
    ("HFO_HEALTH_URL", "http://laptop.ts.net/healthz", "https:// URL"),
    ("HFO_HEALTH_URL", "https:///healthz", "https:// URL with a host"),
    ("HFO_HEALTH_URL", "https://laptop.ts.net:99999/", "https:// URL"),
    ("HFO_HEALTH_URL", "https://u:p@laptop.ts.net/", "credentials"),
    ("HFO_HEALTH_URL", "https://laptop.ts.net/healthz?nonce=x", "no query"),
    ("HFO_HMAC_SECRET_ARN", "arn:aws:s3:::bucket/key with space", "SecureString parameter"),
    ("HFO_DISCORD_WEBHOOK_SECRET_ARN", "https://discord.com/api/webhooks/1/x y", "SecureString parameter"),
    ("HFO_SNS_TOPIC_ARN", "hfo-alerts", "SNS topic ARN"),
    ("HFO_SNS_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q", "SNS topic ARN"),
    ("HFO_TICK_INTERVAL_S", "0", "integer from 1 to 3600"),
    ("HFO_TICK_INTERVAL_S", "3601", "integer from 1 to 3600"),
    ("HFO_TICK_INTERVAL_S", "1.5", "integer from 1 to 3600"),
    ("HFO_PROBE_CONNECT_TIMEOUT_S", "0.05", "number from 0.1 to 30.0"),
    ("HFO_PROBE_CONNECT_TIMEOUT_S", "nan", "number from 0.1 to 30.0"),
    ("HFO_PROBE_READ_TIMEOUT_S", "31", "number from 0.1 to 30.0"),
    ("HFO_PROBE_READ_TIMEOUT_S", "five", "number from 0.1 to 30.0"),
    ("HFO_PROBE_MAX_BODY_BYTES", "255", "integer from 256 to 1048576"),
    ("HFO_PROBE_MAX_BODY_BYTES", "1048577", "integer from 256 to 1048576"),
    ("HFO_PROBE_CA_BUNDLE", "/nonexistent/ca.pem", "readable CA bundle file"),
    ("HFO_MAX_SKEW_S", "0", "integer from 1 to 300"),
    ("HFO_MAX_SKEW_S", "301", "integer from 1 to 300"),
    ("HFO_DOWN_PROBES", "0", "integer from 1 to 60"),
    ("HFO_DOWN_PROBES", "61", "integer from 1 to 60"),
    ("HFO_DOWN_HEARTBEAT_S", "9", "integer from 10 to 3600"),
    ("HFO_DOWN_HEARTBEAT_S", "3601", "integer from 10 to 3600"),
    ("HFO_RECOVERY_PROBES", "0", "integer from 1 to 60"),
    ("HFO_RECOVERY_STEADY_S", "-1", "integer from 0 to 86400"),
    ("HFO_RECOVERY_STEADY_S", "86401", "integer from 0 to 86400"),
    ("HFO_HEARTBEAT_INTERVAL_S", "0", "integer from 1 to 300"),
    ("HFO_HEARTBEAT_INTERVAL_S", "301", "integer from 1 to 300"),
    ("HFO_LEASE_TTL_S", "4", "integer from 5 to 3600"),
    ("HFO_LEASE_TTL_S", "3601", "integer from 5 to 3600"),
    ("HFO_STOP_GRACE_S", "-1", "integer from 0 to 600"),
    ("HFO_STOP_GRACE_S", "601", "integer from 0 to 600"),
    ("HFO_START_COOLDOWN_S", "-5", "integer from 0 to 86400"),
    ("HFO_START_COOLDOWN_S", "86401", "integer from 0 to 86400"),
    ("HFO_MIN_STATE_S", "86401", "integer from 0 to 86400"),
    ("HFO_MIN_STATE_S", "2m", "integer from 0 to 86400"),
    ("HFO_STANDBY_MAX_RUNTIME_S", "599", "integer from 600 to 2592000"),
    ("HFO_STANDBY_MAX_RUNTIME_S", "2592001", "integer from 600 to 2592000"),
    ("HFO_PREWARM_SILENCE_S", "0", "integer from 1 to 3600"),
    ("HFO_PREWARM_SILENCE_S", "3601", "integer from 1 to 3600"),
    ("HFO_PREWARM_HOLD_S", "9", "integer from 10 to 86400"),
    ("HFO_PREWARM_HOLD_S", "86401", "integer from 10 to 86400"),
    ("HFO_PREWARM_MAX_PER_HOUR", "-1", "integer from 0 to 12"),
    ("HFO_PREWARM_MAX_PER_HOUR", "13", "integer from 0 to 12"),
    ("HFO_PROBE_LEASE_TTL_S", "-1", "integer from 0 to 3600"),
    ("HFO_PROBE_LEASE_TTL_S", "3601", "integer from 0 to 3600"),
    ("HFO_PROBE_RENEW_AFTER_S", "-1", "integer from 0 to 3600"),
    ("HFO_PROBE_RENEW_AFTER_S", "1.5", "integer from 0 to 3600"),
    ("HFO_HANDOVER_HEARTBEAT_INTERVAL_S", "0", "integer from 1 to 300"),
    ("HFO_HANDOVER_HEARTBEAT_INTERVAL_S", "301", "integer from 1 to 300"),
    ("HFO_FALLBACK_INSTANCE_TYPES", "t3.small,,m5.large", "EC2 instance types"),
    ("HFO_FALLBACK_INSTANCE_TYPES", "t3.small;m5.large", "EC2 instance types"),
    ("HFO_FALLBACK_INSTANCE_TYPES", "t3.small,t3.small", "twice"),
    ("HFO_HISTORY_DAYS", "0", "integer from 1 to 365"),
    ("HFO_HISTORY_DAYS", "366", "integer from 1 to 365"),
    ("HFO_AWS_MAX_ATTEMPTS", "0", "integer from 1 to 10"),
    ("HFO_AWS_MAX_ATTEMPTS", "11", "integer from 1 to 10"),
    ("HFO_STATE_BUCKET", "Hfo_State", "S3 bucket name"),
    ("HFO_STATE_BUCKET", "x", "S3 bucket name"),
    ("HFO_STATE_ROLE_ARN", "hfo-state-access", "IAM role ARN"),
    ("HFO_STATE_ROLE_ARN", "arn:aws:iam::123456789012:user/hfo", "IAM role ARN"),
    ("HFO_STATE_CREDENTIALS_TTL_S", "899", "integer from 900 to 3600"),
    ("HFO_STATE_CREDENTIALS_TTL_S", "3601", "integer from 900 to 3600"),
    ("HFO_TRACING", "maybe", "true or false"),
    ("POWERTOOLS_METRICS_DISABLED", "perhaps", "true or false"),
    ("POWERTOOLS_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("POWERTOOLS_SERVICE_NAME", "x" * 256, "at most 255"),
    ("POWERTOOLS_METRICS_NAMESPACE", "a\nb", "printable"),
]


@pytest.mark.parametrize(("name", "value", "words"), BAD_VALUES, ids=[f"{n}={v[:20]}" for n, v, _ in BAD_VALUES])
def test_bad_values_name_the_variable_and_the_allowed_range(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings(**{name: value})
    assert refused.value.variable == name
    message = str(refused.value)
    assert message.startswith(f"{name}: ")
    assert words in message


def test_every_documented_variable_has_a_bad_value_case() -> None:
    documented = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    names = {line.split("`")[1] for line in documented.read_text().splitlines() if line.startswith("| `")}
    covered = {name for name, _, _ in BAD_VALUES} | set(BASE)
    assert names == covered


def test_bounds_are_inclusive() -> None:
    s = settings(
        HFO_TICK_INTERVAL_S="3600",
        HFO_DOWN_PROBES="60",
        HFO_HEARTBEAT_INTERVAL_S="1",
        HFO_LEASE_TTL_S="5",
        HFO_STOP_GRACE_S="0",
        HFO_DOWN_HEARTBEAT_S="10",
        HFO_PROBE_CONNECT_TIMEOUT_S="0.1",
        HFO_PROBE_READ_TIMEOUT_S="30",
        HFO_PROBE_LEASE_TTL_S="0",
    )
    assert (s.tick_interval_s, s.policy.down_probes, s.policy.down_heartbeat_s) == (3600, 60, 10)


def test_fencing_rule_lease_plus_grace_plus_interval_below_down_window() -> None:
    # 30 + 30 + 10 = 70: a down window of 70 s would let the standby take over before the
    # cut-off primary has surely stopped its bot.
    with pytest.raises(SettingsError, match=r"^HFO_DOWN_HEARTBEAT_S: .*\(30 \+ 30 \+ 10 = 70\), got 70"):
        settings(HFO_DOWN_HEARTBEAT_S="70")
    assert settings(HFO_DOWN_HEARTBEAT_S="71").policy.down_heartbeat_s == 71


def test_lease_ttl_covers_three_heartbeats() -> None:
    with pytest.raises(SettingsError, match=r"^HFO_LEASE_TTL_S: must be at least 3 x HFO_HEARTBEAT_INTERVAL_S \(60\)"):
        settings(HFO_HEARTBEAT_INTERVAL_S="20", HFO_LEASE_TTL_S="59", HFO_DOWN_HEARTBEAT_S="600")
    assert settings(HFO_HEARTBEAT_INTERVAL_S="20", HFO_LEASE_TTL_S="60", HFO_DOWN_HEARTBEAT_S="600")


def test_probe_timeouts_fit_in_a_tick() -> None:
    with pytest.raises(SettingsError, match=r"^HFO_TICK_INTERVAL_S: .*\(8\), got 8"):
        settings(HFO_TICK_INTERVAL_S="8")
    assert settings(HFO_TICK_INTERVAL_S="9").tick_interval_s == 9


def test_probe_renewal_is_at_every_passing_probe_or_once_heartbeats_are_late() -> None:
    # 0 (the default) renews at every passing probe; a value above 0 must be at least one heartbeat
    # interval: a heartbeat is not late before that.
    assert settings().policy.probe_renew_after_s == 0
    with pytest.raises(SettingsError, match=r"^HFO_PROBE_RENEW_AFTER_S: must be 0 .* \(10\), got 9"):
        settings(HFO_PROBE_RENEW_AFTER_S="9")
    assert settings(HFO_PROBE_RENEW_AFTER_S="10").policy.probe_renew_after_s == 10
    # with renewal over the probe path off, the setting is not used and any value is accepted
    assert settings(HFO_PROBE_LEASE_TTL_S="0", HFO_PROBE_RENEW_AFTER_S="9").policy.probe_renew_after_s == 9


class _Counting:
    """A real boto3 client that counts GetSecretValue calls."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.calls = 0

    def get_secret_value(self, **kwargs: str) -> dict[str, object]:
        self.calls += 1
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def secretsmanager(aws: MotoServer) -> _Counting:
    return _Counting(boto3.client("secretsmanager"))


@pytest.mark.moto
def test_secrets_are_fetched_once_and_never_shown(secretsmanager: _Counting) -> None:
    hmac_value = "s3cr3t-" * 8
    sm = secretsmanager.client
    hmac_arn = sm.create_secret(Name="hfo/hmac", SecretString=hmac_value)["ARN"]
    sm.create_secret(Name="hfo/discord", SecretString="https://discord.test/x")
    secrets = Secrets(
        settings(HFO_HMAC_SECRET_ARN=hmac_arn, HFO_DISCORD_WEBHOOK_SECRET_ARN="hfo/discord"), lambda: secretsmanager
    )
    assert secrets.hmac_secret() == hmac_value
    assert secrets.hmac_secret() == hmac_value
    assert secrets.discord_webhook_url() == "https://discord.test/x"
    assert secretsmanager.calls == 2
    assert hmac_value not in repr(secrets) and "discord.test" not in repr(secrets)


@pytest.mark.moto
def test_discord_secret_is_optional(secretsmanager: _Counting) -> None:
    assert Secrets(settings(), lambda: secretsmanager).discord_webhook_url() is None
    assert secretsmanager.calls == 0


@pytest.mark.moto
def test_missing_or_binary_secret_names_the_variable_not_a_value(secretsmanager: _Counting) -> None:
    with pytest.raises(SecretError, match=r"^HFO_HMAC_SECRET_ARN: secret 'x' .*\(ResourceNotFoundException\)$"):
        fetch_secret_string(secretsmanager, "HFO_HMAC_SECRET_ARN", "x")
    secretsmanager.client.create_secret(Name="binary", SecretBinary=b"\x00" * 40)
    with pytest.raises(SecretError, match=r"^HFO_DISCORD_WEBHOOK_SECRET_ARN: secret 'binary' .*binary"):
        fetch_secret_string(secretsmanager, "HFO_DISCORD_WEBHOOK_SECRET_ARN", "binary")


@pytest.mark.moto
def test_ssm_parameters_are_read_through_parameter_store_once(aws: MotoServer, secretsmanager: _Counting) -> None:
    ssm = boto3.client("ssm")
    hmac_value = "p4r4m-" * 8
    ssm.put_parameter(Name="/hfo/hmac-keyring", Value=hmac_value, Type="SecureString")
    put = ssm.put_parameter(Name="/hfo/discord-webhook", Value="https://discord.test/y", Type="SecureString")
    discord_arn = ssm.get_parameter(Name="/hfo/discord-webhook")["Parameter"]["ARN"]
    assert put["Version"] == 1
    made: list[str] = []

    def ssm_factory() -> object:
        made.append("ssm")
        return ssm

    secrets = Secrets(
        settings(HFO_HMAC_SECRET_ARN="/hfo/hmac-keyring", HFO_DISCORD_WEBHOOK_SECRET_ARN=discord_arn),
        lambda: secretsmanager,
        ssm_factory,
    )
    assert secrets.hmac_secret() == hmac_value
    assert secrets.hmac_secret() == hmac_value
    assert secrets.discord_webhook_url() == "https://discord.test/y"
    assert made == ["ssm", "ssm"] and secretsmanager.calls == 0  # cached: one read per parameter
    assert hmac_value not in repr(secrets)
    with pytest.raises(SecretError, match=r"^HFO_HMAC_SECRET_ARN: parameter '/hfo/missing' does not exist"):
        fetch_secret_string(ssm, "HFO_HMAC_SECRET_ARN", "/hfo/missing")
