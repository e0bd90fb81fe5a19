"""The drill's sites are configured as docs/site.md says: the real hfo_site configuration
loaders accept what the drill gives each process, and none of the drill's AWS settings leak in."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from hfo_drill.sites import INSTANCES, Site, SiteFiles, SiteTiming, site_command
from hfo_site.config import load_agent_settings, load_health_settings


@pytest.fixture
def files(tmp_path: Path) -> SiteFiles:
    keyring = tmp_path / "keyring"
    keyring.write_text("drill-sites-test-keyring-0123456789abcdef")
    token = tmp_path / "token"
    token.write_text("details-token-0123456789")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return SiteFiles(keyring, token, ca, tmp_path / "ledger", tmp_path)


def site(files: SiteFiles, name: str, with_health: bool) -> Site:
    timing = SiteTiming(heartbeat_interval_s=1, stop_grace_s=1)
    return Site(name, files, timing, "https://127.0.0.1:4443/", with_health=with_health, register=lambda c: None)


def test_the_primary_processes_accept_their_configuration(files: SiteFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    monkeypatch.setenv("HFO_TABLE_NAME", "must-not-leak")
    primary = site(files, "primary", with_health=True)
    health_env, agent_env = primary.health_env(), primary.agent_env()
    assert not [k for k in {**health_env, **agent_env} if k.startswith("AWS_") or k == "HFO_TABLE_NAME"]
    health = load_health_settings(health_env)
    agent = load_agent_settings(agent_env)
    assert health.port == primary.health_port and health.bind == "127.0.0.1"
    assert agent.heartbeat_url == "https://127.0.0.1:4443/"
    assert agent.status_url == f"http://127.0.0.1:{health.status_port}/agent-status"  # the agent reports to it
    assert agent.stop_grace_s == 1 and agent.heartbeat_interval_s == 1
    assert agent.ca_bundle == files.ca_bundle


def test_each_site_runs_the_same_named_bot_instances_on_the_shared_ledger(files: SiteFiles) -> None:
    standby = site(files, "standby", with_health=False)
    assert standby.health_port is None
    env = standby.agent_env()
    assert env["HFO_EXEC_WORKLOADS"] == "bot-a,bot-b" and "HFO_EXEC_COMMAND" not in env
    workloads = load_agent_settings(env).backend.exec_workloads
    assert [w.name for w in workloads] == list(INSTANCES) == list(site(files, "primary", True).instances)
    for w in workloads:
        assert w.argv == tuple(shlex.split(env[f"HFO_EXEC_COMMAND_{w.name.upper().replace('-', '_')}"]))
        assert list(w.argv[1:]) == [
            "-m",
            "hfo_drill.bot",
            "--site",
            "standby",
            "--ledger",
            str(files.ledger),
            "--period",
            "1",
            "--instance",
            w.name,
        ]


def test_a_site_without_named_instances_uses_the_single_command(files: SiteFiles) -> None:
    timing = SiteTiming(heartbeat_interval_s=1, stop_grace_s=1)
    one = Site(
        "primary", files, timing, "https://127.0.0.1:4443/", with_health=False, register=lambda c: None, instances=()
    )
    env = one.agent_env()
    assert "HFO_EXEC_WORKLOADS" not in env
    assert load_agent_settings(env).backend.command == tuple(shlex.split(env["HFO_EXEC_COMMAND"]))


def test_the_site_command_runs_hfo_site() -> None:
    command = site_command("agent")
    assert command[-1] == "agent"
    done = subprocess.run([*command[:-1], "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("hfo-site ")
