"""`python -m hfo_watchdog.demo` as a real child process: the story plays out and exits 0, and
Ctrl-C (SIGINT) at any point stops everything it started."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.system]
DEMO = [sys.executable, "-m", "hfo_watchdog.demo"]
MILESTONES = [
    "** milestone: healthy: the laptop holds the lease and serves",
    "== the laptop dies",
    "** milestone: failover: lease on the standby, instance running",
    "** milestone: on standby: the standby serves the bot",
    "== the laptop comes back",
    "** milestone: handback: lease home on the primary",
    "** milestone: standby instance stopped",
    "** milestone: the laptop serves the bot again",
    "DEMO PASSED",
]


def _env() -> dict[str, str]:
    # The demo brings its own AWS; nothing of the caller's AWS environment may leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HFO_", "POWERTOOLS_"))}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it is gone for every purpose here.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Running:
    """A child process whose stdout lines are collected by a thread (reads never block the test)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            DEMO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"{pattern!r} not printed within {timeout}s; output:\n{''.join(self.seen)}")

    def rest(self, timeout: float) -> str:
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.proc.stdout is None or self.proc.stdout.closed or self.lines.empty():
                    break
        return "".join(self.seen)


@pytest.fixture
def demo() -> Iterator[Running]:
    running = Running()
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait(timeout=10)


def test_the_demo_plays_the_whole_story_and_cleans_up(demo: Running) -> None:
    moto = demo.wait_for(r"moto server \(the AWS emulator\) pid (\d+) on http://127\.0\.0\.1:(\d+)", 90)
    health = demo.wait_for(r"health server https://127\.0\.0\.1:(\d+)/healthz", 60)
    output = demo.rest(timeout=240)
    assert demo.proc.returncode == 0, output
    positions = [output.find(m) for m in MILESTONES]
    assert all(p >= 0 for p in positions), output
    assert positions == sorted(positions), output
    assert "lease history primary#1 -> standby#2 -> none#3 -> primary#4" in output
    assert "alert delivered: HFO CRITICAL: suspect -> failing_over" in output
    assert "by heartbeat" in output and "by tick" in output  # the recorded history
    assert not _alive(int(moto.group(1)))
    assert not _port_open(int(moto.group(2))) and not _port_open(int(health.group(1)))


@pytest.mark.parametrize("when", ["during setup", "mid-story"])
def test_ctrl_c_stops_everything_the_demo_started(demo: Running, when: str) -> None:
    moto = demo.wait_for(r"moto server \(the AWS emulator\) pid (\d+) on http://127\.0\.0\.1:(\d+)", 90)
    health_port = None
    if when == "mid-story":
        health_port = int(demo.wait_for(r"health server https://127\.0\.0\.1:(\d+)/healthz", 60).group(1))
        demo.wait_for(r"\*\* milestone: healthy", 60)
        assert _port_open(health_port)
    assert _alive(int(moto.group(1)))
    demo.proc.send_signal(signal.SIGINT)
    output = demo.rest(timeout=60)
    assert demo.proc.returncode == 130, output
    assert "interrupted: everything the demo started has been stopped" in output
    assert "Traceback" not in output
    assert not _alive(int(moto.group(1)))
    assert not _port_open(int(moto.group(2)))
    if health_port is not None:
        assert not _port_open(health_port)
