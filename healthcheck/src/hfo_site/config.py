"""Settings of the health service and the agent, read once from the environment at start.

Every bad value raises ConfigError naming the variable and the allowed range; nothing falls back
silently. Secret *values* never appear in an error: only the variable and the file path.
docs/site.md#configuration lists every variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hfo_protocol import SITES

BACKENDS = ("kubernetes", "exec")
WORKLOAD_KINDS = ("deployment", "statefulset")
DESIRED_REPLICAS_ANNOTATION = "hfo.dev/desired-replicas"
MAX_WORKLOADS = 16

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class ConfigError(ValueError):
    """A configuration problem. ``variable`` names the environment variable at fault."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


@dataclass(frozen=True)
class WorkloadRef:
    kind: str  # deployment | statefulset
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class ExecWorkload:
    """One command the exec backend supervises, under its name (docs/site.md#exec)."""

    name: str
    argv: tuple[str, ...]
    # The workload's state directory (docs/site.md#exec-state): restored by ``hfo-site state restore``
    # before the command starts, kept in the bucket by ``hfo-site state sync`` while it runs.
    state_dir: Path | None = None


@dataclass(frozen=True)
class BackendSettings:
    kind: str  # kubernetes | exec
    namespace: str | None = None
    workloads: tuple[WorkloadRef, ...] = ()
    command: tuple[str, ...] = ()  # exec, single-command form (HFO_EXEC_COMMAND); empty with HFO_EXEC_WORKLOADS
    exec_workloads: tuple[ExecWorkload, ...] = ()  # exec: every supervised command (one for HFO_EXEC_COMMAND)
    state_sync_interval_s: float = 30.0  # exec: HFO_EXEC_STATE_SYNC_INTERVAL_S, the sync's --interval


@dataclass(frozen=True)
class HealthSettings:
    site: str
    secret_file: Path
    token_file: Path
    backend: BackendSettings
    workload_ready_url: str | None
    check_interval_s: float
    check_timeout_s: float
    heartbeat_interval_s: float
    heartbeat_stale_s: float
    rate_limit_rps: float
    rate_limit_burst: int
    rate_limit_clients: int
    client_ip_header: str | None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    bind: str
    port: int
    status_port: int
    metrics_port: int
    shutdown_grace_s: float
    log_level: str


@dataclass(frozen=True)
class ShardSettings:
    """Shard-aware scaling (docs/kubernetes.md#shard-aware-scaling); None when HFO_SHARDS_ENABLED is off."""

    workload: WorkloadRef  # the sharded StatefulSet (one of HFO_K8S_WORKLOADS)
    configmap: str  # the ConfigMap the agent writes SHARD_COUNT and SHARDS_PER_POD into
    per_pod: int
    min_replicas: int
    max_replicas: int
    grow_after_s: float
    shrink_after_s: float
    refresh_s: float
    token_file: Path
    api_url: str
    timeout_s: float


@dataclass(frozen=True)
class AgentSettings:
    site: str
    secret_file: Path
    heartbeat_url: str
    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    heartbeat_retries: int
    backend: BackendSettings
    stop_grace_s: float
    status_url: str
    ca_bundle: Path | None
    bind: str
    metrics_port: int
    lease_bind: str
    lease_port: int  # 0: an ephemeral port (the exec backend passes the URL to its child)
    restart_backoff_s: float
    restart_backoff_max_s: float
    fence_on_exit: bool
    log_level: str
    # The state handoff (docs/state-handoff.md#credentials): off unless HFO_STATE_ENABLED; then the
    # bearer token the state containers present on the lease server.
    state_token_file: Path | None = None
    shards: ShardSettings | None = None


