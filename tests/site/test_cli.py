"""The ``hfo-site`` console script: subcommands and configuration errors at start."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testsupport.net import free_port

HFO_SITE = shutil.which("hfo-site") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hfo-site")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HFO_")}
    return subprocess.run([HFO_SITE, *args], env={**clean, **env}, capture_output=True, text=True, timeout=30)


def test_help_lists_both_commands() -> None:
    result = _run(["--help"], {})
    assert result.returncode == 0
    assert "health" in result.stdout and "agent" in result.stdout


@pytest.mark.parametrize("command", ["health", "agent"])
def test_missing_configuration_exits_2_naming_the_variable(command: str) -> None:
    result = _run([command], {})
    assert result.returncode == 2
    assert f"hfo-site {command}: configuration error: HFO_SITE: is required" in result.stderr


def test_a_bad_secret_file_is_a_configuration_error_without_the_secret(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("tooshort-but-secret")
    (tmp_path / "token").write_text("t" * 20)
    env = {
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(tmp_path / "secret"),
        "HFO_DETAILS_TOKEN_FILE": str(tmp_path / "token"),
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": "bot",
    }
    result = _run(["health"], env)
    assert result.returncode == 2
    assert "configuration error: HFO_HMAC_SECRET_FILE: " in result.stderr
    assert "at least 32 are required" in result.stderr
    assert "tooshort-but-secret" not in result.stderr + result.stdout


def test_a_mistyped_exec_workload_command_stops_the_agent_naming_the_variable(tmp_path: Path) -> None:
    """Several exec workloads (HFO_EXEC_WORKLOADS): a command variable that names no listed workload (BOTB for
    bot-b, which would leave bot-b without its command) is refused at start, before anything runs."""
    (tmp_path / "secret").write_text("s" * 40)
    env = {
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(tmp_path / "secret"),
        "HFO_HEARTBEAT_URL": "https://abc.lambda-url.eu-west-1.on.aws/",
        "HFO_BACKEND": "exec",
        "HFO_EXEC_WORKLOADS": "bot-a,bot-b",
        "HFO_EXEC_COMMAND_BOT_A": "sleep 60",
        "HFO_EXEC_COMMAND_BOTB": "sleep 60",
    }
    result = _run(["agent"], env)
    assert result.returncode == 2
    assert (
        "hfo-site agent: configuration error: HFO_EXEC_COMMAND_BOTB: names no workload of HFO_EXEC_WORKLOADS "
        "(bot-a, bot-b)" in result.stderr
    )


def test_unknown_command_is_a_usage_error() -> None:
    result = _run(["dance"], {})
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_a_taken_port_is_a_clear_start_error(tmp_path: Path) -> None:
    import socket

    (tmp_path / "secret").write_text("x" * 40)
    (tmp_path / "token").write_text("t" * 20)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            "HFO_SITE": "primary",
            "HFO_HMAC_SECRET_FILE": str(tmp_path / "secret"),
            "HFO_DETAILS_TOKEN_FILE": str(tmp_path / "token"),
            "HFO_BACKEND": "exec",
            "HFO_HEALTH_BIND": "127.0.0.1",
            "HFO_HEALTH_PORT": str(taken.getsockname()[1]),
            "HFO_STATUS_PORT": str(free_port()),
            "HFO_METRICS_PORT": str(free_port()),
        }
        result = _run(["health"], env)
    assert result.returncode == 1
    assert "hfo-site health: cannot start:" in result.stderr
