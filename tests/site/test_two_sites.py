"""Two sites, one bot: two real agents (exec backend) and a watchdog that moves the lease through a
failover and a handback exactly as docs/protocol.md allows. The two workloads must never run at
the same time; a sampler checks the live processes every few milliseconds throughout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from testsupport.net import free_port, wait_until
from testsupport.site_helpers import SiteProcess, pid_alive, runs, workload_command, write_workload
from testsupport.site_watchdog import StandInWatchdog

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.network]

TTL = 1
GRACE = 0.5
INTERVAL = 0.2
MARGIN = 0.3  # the watchdog's margin in lease_ttl + stop_grace + margin < down window


class Sampler(threading.Thread):
    """Polls which workload processes are alive; records every sample where both were."""

    def __init__(self, outputs: dict[str, Path]) -> None:
        super().__init__(daemon=True)
        self.outputs = outputs
        self.stop = threading.Event()
        self.samples = 0
        self.overlaps: list[tuple[float, dict[str, list[int]]]] = []
        self.seen_running: set[str] = set()
        self.error: BaseException | None = None  # a crashed sampler must fail the test, not stop sampling

    def run(self) -> None:
        try:
            self._sample_until_stopped()
        except BaseException as exc:
            self.error = exc
            raise

    def _sample_until_stopped(self) -> None:
        while not self.stop.is_set():
            alive = {site: [r.pid for r in runs(out) if pid_alive(r.pid)] for site, out in self.outputs.items()}
            self.samples += 1
            for site, pids in alive.items():
                if pids:
                    self.seen_running.add(site)
            if sum(1 for pids in alive.values() if pids) > 1:
                self.overlaps.append((time.time(), alive))
            time.sleep(0.005)


def _agent(tmp: Path, site: str, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path) -> SiteProcess:
    out = tmp / f"{site}.runs"
    env = {
        "HFO_SITE": site,
        "HFO_HMAC_SECRET_FILE": str(secret_file),
        "HFO_HEARTBEAT_URL": watchdog.url,
        "HFO_HEARTBEAT_INTERVAL_S": str(INTERVAL),
        "HFO_HEARTBEAT_TIMEOUT_S": str(INTERVAL),
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": workload_command(write_workload(tmp), out),
        "HFO_STOP_GRACE_S": str(GRACE),
        "HFO_CA_BUNDLE": str(ca_bundle),
        "HFO_AGENT_BIND": "127.0.0.1",
        "HFO_AGENT_METRICS_PORT": str(free_port()),
        "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{free_port()}/agent-status",
    }
    return SiteProcess("agent", env, tmp / f"agent-{site}.log").start()


def _reported(watchdog: StandInWatchdog, site: str, workload: str, min_epoch: int) -> bool:
    return any(
        r.heartbeat.workload == workload and r.heartbeat.epoch_seen >= min_epoch for r in watchdog.accepted(site)
    )


def test_failover_and_handback_never_run_two_bots(
    tmp_path: Path, watchdog: StandInWatchdog, secret_file: Path, ca_bundle: Path
) -> None:
    watchdog.update(ttl_s=TTL, heartbeat_interval_s=1, lease_site="primary", epoch=1)
    outputs = {"primary": tmp_path / "primary.runs", "standby": tmp_path / "standby.runs"}
    sampler = Sampler(outputs)
    sampler.start()
    primary = _agent(tmp_path, "primary", watchdog, secret_file, ca_bundle)
    standby = _agent(tmp_path, "standby", watchdog, secret_file, ca_bundle)
    try:
        # 1. home: the primary runs the bot, the standby is ready and idle.
        wait_until(lambda: _reported(watchdog, "primary", "running", 1), timeout=8, what="primary running")
        wait_until(lambda: _reported(watchdog, "standby", "stopped", 1), timeout=8, what="standby idle")

        # 2. failover: the primary is cut off from the watchdog. The watchdog may hand the lease to
        #    the standby only after lease_ttl + stop_grace + margin without a primary heartbeat.
        watchdog.update(silent_sites={"primary"})
        epoch = watchdog.set_lease("none")
        last_primary = watchdog.accepted("primary")[-1].received_at
        wait_until(lambda: time.time() > last_primary + TTL + GRACE + MARGIN, timeout=5, what="the down window to pass")
        epoch = watchdog.set_lease("standby")
        wait_until(lambda: _reported(watchdog, "standby", "running", epoch), timeout=5, what="standby running")

        # 3. the primary comes back: it learns the standby holds the lease and stays stopped.
        watchdog.update(silent_sites=set())
        wait_until(lambda: _reported(watchdog, "primary", "stopped", epoch), timeout=5, what="primary back, idle")

        # 4. handback: lease to none; the primary gets it only once the standby reports stopped.
        epoch = watchdog.set_lease("none")
        wait_until(lambda: _reported(watchdog, "standby", "stopped", epoch), timeout=5, what="standby stopped")
        epoch = watchdog.set_lease("primary")
        wait_until(lambda: _reported(watchdog, "primary", "running", epoch), timeout=5, what="primary running again")
        time.sleep(0.3)
    finally:
        primary.terminate()
        standby.terminate()
        sampler.stop.set()
        sampler.join(timeout=5)

    assert sampler.error is None, f"the sampler crashed: {sampler.error!r}"
    assert not sampler.is_alive()
    assert sampler.samples > 200
    assert sampler.seen_running == {"primary", "standby"}
    assert sampler.overlaps == [], sampler.overlaps[:3]
    primary_runs, standby_runs = runs(outputs["primary"]), runs(outputs["standby"])
    assert (len(primary_runs), len(standby_runs)) == (2, 1)
    # From the workloads' own timestamps: each life ended before the other site's began.
    assert primary_runs[0].end < standby_runs[0].start
    assert standby_runs[0].end < primary_runs[1].start
    assert primary_runs[0].terminated  # the cut-off primary fenced itself (SIGTERM from its own agent)