class _Env:
    """Typed readers over one environment mapping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(self, name: str, what: str) -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(name, f"is required ({what})")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(name) or default
        if value is None:
            raise ConfigError(name, f"is required; one of {', '.join(choices)}")
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number between {low:g} and {high:g} (got {value!r})") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ConfigError(name, f"must be between {low:g} and {high:g} (got {value!r})")
        return number

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"must be an integer between {low} and {high} (got {value!r})") from None
        if not low <= number <= high:
            raise ConfigError(name, f"must be between {low} and {high} (got {value!r})")
        return number

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, 1, 65535)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(name, f"must be true or false (got {value!r})")

    def readable_file(self, name: str, what: str, required: bool = True) -> Path | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(name, f"is required (path to {what})")
            return None
        path = Path(value)
        if not path.is_file():
            raise ConfigError(name, f"{value} is not a readable file ({what})")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(name, f"{value} cannot be read ({what}): {exc.strerror}") from None
        return path

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None, required: bool = True) -> str | None:
        value = self.raw(name) or default
        if value is None:
            if required:
                raise ConfigError(name, f"is required (a {' or '.join(schemes)} URL)")
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(name, f"must be a {' or '.join(schemes)}:// URL with a host (got {value!r})")
        if parts.username or parts.password:
            raise ConfigError(name, "must not carry credentials in the URL")
        return value


def _site(env: _Env) -> str:
    return env.choice("HFO_SITE", SITES)


def parse_workloads(value: str) -> tuple[WorkloadRef, ...]:
    """``deployment/bot,statefulset/bot-shards`` -> WorkloadRefs. Raises ConfigError."""
    refs: list[WorkloadRef] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        kind, sep, name = item.partition("/")
        if not sep or kind not in WORKLOAD_KINDS:
            raise ConfigError(
                "HFO_K8S_WORKLOADS",
                f"entry {item!r} must be <kind>/<name> with kind one of {', '.join(WORKLOAD_KINDS)}",
            )
        if not _DNS_SUBDOMAIN.match(name):
            raise ConfigError("HFO_K8S_WORKLOADS", f"entry {item!r}: {name!r} is not a valid Kubernetes object name")
        ref = WorkloadRef(kind, name)
        if ref in refs:
            raise ConfigError("HFO_K8S_WORKLOADS", f"entry {item!r} is listed twice")
        refs.append(ref)
    if not refs:
        raise ConfigError("HFO_K8S_WORKLOADS", "lists no workload (expected e.g. deployment/bot)")
    if len(refs) > MAX_WORKLOADS:
        raise ConfigError("HFO_K8S_WORKLOADS", f"lists {len(refs)} workloads; at most {MAX_WORKLOADS}")
    return tuple(refs)


def _backend(env: _Env, need_command: bool = True) -> BackendSettings:
    kind = env.choice("HFO_BACKEND", BACKENDS)
    if kind == "kubernetes":
        namespace = env.required("HFO_K8S_NAMESPACE", "the namespace of the workloads")
        if not _DNS_LABEL.match(namespace):
            raise ConfigError("HFO_K8S_NAMESPACE", f"{namespace!r} is not a valid namespace name")
        workloads = parse_workloads(env.required("HFO_K8S_WORKLOADS", "e.g. deployment/bot,statefulset/bot-shards"))
        return BackendSettings(kind=kind, namespace=namespace, workloads=workloads)
    if not need_command:  # the health service never runs the command
        return BackendSettings(kind=kind)
    exec_workloads = parse_exec_workloads(env.env)
    single = exec_workloads[0].argv if env.raw("HFO_EXEC_WORKLOADS") is None else ()
    interval = env.number("HFO_EXEC_STATE_SYNC_INTERVAL_S", 30.0, 0.1, 86400.0)
    return BackendSettings(kind=kind, command=single, exec_workloads=exec_workloads, state_sync_interval_s=interval)


EXEC_SINGLE_NAME = "bot"  # the name of the one workload of the single-command form (logs, observe detail)
_EXEC_COMMAND_PREFIX = "HFO_EXEC_COMMAND_"
_EXEC_STATE_DIR = "HFO_EXEC_STATE_DIR"


def exec_command_variable(name: str) -> str:
    """``bot-a`` -> ``HFO_EXEC_COMMAND_BOT_A``: where the command of a named exec workload is set."""
    return _EXEC_COMMAND_PREFIX + name.upper().replace("-", "_")


def _split_command(variable: str, text: str) -> tuple[str, ...]:
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise ConfigError(variable, f"cannot be split into arguments: {exc}") from None
    if not argv:
        raise ConfigError(variable, "is empty")
    return argv


def exec_state_dir_variable(name: str | None) -> str:
    """``bot-a`` -> ``HFO_EXEC_STATE_DIR_BOT_A``; None (the single-command form) -> ``HFO_EXEC_STATE_DIR``."""
    return _EXEC_STATE_DIR if name is None else f"{_EXEC_STATE_DIR}_{name.upper().replace('-', '_')}"


def _state_dir(variable: str, text: str) -> Path:
    """A workload's state directory: absolute, normalised, its parent an existing directory (the
    restore unpacks beside it and renames into it, so both must be on one volume)."""
    path = Path(text)
    if not path.is_absolute():
        raise ConfigError(variable, f"must be an absolute path (got {text!r})")
    if ".." in path.parts or path != Path(os.path.normpath(text)):
        raise ConfigError(variable, f"must be a normalised path without '..' or '.' (got {text!r})")
    if path.parent == path:
        raise ConfigError(variable, "must not be the root directory")
    if not path.parent.is_dir():
        raise ConfigError(variable, f"the parent {str(path.parent)!r} is not an existing directory")
    if path.exists() and (path.is_symlink() or not path.is_dir()):
        raise ConfigError(variable, f"{text!r} exists and is not a directory")
    return path


def _with_state_dirs(
    environ: Mapping[str, str], workloads: tuple[ExecWorkload, ...], single: bool
) -> tuple[ExecWorkload, ...]:
    """Attach each workload's state directory (HFO_EXEC_STATE_DIR[_<NAME>]); they need
    HFO_STATE_ENABLED (the agent hands the state containers their credentials) and must not nest."""
    env = _Env(environ)
    variables = {exec_state_dir_variable(None if single else w.name): w.name for w in workloads}
    strays = sorted(k for k in environ if k.startswith(_EXEC_STATE_DIR) and k not in variables)
    if strays:
        expected = ", ".join(variables)
        raise ConfigError(strays[0], f"names no workload (the state directory variables here: {expected})")
    dirs: dict[str, Path] = {}
    for variable, name in variables.items():
        text = env.raw(variable)
        if text is not None:
            dirs[name] = _state_dir(variable, text)
    if dirs and not env.boolean("HFO_STATE_ENABLED", False):
        first = next(k for k, v in variables.items() if v in dirs)
        raise ConfigError(first, "needs HFO_STATE_ENABLED=true (the agent serves the state credentials)")
    seen: dict[Path, str] = {}
    for name, path in dirs.items():
        for other_path, other in seen.items():
            if path == other_path or path.is_relative_to(other_path) or other_path.is_relative_to(path):
                raise ConfigError(
                    exec_state_dir_variable(None if single else name),
                    f"{str(path)!r} overlaps the state directory of workload {other!r} ({str(other_path)!r})",
                )
        seen[path] = name
    return tuple(dataclasses.replace(w, state_dir=dirs.get(w.name)) for w in workloads)


def parse_exec_workloads(environ: Mapping[str, str]) -> tuple[ExecWorkload, ...]:
    """The exec backend's commands: either ``HFO_EXEC_COMMAND`` (one workload), or
    ``HFO_EXEC_WORKLOADS=bot-a,bot-b`` with one ``HFO_EXEC_COMMAND_BOT_A=...`` per name. Raises ConfigError."""
    env = _Env(environ)
    names_text = env.raw("HFO_EXEC_WORKLOADS")
    strays = sorted(k for k in environ if k.startswith(_EXEC_COMMAND_PREFIX))
    if names_text is None:
        if strays:
            raise ConfigError(strays[0], "is set but HFO_EXEC_WORKLOADS is not (it lists the named workloads)")
        text = env.required("HFO_EXEC_COMMAND", "the command that runs the workload, or HFO_EXEC_WORKLOADS")
        return _with_state_dirs(
            environ, (ExecWorkload(EXEC_SINGLE_NAME, _split_command("HFO_EXEC_COMMAND", text)),), True
        )
    if env.raw("HFO_EXEC_COMMAND") is not None:
        raise ConfigError("HFO_EXEC_COMMAND", "set it or HFO_EXEC_WORKLOADS, not both")
    names: list[str] = []
    for name in (part.strip() for part in names_text.split(",")):
        if not name:
            continue
        if not _DNS_LABEL.match(name):
            raise ConfigError(
                "HFO_EXEC_WORKLOADS",
                f"entry {name!r} must be a lowercase DNS label (a-z, 0-9, '-', at most 63, e.g. bot-a)",
            )
        if name in names:
            raise ConfigError("HFO_EXEC_WORKLOADS", f"entry {name!r} is listed twice")
        names.append(name)
    if not names:
        raise ConfigError("HFO_EXEC_WORKLOADS", "lists no workload (expected e.g. bot-a,bot-b)")
    if len(names) > MAX_WORKLOADS:
        raise ConfigError("HFO_EXEC_WORKLOADS", f"lists {len(names)} workloads; at most {MAX_WORKLOADS}")
    variables = {exec_command_variable(name): name for name in names}
    unknown = [k for k in strays if k not in variables]
    if unknown:
        raise ConfigError(unknown[0], f"names no workload of HFO_EXEC_WORKLOADS ({', '.join(names)})")
    workloads = []
    for variable, name in variables.items():
        text = env.required(variable, f"the command of workload {name!r} listed in HFO_EXEC_WORKLOADS")
        workloads.append(ExecWorkload(name, _split_command(variable, text)))
    return _with_state_dirs(environ, tuple(workloads), False)


def _networks(env: _Env, name: str, default: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    text = env.raw(name) or default
    nets = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(name, f"{item!r} is not an IP network (expected CIDRs like 100.64.0.0/10)") from None
    return tuple(nets)


def _log_level(env: _Env) -> str:
    return env.choice("HFO_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")


def load_health_settings(environ: Mapping[str, str]) -> HealthSettings:
    env = _Env(environ)
    site = _site(env)
    secret_file = env.readable_file("HFO_HMAC_SECRET_FILE", "the shared HMAC keyring, docs/protocol.md format")
    token_file = env.readable_file("HFO_DETAILS_TOKEN_FILE", "the bearer token that unlocks details")
    assert secret_file is not None and token_file is not None
    backend = _backend(env, need_command=False)
    check_interval = env.number("HFO_CHECK_INTERVAL_S", 5.0, 0.05, 300.0)
    check_timeout = env.number("HFO_CHECK_TIMEOUT_S", min(2.0, check_interval), 0.01, 60.0)
    if check_timeout > check_interval:
        raise ConfigError(
            "HFO_CHECK_TIMEOUT_S", f"must not exceed HFO_CHECK_INTERVAL_S ({check_interval:g}) (got {check_timeout:g})"
        )
    hb_interval = env.number("HFO_HEARTBEAT_INTERVAL_S", 10.0, 0.05, 300.0)
    stale = env.number("HFO_HEARTBEAT_STALE_S", 3 * hb_interval, 0.1, 3600.0)
    if stale <= hb_interval:
        raise ConfigError(
            "HFO_HEARTBEAT_STALE_S", f"must be longer than HFO_HEARTBEAT_INTERVAL_S ({hb_interval:g}) (got {stale:g})"
        )
    header = env.raw("HFO_CLIENT_IP_HEADER")
    if header is not None and not _HEADER_NAME.match(header):
        raise ConfigError("HFO_CLIENT_IP_HEADER", f"{header!r} is not an HTTP header name")
    ports = {
        "HFO_HEALTH_PORT": env.port("HFO_HEALTH_PORT", 8080),
        "HFO_STATUS_PORT": env.port("HFO_STATUS_PORT", 8081),
        "HFO_METRICS_PORT": env.port("HFO_METRICS_PORT", 9100),
    }
    if len(set(ports.values())) != len(ports):
        raise ConfigError("HFO_HEALTH_PORT", f"the health, status and metrics ports must differ (got {ports})")
    return HealthSettings(
        site=site,
        secret_file=secret_file,
        token_file=token_file,
        backend=backend,
        workload_ready_url=env.url("HFO_WORKLOAD_READY_URL", ("http", "https"), required=False),
        check_interval_s=check_interval,
        check_timeout_s=check_timeout,
        heartbeat_interval_s=hb_interval,
        heartbeat_stale_s=stale,
        rate_limit_rps=env.number("HFO_RATE_LIMIT_RPS", 5.0, 0.01, 1_000_000.0),
        rate_limit_burst=env.integer("HFO_RATE_LIMIT_BURST", 20, 1, 1_000_000),
        rate_limit_clients=env.integer("HFO_RATE_LIMIT_CLIENTS", 10_000, 1, 1_000_000),
        client_ip_header=header,
        trusted_proxies=_networks(env, "HFO_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        bind=env.raw("HFO_HEALTH_BIND") or "0.0.0.0",  # noqa: S104 - the pod's port, reached through Funnel
        port=ports["HFO_HEALTH_PORT"],
        status_port=ports["HFO_STATUS_PORT"],
        metrics_port=ports["HFO_METRICS_PORT"],
        shutdown_grace_s=env.number("HFO_SHUTDOWN_GRACE_S", 5.0, 0.0, 120.0),
        log_level=_log_level(env),
    )


def load_agent_settings(environ: Mapping[str, str]) -> AgentSettings:
    env = _Env(environ)
    site = _site(env)
    secret_file = env.readable_file("HFO_HMAC_SECRET_FILE", "the shared HMAC keyring, docs/protocol.md format")
    assert secret_file is not None
    heartbeat_url = env.url("HFO_HEARTBEAT_URL", ("https",))
    assert heartbeat_url is not None
    interval = env.number("HFO_HEARTBEAT_INTERVAL_S", 10.0, 0.05, 300.0)
    timeout = env.number("HFO_HEARTBEAT_TIMEOUT_S", min(5.0, interval), 0.01, 60.0)
    if timeout > interval:
        raise ConfigError(
            "HFO_HEARTBEAT_TIMEOUT_S", f"must not exceed HFO_HEARTBEAT_INTERVAL_S ({interval:g}) (got {timeout:g})"
        )
    backend = _backend(env)
    status_url = env.url("HFO_AGENT_STATUS_URL", ("http", "https"), default="http://127.0.0.1:8081/agent-status")
    assert status_url is not None
    backoff = env.number("HFO_EXEC_RESTART_BACKOFF_S", 1.0, 0.01, 600.0)
    backoff_max = env.number("HFO_EXEC_RESTART_BACKOFF_MAX_S", max(60.0, backoff), 0.01, 3600.0)
    if backoff_max < backoff:
        raise ConfigError(
            "HFO_EXEC_RESTART_BACKOFF_MAX_S",
            f"must be at least HFO_EXEC_RESTART_BACKOFF_S ({backoff:g}) (got {backoff_max:g})",
        )
    # The lease endpoint (docs/protocol.md#lease-endpoint): for the exec backend, the child is on
    # this host, so loopback and an ephemeral port; for Kubernetes, the bot pods reach it through
    # the hfo-site-lease Service, so every address and a fixed port.
    exec_backend = backend.kind == "exec"
    metrics_port = env.port("HFO_AGENT_METRICS_PORT", 9101)
    lease_bind = env.raw("HFO_AGENT_LEASE_BIND") or ("127.0.0.1" if exec_backend else "0.0.0.0")  # noqa: S104
    lease_port = env.integer("HFO_AGENT_LEASE_PORT", 0 if exec_backend else 9102, 0, 65535)
    if lease_port == metrics_port:
        raise ConfigError("HFO_AGENT_LEASE_PORT", f"must differ from HFO_AGENT_METRICS_PORT ({metrics_port})")
    state_token_file = None
    if env.boolean("HFO_STATE_ENABLED", False):
        state_token_file = env.readable_file(
            "HFO_STATE_TOKEN_FILE", "the bearer token the state containers present (required with HFO_STATE_ENABLED)"
        )
    return AgentSettings(
        site=site,
        secret_file=secret_file,
        heartbeat_url=heartbeat_url,
        heartbeat_interval_s=interval,
        heartbeat_timeout_s=timeout,
        heartbeat_retries=env.integer("HFO_HEARTBEAT_RETRIES", 2, 0, 10),
        backend=backend,
        stop_grace_s=env.number("HFO_STOP_GRACE_S", 30.0, 0.0, 600.0),
        status_url=status_url,
        ca_bundle=env.readable_file("HFO_CA_BUNDLE", "a PEM CA bundle", required=False),
        bind=env.raw("HFO_AGENT_BIND") or "0.0.0.0",  # noqa: S104 - metrics and probes for the kubelet
        metrics_port=metrics_port,
        lease_bind=lease_bind,
        lease_port=lease_port,
        restart_backoff_s=backoff,
        restart_backoff_max_s=backoff_max,
        fence_on_exit=env.boolean("HFO_FENCE_ON_EXIT", True),
        log_level=_log_level(env),
        state_token_file=state_token_file,
        shards=load_shard_settings(env, backend),
    )


DISCORD_API_URL = "https://discord.com/api/v10"
SHARDS_CONFIGMAP = "hfo-bot-shards"
MAX_SHARD_REPLICAS = 1000  # hfo_site.backends.kubernetes.MAX_DESIRED
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def load_shard_settings(env: _Env, backend: BackendSettings) -> ShardSettings | None:
    """HFO_SHARDS_*: opt-in; every value checked against the others and the backend."""
    if not env.boolean("HFO_SHARDS_ENABLED", False):
        return None
    if backend.kind != "kubernetes":
        raise ConfigError("HFO_SHARDS_ENABLED", "needs HFO_BACKEND=kubernetes (the agent scales a StatefulSet)")
    statefulsets = [ref for ref in backend.workloads if ref.kind == "statefulset"]
    name = env.raw("HFO_SHARDS_WORKLOAD")
    if name is None:
        if len(statefulsets) != 1:
            raise ConfigError(
                "HFO_SHARDS_WORKLOAD",
                f"is required when HFO_K8S_WORKLOADS lists {len(statefulsets)} StatefulSets (name the sharded one)",
            )
        workload = statefulsets[0]
    else:
        workload = WorkloadRef("statefulset", name.removeprefix("statefulset/"))
        if workload not in statefulsets:
            raise ConfigError(
                "HFO_SHARDS_WORKLOAD", f"{name!r} is not a StatefulSet listed in HFO_K8S_WORKLOADS (pods need ordinals)"
            )
    configmap = env.raw("HFO_SHARDS_CONFIGMAP") or SHARDS_CONFIGMAP
    if not _DNS_SUBDOMAIN.match(configmap):
        raise ConfigError("HFO_SHARDS_CONFIGMAP", f"{configmap!r} is not a valid Kubernetes object name")
    per_pod = env.integer("HFO_SHARDS_PER_POD", 1, 1, 65535)
    low = env.integer("HFO_SHARDS_MIN_REPLICAS", 1, 1, MAX_SHARD_REPLICAS)
    high = env.integer("HFO_SHARDS_MAX_REPLICAS", 16, 1, MAX_SHARD_REPLICAS)
    if high < low:
        raise ConfigError("HFO_SHARDS_MAX_REPLICAS", f"must be at least HFO_SHARDS_MIN_REPLICAS ({low}) (got {high})")
    if (low - 1) * per_pod + 1 > 65535:
        raise ConfigError(
            "HFO_SHARDS_MIN_REPLICAS", f"{low} pods of {per_pod} shards need more than 65535 shards (Discord's bound)"
        )
    refresh = env.number("HFO_SHARDS_REFRESH_S", 900.0, 1.0, 86400.0)
    timeout = env.number("HFO_DISCORD_TIMEOUT_S", 10.0, 0.1, 60.0)
    if timeout > refresh:
        raise ConfigError(
            "HFO_DISCORD_TIMEOUT_S", f"must not exceed HFO_SHARDS_REFRESH_S ({refresh:g}) (got {timeout:g})"
        )
    token_file = env.readable_file("HFO_DISCORD_TOKEN_FILE", "the Discord bot token, for GET /gateway/bot")
    assert token_file is not None
    api_url = env.url("HFO_DISCORD_API_URL", ("https", "http"), default=DISCORD_API_URL)
    assert api_url is not None
    parts = urlsplit(api_url)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ConfigError(
            "HFO_DISCORD_API_URL",
            "must be https:// (the bot token is sent with every request); http:// only to a loopback test server",
        )
    if parts.query or parts.fragment:
        raise ConfigError("HFO_DISCORD_API_URL", f"must be a base URL without query or fragment (got {api_url!r})")
    return ShardSettings(
        workload=workload,
        configmap=configmap,
        per_pod=per_pod,
        min_replicas=low,
        max_replicas=high,
        grow_after_s=env.number("HFO_SHARDS_GROW_AFTER_S", 0.0, 0.0, 7 * 86400.0),
        shrink_after_s=env.number("HFO_SHARDS_SHRINK_AFTER_S", 6 * 3600.0, 0.0, 30 * 86400.0),
        refresh_s=refresh,
        token_file=token_file,
        api_url=api_url,
        timeout_s=timeout,
    )
