"""The drill's two sites, as real processes: `hfo-site health` and `hfo-site agent` (exec
backend) from healthcheck/, configured as docs/site.md says, each running the same bot instances
(`INSTANCES`: two stand-in bots, `hfo_drill.bot --instance <name>`) as named exec workloads
(`HFO_EXEC_WORKLOADS`), on one shared ledger.

- the primary (the laptop): health service + agent. `kill()` is the laptop dying: SIGKILL to
  the process groups of all of them at once, the bot's included. `start()` again is the laptop
  coming back: the same ports, fresh processes that remember nothing.
- the standby (the EC2 instance): agent only (the watchdog probes the primary alone). The drill
  starts it when the instance is `running` in moto and shuts it down (SIGTERM, as an OS
  shutdown does, SIGKILL after a grace) when the instance is stopping or stopped.

Processes get a clean environment: no AWS credentials or watchdog settings of the drill leak in.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hfo_site.config import exec_command_variable, exec_state_dir_variable

from hfo_drill.net import answers_ok, free_port
from hfo_drill.proc import Child, kill_together, spawn

_PRIVATE_PREFIXES = ("AWS_", "HFO_", "POWERTOOLS_", "TF_", "MOTO_")
INSTANCES = ("bot-a", "bot-b")  # the bot instances both sites run (docs/demo.md)


def site_command(command: str) -> list[str]:
    """`hfo-site <command>`: the console script next to this interpreter (as `make venv`
    installs it), else the same entry point through `python -m`."""
    script = Path(sys.executable).with_name("hfo-site")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), command]
    return [sys.executable, "-m", "hfo_site.cli", command]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}


@dataclass(frozen=True)
class SiteFiles:
    keyring: Path  # the shared HMAC keyring (a Secret volume in Kubernetes)
    details_token: Path
    ca_bundle: Path  # the throwaway CA the heartbeat URL's certificate comes from
    ledger: Path
    logs: Path  # directory
    state_token: Path | None = None  # the state containers' bearer token: state handoff on (docs/demo.md)


@dataclass(frozen=True)
class SiteTiming:
    heartbeat_interval_s: float
    stop_grace_s: float
    bot_period_s: float = 1.0
    check_interval_s: float = 0.5  # health: background check period (5 s in production)
    state_sync_s: float = 2.0  # the state sync's interval (30 s in production): the crash RPO's bound


class Site:
    def __init__(
        self,
        name: str,
        files: SiteFiles,
        timing: SiteTiming,
        heartbeat_url: str,
        *,
        with_health: bool,
        register: Callable[[Child], None],
        health_port: int | None = None,
        instances: tuple[str, ...] = INSTANCES,
    ) -> None:
        self.name = name
        self.instances = instances
        self.files = files
        self.timing = timing
        self.heartbeat_url = heartbeat_url
        self.with_health = with_health
        self._register = register
        self.health_port = (health_port or free_port()) if with_health else None
        self.status_port = free_port()
        self.metrics_port = free_port() if with_health else None
        self.agent_port = free_port()
        self.health: Child | None = None
        self.agent: Child | None = None
        self.starts = 0

    # -- configuration (docs/site.md#configuration)

    def bot_command(self, instance: str = "") -> str:
        argv = [
            sys.executable,
            "-m",
            "hfo_drill.bot",
            "--site",
            self.name,
            "--ledger",
            str(self.files.ledger),
            "--period",
            f"{self.timing.bot_period_s:g}",
        ]
        return shlex.join([*argv, "--instance", instance] if instance else argv)

    def workload_env(self) -> dict[str, str]:
        """The exec backend's workloads: one named command per instance (docs/site.md#exec), or the
        single-command form when the site runs no named instance."""
        if not self.instances:
            return {"HFO_EXEC_COMMAND": self.bot_command()}
        return {
            "HFO_EXEC_WORKLOADS": ",".join(self.instances),
            **{exec_command_variable(name): self.bot_command(name) for name in self.instances},
        }

    def state_dir(self, instance: str) -> Path:
        """Where this site keeps an instance's state (the bot's counter): the site's own disk."""
        return self.files.logs.parent / f"{self.name}-state" / instance

    def state_env(self) -> dict[str, str]:
        """With a state token: every instance keeps a state directory (docs/site.md#exec-state)."""
        if self.files.state_token is None or not self.instances:
            return {}
        (self.files.logs.parent / f"{self.name}-state").mkdir(exist_ok=True)
        return {
            "HFO_STATE_ENABLED": "true",
            "HFO_STATE_TOKEN_FILE": str(self.files.state_token),
            "HFO_EXEC_STATE_SYNC_INTERVAL_S": f"{self.timing.state_sync_s:g}",
            **{exec_state_dir_variable(name): str(self.state_dir(name)) for name in self.instances},
        }

    def _common(self) -> dict[str, str]:
        return {
            **clean_env(),
            "HFO_SITE": self.name,
            "HFO_HMAC_SECRET_FILE": str(self.files.keyring),
            "HFO_BACKEND": "exec",
            **self.workload_env(),
            "HFO_HEARTBEAT_INTERVAL_S": f"{self.timing.heartbeat_interval_s:g}",
            "HFO_LOG_LEVEL": "INFO",
        }

    def health_env(self) -> dict[str, str]:
        assert self.health_port is not None and self.metrics_port is not None
        return {
            **self._common(),
            "HFO_DETAILS_TOKEN_FILE": str(self.files.details_token),
            "HFO_CHECK_INTERVAL_S": f"{self.timing.check_interval_s:g}",
            "HFO_HEALTH_BIND": "127.0.0.1",
            "HFO_HEALTH_PORT": str(self.health_port),
            "HFO_STATUS_PORT": str(self.status_port),
            "HFO_METRICS_PORT": str(self.metrics_port),
            "HFO_SHUTDOWN_GRACE_S": "1",
        }

    def agent_env(self) -> dict[str, str]:
        return {
            **self._common(),
            "HFO_HEARTBEAT_URL": self.heartbeat_url,
            "HFO_CA_BUNDLE": str(self.files.ca_bundle),
            "HFO_STOP_GRACE_S": f"{self.timing.stop_grace_s:g}",
            # The standby has no health service here: its reports go nowhere (counted, logged
            # once a minute by the agent), which changes nothing about the lease.
            "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{self.status_port}/agent-status",
            "HFO_AGENT_BIND": "127.0.0.1",
            "HFO_AGENT_METRICS_PORT": str(self.agent_port),
            **self.state_env(),
        }

    # -- lifecycle

    @property
    def up(self) -> bool:
        return self.agent is not None and self.agent.running()

    def start(self) -> list[Child]:
        """Spawn the site's processes (health first, as the Pod's containers start together)."""
        self.starts += 1
        started: list[Child] = []
        log_dir = self.files.logs
        if self.with_health:
            self.health = spawn(
                f"{self.name} health", site_command("health"), self.health_env(), log_dir / f"{self.name}-health.log"
            )
            self._register(self.health)
            started.append(self.health)
        self.agent = spawn(
            f"{self.name} agent", site_command("agent"), self.agent_env(), log_dir / f"{self.name}-agent.log"
        )
        self._register(self.agent)
        started.append(self.agent)
        return started

    def wait_ready(self, timeout_s: float) -> None:
        """Both processes answer /livez (bounded); a process that exits or never answers is an
        error carrying the end of its log."""
        checks: list[tuple[Child | None, int | None]] = [(self.agent, self.agent_port)]
        if self.with_health:
            checks.insert(0, (self.health, self.health_port))
        deadline = time.monotonic() + timeout_s
        for child, port in checks:
            assert child is not None and port is not None
            while not answers_ok(f"http://127.0.0.1:{port}/livez"):
                if not child.running():
                    raise RuntimeError(f"{child.name} exited ({child.proc.returncode}):\n{child.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{child.name} did not answer /livez within {timeout_s:.0f}s:\n{child.log_tail()}"
                    )
                time.sleep(0.1)

    def kill(self) -> list[int]:
        """The machine dies: SIGKILL to every process of the site (health, agent, bot) at once."""
        return kill_together([c for c in (self.health, self.agent) if c is not None])

    def shutdown(self, grace_s: float) -> list[int]:
        """An orderly shutdown: SIGTERM (the agent stops its bot first), SIGKILL after grace."""
        pids: list[int] = []
        for child in (self.agent, self.health):
            if child is not None:
                pids += child.terminate(grace_s)
        return pids
