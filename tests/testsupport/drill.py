"""`python -m hfo_drill` (the drill) as a real child process for tests: its output read by
a thread (reads never block the test), bounded waits for lines, and a view of every process it
started, so a test can check that all of them are gone afterwards."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from hfo_drill.proc import alive, descendants

DRILL = [sys.executable, "-m", "hfo_drill"]


def clean_env() -> dict[str, str]:
    """The drill brings its own AWS; nothing of the caller's AWS or watchdog settings leaks in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HFO_", "POWERTOOLS_", "TF_"))}


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class DrillProcess:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*DRILL, *args], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.started: set[int] = set()  # every descendant seen by `snapshot()`
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.snapshot()  # every process the drill has running whenever it prints
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

    def snapshot(self) -> list[int]:
        """The drill's live descendants now (its site processes, bots, moto, terraform...)."""
        pids = descendants(self.proc.pid)
        self.started.update(pids)
        return pids

    def rest(self, timeout: float) -> str:
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.lines.empty():
                    break
        return "".join(self.seen)

    def left_running(self) -> list[int]:
        """Processes the drill started (as seen by `snapshot()`) that still run."""
        deadline = time.monotonic() + 5  # reparented zombies take a moment to be reaped
        while time.monotonic() < deadline:
            left = [p for p in self.started if alive(p)]
            if not left:
                return []
            time.sleep(0.1)
        return [p for p in self.started if alive(p)]

    def work_dir(self) -> Path:
        found = re.search(r"work directory (\S+) \(removed at the end\)", "".join(self.seen))
        assert found, "the drill did not print its work directory"
        return Path(found.group(1))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
