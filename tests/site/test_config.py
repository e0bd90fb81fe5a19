"""Settings from the environment (hfo_site.config): every bad value names its variable and range."""

from __future__ import annotations

from pathlib import Path

import pytest
from hfo_site.config import (
    ConfigError,
    WorkloadRef,
    exec_command_variable,
    load_agent_settings,
    load_health_settings,
    parse_workloads,
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secret").write_text("x" * 40)
    (tmp_path / "token").write_text("t" * 20)
    return {"HFO_HMAC_SECRET_FILE": str(tmp_path / "secret"), "HFO_DETAILS_TOKEN_FILE": str(tmp_path / "token")}


def _health(files: dict[str, str], **env: str) -> dict[str, str]:
    return {"HFO_SITE": "primary", "HFO_BACKEND": "exec", "HFO_EXEC_COMMAND": "bot", **files, **env}


def _agent(files: dict[str, str], **env: str) -> dict[str, str]:
    return {**_health(files), "HFO_HEARTBEAT_URL": "https://abc.lambda-url.eu-west-1.on.aws/", **env}


def test_defaults_match_the_documented_interface(files: dict[str, str]) -> None:
    health = load_health_settings(_health(files))
    assert (health.port, health.status_port, health.metrics_port) == (8080, 8081, 9100)
    assert (health.check_interval_s, health.heartbeat_interval_s, health.heartbeat_stale_s) == (5.0, 10.0, 30.0)
    assert health.client_ip_header is None
    agent = load_agent_settings(_agent(files))
    assert (agent.metrics_port, agent.heartbeat_interval_s, agent.stop_grace_s) == (9101, 10.0, 30.0)
    assert agent.status_url == "http://127.0.0.1:8081/agent-status"
    assert agent.backend.command == ("bot",) and agent.fence_on_exit


def test_the_lease_endpoint_defaults_follow_the_backend(files: dict[str, str]) -> None:
    """exec: the child is on this host (loopback, a port the kernel picks); kubernetes: the bot
    pods reach it through the hfo-site-lease Service (every address, 9102)."""
    agent = load_agent_settings(_agent(files))
    assert (agent.lease_bind, agent.lease_port) == ("127.0.0.1", 0)
    k8s = load_agent_settings(
        _agent(files, HFO_BACKEND="kubernetes", HFO_K8S_NAMESPACE="hfo", HFO_K8S_WORKLOADS="statefulset/bot")
    )
    assert (k8s.lease_bind, k8s.lease_port) == ("0.0.0.0", 9102)  # noqa: S104 - behind the Service
    chosen = load_agent_settings(_agent(files, HFO_AGENT_LEASE_BIND="127.0.0.2", HFO_AGENT_LEASE_PORT="7000"))
    assert (chosen.lease_bind, chosen.lease_port) == ("127.0.0.2", 7000)


def test_kubernetes_backend_settings(files: dict[str, str]) -> None:
    env = _agent(
        files,
        HFO_BACKEND="kubernetes",
        HFO_K8S_NAMESPACE="hfo",
        HFO_K8S_WORKLOADS="deployment/bot, statefulset/bot-shards",
    )
    backend = load_agent_settings(env).backend
    assert backend.namespace == "hfo"
    assert backend.workloads == (WorkloadRef("deployment", "bot"), WorkloadRef("statefulset", "bot-shards"))


@pytest.mark.parametrize(
    ("change", "variable", "fragment"),
    [
        ({"HFO_SITE": "laptop"}, "HFO_SITE", "one of primary, standby"),
        ({"HFO_SITE": ""}, "HFO_SITE", "required"),
        ({"HFO_BACKEND": "docker"}, "HFO_BACKEND", "one of kubernetes, exec"),
        ({"HFO_EXEC_COMMAND": ""}, "HFO_EXEC_COMMAND", "required"),
        ({"HFO_EXEC_COMMAND": "bot 'unclosed"}, "HFO_EXEC_COMMAND", "cannot be split"),
        ({"HFO_HEARTBEAT_URL": "http://watchdog.example/"}, "HFO_HEARTBEAT_URL", "https:// URL"),
        ({"HFO_HEARTBEAT_URL": "https://user:pw@watchdog.example/"}, "HFO_HEARTBEAT_URL", "credentials"),
        ({"HFO_HEARTBEAT_INTERVAL_S": "0"}, "HFO_HEARTBEAT_INTERVAL_S", "between 0.05 and 300"),
        ({"HFO_HEARTBEAT_INTERVAL_S": "ten"}, "HFO_HEARTBEAT_INTERVAL_S", "must be a number"),
        ({"HFO_HEARTBEAT_INTERVAL_S": "nan"}, "HFO_HEARTBEAT_INTERVAL_S", "between"),
        ({"HFO_HEARTBEAT_TIMEOUT_S": "20"}, "HFO_HEARTBEAT_TIMEOUT_S", "must not exceed HFO_HEARTBEAT_INTERVAL_S"),
        ({"HFO_STOP_GRACE_S": "-1"}, "HFO_STOP_GRACE_S", "between 0 and 600"),
        ({"HFO_HEARTBEAT_RETRIES": "1.5"}, "HFO_HEARTBEAT_RETRIES", "integer between 0 and 10"),
        ({"HFO_AGENT_METRICS_PORT": "70000"}, "HFO_AGENT_METRICS_PORT", "between 1 and 65535"),
        ({"HFO_FENCE_ON_EXIT": "maybe"}, "HFO_FENCE_ON_EXIT", "true or false"),
        ({"HFO_AGENT_LEASE_PORT": "-1"}, "HFO_AGENT_LEASE_PORT", "between 0 and 65535"),
        ({"HFO_AGENT_LEASE_PORT": "9101"}, "HFO_AGENT_LEASE_PORT", "must differ from HFO_AGENT_METRICS_PORT"),
        ({"HFO_HMAC_SECRET_FILE": "/nonexistent/secret"}, "HFO_HMAC_SECRET_FILE", "not a readable file"),
        ({"HFO_CA_BUNDLE": "/nonexistent/ca.pem"}, "HFO_CA_BUNDLE", "not a readable file"),
        ({"HFO_BACKEND": "kubernetes"}, "HFO_K8S_NAMESPACE", "required"),
        ({"HFO_BACKEND": "kubernetes", "HFO_K8S_NAMESPACE": "Bad_NS"}, "HFO_K8S_NAMESPACE", "not a valid namespace"),
        (
            {"HFO_EXEC_RESTART_BACKOFF_S": "10", "HFO_EXEC_RESTART_BACKOFF_MAX_S": "5"},
            "HFO_EXEC_RESTART_BACKOFF_MAX_S",
            "at least",
        ),
    ],
)
def test_agent_refuses_bad_values_naming_the_variable(
    files: dict[str, str], change: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_agent_settings(_agent(files, **change))
    assert info.value.variable == variable
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"{variable}: ")


@pytest.mark.parametrize(
    ("change", "variable", "fragment"),
    [
        ({"HFO_DETAILS_TOKEN_FILE": ""}, "HFO_DETAILS_TOKEN_FILE", "required"),
        ({"HFO_WORKLOAD_READY_URL": "ftp://bot/readyz"}, "HFO_WORKLOAD_READY_URL", "http or https"),
        ({"HFO_CHECK_INTERVAL_S": "0.01"}, "HFO_CHECK_INTERVAL_S", "between 0.05 and 300"),
        ({"HFO_CHECK_TIMEOUT_S": "9"}, "HFO_CHECK_TIMEOUT_S", "must not exceed HFO_CHECK_INTERVAL_S"),
        ({"HFO_HEARTBEAT_STALE_S": "5"}, "HFO_HEARTBEAT_STALE_S", "longer than HFO_HEARTBEAT_INTERVAL_S"),
        ({"HFO_RATE_LIMIT_RPS": "0"}, "HFO_RATE_LIMIT_RPS", "between 0.01 and"),
        ({"HFO_RATE_LIMIT_BURST": "0"}, "HFO_RATE_LIMIT_BURST", "between 1 and"),
        ({"HFO_CLIENT_IP_HEADER": "X Forwarded"}, "HFO_CLIENT_IP_HEADER", "not an HTTP header name"),
        ({"HFO_TRUSTED_PROXIES": "100.64.0.0/10,nonsense"}, "HFO_TRUSTED_PROXIES", "'nonsense' is not an IP network"),
        ({"HFO_METRICS_PORT": "8080"}, "HFO_HEALTH_PORT", "must differ"),
        ({"HFO_LOG_LEVEL": "LOUD"}, "HFO_LOG_LEVEL", "one of DEBUG"),
    ],
)
def test_health_refuses_bad_values_naming_the_variable(
    files: dict[str, str], change: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_health_settings(_health(files, **change))
    assert info.value.variable == variable
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("bot", "must be <kind>/<name>"),
        ("daemonset/bot", "must be <kind>/<name>"),
        ("deployment/Bot_1", "not a valid Kubernetes object name"),
        ("deployment/bot,deployment/bot", "listed twice"),
        (" , ", "lists no workload"),
        (",".join(f"deployment/b{i}" for i in range(17)), "at most 16"),
    ],
)
def test_workload_list_errors(value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_workloads(value)
    assert info.value.variable == "HFO_K8S_WORKLOADS"


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    from hfo_site.secrets import SecretError, parse_keyring, parse_token

    (tmp_path / "short").write_text("hunter2-is-short")
    with pytest.raises(SecretError) as info:
        parse_keyring(tmp_path / "short")
    assert "hunter2" not in str(info.value) and "at least 32 are required" in str(info.value)
    (tmp_path / "token").write_text("tiny")
    with pytest.raises(SecretError) as info:
        parse_token(tmp_path / "token")
    assert "tiny" not in str(info.value) and "at least 16 characters" in str(info.value)


def _named(files: dict[str, str], **env: str) -> dict[str, str]:
    """The exec backend's named form: HFO_EXEC_WORKLOADS and one HFO_EXEC_COMMAND_<NAME> per name."""
    base = {k: v for k, v in _agent(files).items() if k != "HFO_EXEC_COMMAND"}
    return {**base, **env}


def test_exec_named_workloads_keep_their_order_and_quoting(files: dict[str, str]) -> None:
    env = _named(
        files,
        HFO_EXEC_WORKLOADS="bot-a, bot-b,2nd",
        HFO_EXEC_COMMAND_BOT_A="python -m mybot --config '/etc/bots/a b.yaml'",
        HFO_EXEC_COMMAND_BOT_B="python -m mybot --config /etc/bots/b.yaml",
        HFO_EXEC_COMMAND_2ND="/usr/local/bin/other",
    )
    backend = load_agent_settings(env).backend
    assert [(w.name, w.argv) for w in backend.exec_workloads] == [
        ("bot-a", ("python", "-m", "mybot", "--config", "/etc/bots/a b.yaml")),
        ("bot-b", ("python", "-m", "mybot", "--config", "/etc/bots/b.yaml")),
        ("2nd", ("/usr/local/bin/other",)),
    ]
    assert backend.command == ()  # the single-command form is not in use
    assert exec_command_variable("bot-a") == "HFO_EXEC_COMMAND_BOT_A"


def test_exec_single_command_is_one_workload_named_bot(files: dict[str, str]) -> None:
    backend = load_agent_settings(_agent(files, HFO_EXEC_COMMAND="python -m mybot")).backend
    assert backend.command == ("python", "-m", "mybot")
    assert [(w.name, w.argv) for w in backend.exec_workloads] == [("bot", ("python", "-m", "mybot"))]


@pytest.mark.parametrize(
    ("change", "variable", "fragment"),
    [
        ({"HFO_EXEC_WORKLOADS": "bot-a", "HFO_EXEC_COMMAND": "bot"}, "HFO_EXEC_COMMAND", "not both"),
        ({"HFO_EXEC_WORKLOADS": "bot-a"}, "HFO_EXEC_COMMAND_BOT_A", "the command of workload 'bot-a'"),
        ({"HFO_EXEC_WORKLOADS": "Bot_A", "HFO_EXEC_COMMAND_BOT_A": "x"}, "HFO_EXEC_WORKLOADS", "DNS label"),
        ({"HFO_EXEC_WORKLOADS": "a,a", "HFO_EXEC_COMMAND_A": "x"}, "HFO_EXEC_WORKLOADS", "listed twice"),
        ({"HFO_EXEC_WORKLOADS": " , "}, "HFO_EXEC_WORKLOADS", "lists no workload"),
        (
            {
                "HFO_EXEC_WORKLOADS": ",".join(f"b{i}" for i in range(17)),
                **{f"HFO_EXEC_COMMAND_B{i}": "x" for i in range(17)},
            },
            "HFO_EXEC_WORKLOADS",
            "at most 16",
        ),
        (
            {"HFO_EXEC_WORKLOADS": "bot-a", "HFO_EXEC_COMMAND_BOT_A": "x", "HFO_EXEC_COMMAND_BOT_AA": "y"},
            "HFO_EXEC_COMMAND_BOT_AA",
            "names no workload of HFO_EXEC_WORKLOADS (bot-a)",
        ),
        (
            {"HFO_EXEC_WORKLOADS": "bot-a", "HFO_EXEC_COMMAND_BOT_A": "x 'open"},
            "HFO_EXEC_COMMAND_BOT_A",
            "cannot be split",
        ),
        ({"HFO_EXEC_COMMAND_BOT_A": "x"}, "HFO_EXEC_COMMAND_BOT_A", "HFO_EXEC_WORKLOADS is not"),
        ({}, "HFO_EXEC_COMMAND", "or HFO_EXEC_WORKLOADS"),
    ],
)
def test_exec_named_workload_errors(
    files: dict[str, str], change: dict[str, str], variable: str, fragment: str
) -> None:
    env = _named(files, **change)
    with pytest.raises(ConfigError) as info:
        load_agent_settings(env)
    assert info.value.variable == variable
    assert fragment in str(info.value)


def test_exec_state_directories_per_workload(files: dict[str, str], tmp_path: Path) -> None:
    """HFO_EXEC_STATE_DIR (single form) or HFO_EXEC_STATE_DIR_<NAME>: the directory the agent
    restores before the command starts and syncs while it runs (docs/site.md#exec-state)."""
    (tmp_path / "state").mkdir()
    env = _named(
        files,
        HFO_STATE_ENABLED="true",
        HFO_STATE_TOKEN_FILE=files["HFO_DETAILS_TOKEN_FILE"],
        HFO_EXEC_WORKLOADS="bot-a,bot-b",
        HFO_EXEC_COMMAND_BOT_A="bot a",
        HFO_EXEC_COMMAND_BOT_B="bot b",
        HFO_EXEC_STATE_DIR_BOT_A=str(tmp_path / "state" / "a"),
        HFO_EXEC_STATE_SYNC_INTERVAL_S="2.5",
    )
    backend = load_agent_settings(env).backend
    assert [(w.name, w.state_dir) for w in backend.exec_workloads] == [
        ("bot-a", tmp_path / "state" / "a"),
        ("bot-b", None),  # no state: started and stopped as before
    ]
    assert backend.state_sync_interval_s == 2.5
    single = load_agent_settings(
        _agent(
            files,
            HFO_STATE_ENABLED="true",
            HFO_STATE_TOKEN_FILE=files["HFO_DETAILS_TOKEN_FILE"],
            HFO_EXEC_STATE_DIR=str(tmp_path / "state" / "bot"),
        )
    ).backend
    assert single.exec_workloads[0].state_dir == tmp_path / "state" / "bot"
    assert single.state_sync_interval_s == 30.0


@pytest.mark.parametrize(
    ("change", "variable", "fragment"),
    [
        ({"HFO_EXEC_STATE_DIR_BOT_A": "state/a"}, "HFO_EXEC_STATE_DIR_BOT_A", "absolute path"),
        ({"HFO_EXEC_STATE_DIR_BOT_A": "{tmp}/state/../a"}, "HFO_EXEC_STATE_DIR_BOT_A", "without '..'"),
        ({"HFO_EXEC_STATE_DIR_BOT_A": "{tmp}/missing/a"}, "HFO_EXEC_STATE_DIR_BOT_A", "not an existing directory"),
        ({"HFO_EXEC_STATE_DIR_BOT_A": "{tmp}/state/file"}, "HFO_EXEC_STATE_DIR_BOT_A", "is not a directory"),
        ({"HFO_EXEC_STATE_DIR_BOT_A": "/"}, "HFO_EXEC_STATE_DIR_BOT_A", "root directory"),
        ({"HFO_EXEC_STATE_DIR_BOT_C": "{tmp}/state/c"}, "HFO_EXEC_STATE_DIR_BOT_C", "names no workload"),
        ({"HFO_EXEC_STATE_DIR": "{tmp}/state/c"}, "HFO_EXEC_STATE_DIR", "names no workload"),
        (
            {"HFO_EXEC_STATE_DIR_BOT_A": "{tmp}/state/a", "HFO_EXEC_STATE_DIR_BOT_B": "{tmp}/state/a"},
            "HFO_EXEC_STATE_DIR_BOT_B",
            "overlaps the state directory of workload 'bot-a'",
        ),
        (
            {"HFO_EXEC_STATE_DIR_BOT_A": "{tmp}/state/a", "HFO_STATE_ENABLED": "false"},
            "HFO_EXEC_STATE_DIR_BOT_A",
            "needs HFO_STATE_ENABLED=true",
        ),
        ({"HFO_EXEC_STATE_SYNC_INTERVAL_S": "0"}, "HFO_EXEC_STATE_SYNC_INTERVAL_S", ""),
    ],
)
def test_exec_state_directory_errors(
    files: dict[str, str], tmp_path: Path, change: dict[str, str], variable: str, fragment: str
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "file").write_text("x")
    base = {
        "HFO_STATE_ENABLED": "true",
        "HFO_STATE_TOKEN_FILE": files["HFO_DETAILS_TOKEN_FILE"],
        "HFO_EXEC_WORKLOADS": "bot-a,bot-b",
        "HFO_EXEC_COMMAND_BOT_A": "bot a",
        "HFO_EXEC_COMMAND_BOT_B": "bot b",
    }
    env = _named(files, **{**base, **{k: v.replace("{tmp}", str(tmp_path)) for k, v in change.items()}})
    with pytest.raises(ConfigError) as info:
        load_agent_settings(env)
    assert info.value.variable == variable
    assert fragment in str(info.value)
