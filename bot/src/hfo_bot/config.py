"""The bot's settings, read once from the environment. A bad value stops the start with a message that names
the variable and the allowed values; the token itself is only ever held in a ``Secret`` that never prints."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from hfo_bot.lease import LEASE_URL_ENV, validate_url
from hfo_bot.sharding import ShardAssignment, ShardConfigError, assign

SITES = ("primary", "standby")
DEFAULT_TOKEN_FILE = "/var/run/secrets/hfo-bot/token"  # noqa: S105 - a path, not a secret
DEFAULT_STATE_DIR = "/var/lib/hfo-bot"


class ConfigError(ValueError):
    """A setting is missing or out of range. The message names it; it never contains a secret."""


class Secret:
    """A value that must not reach logs, exceptions or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class BotConfig:
    site: str
    pod_name: str
    shards: ShardAssignment
    health_host: str
    health_port: int
    state_dir: Path
    token_file: Path
    stop_timeout_s: float
    sync_commands: bool
    lease: LeaseSettings


@dataclass(frozen=True)
class LeaseSettings:
    """docs/kubernetes.md#lease-aware-bot. ``url`` None: not lease-aware (the bot connects without asking its agent)."""

    url: str | None = None
    margin_s: float = 2.0  # IDENTIFY/RESUME only with more than this left of the grant
    timeout_s: float = 2.0  # one request to the agent, in total
    check_every_s: float = 5.0  # renewal period while running (sooner when the grant is short)
    pause_s: float = 1.0  # a loop tick this late (or a suspend this long) counts as a pause


def _number(env: dict[str, str], name: str, default: str, low: float, high: float) -> float:
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (allowed: {low:g}-{high:g})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is out of range (allowed: {low:g}-{high:g})")
    return value


def _bool(env: dict[str, str], name: str, default: str) -> bool:
    raw = env.get(name, default).strip().lower()
    if raw in {"true", "1", "yes"}:
        return True
    if raw in {"false", "0", "no"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (allowed: true/false)")


def load_lease(env: dict[str, str]) -> LeaseSettings:
    raw = env.get(LEASE_URL_ENV, "").strip()
    try:
        url = validate_url(raw) if raw else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return LeaseSettings(
        url=url,
        margin_s=_number(env, "HFO_BOT_LEASE_MARGIN_S", "2", 0, 60),
        timeout_s=_number(env, "HFO_BOT_LEASE_TIMEOUT_S", "2", 0.1, 30),
        check_every_s=_number(env, "HFO_BOT_LEASE_CHECK_S", "5", 0.2, 60),
        pause_s=_number(env, "HFO_BOT_LEASE_PAUSE_S", "1", 0.1, 60),
    )


def load(env: dict[str, str] | None = None) -> BotConfig:
    env = dict(os.environ) if env is None else env
    site = env.get("HFO_SITE", "").strip()
    if site not in SITES:
        raise ConfigError(f"HFO_SITE={site!r} is not a site (allowed: {', '.join(SITES)})")
    pod_name = env.get("POD_NAME") or env.get("HOSTNAME") or socket.gethostname()
    try:
        shards = assign(env, pod_name)
    except ShardConfigError as exc:
        raise ConfigError(str(exc)) from None
    host = env.get("HFO_BOT_HEALTH_HOST", "0.0.0.0").strip()  # noqa: S104 - the pod's health port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"HFO_BOT_HEALTH_HOST={host!r} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)") from None
    port = int(_number(env, "HFO_BOT_HEALTH_PORT", "8080", 0, 65535))
    return BotConfig(
        site=site,
        pod_name=pod_name,
        shards=shards,
        health_host=host,
        health_port=port,
        state_dir=Path(env.get("HFO_BOT_STATE_DIR", DEFAULT_STATE_DIR)),
        token_file=Path(env.get("DISCORD_TOKEN_FILE", DEFAULT_TOKEN_FILE)),
        stop_timeout_s=_number(env, "HFO_BOT_STOP_TIMEOUT_S", "10", 0.1, 300),
        sync_commands=_bool(env, "HFO_BOT_SYNC_COMMANDS", "true"),
        lease=load_lease(env),
    )


def read_token(path: Path) -> Secret:
    """Read the bot token from its mounted file. Errors name the file, never its content."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"token file {path} does not exist (set DISCORD_TOKEN_FILE or mount the secret)") from None
    except OSError as exc:
        raise ConfigError(f"token file {path} cannot be read: {exc.strerror}") from None
    token = raw.strip()
    if not token:
        raise ConfigError(f"token file {path} is empty")
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"token file {path} holds more than one word; it must contain only the bot token")
    return Secret(token)
