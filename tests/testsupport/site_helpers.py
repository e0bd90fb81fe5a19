"""Helpers for tests/site: the real ``hfo-site`` CLI as child processes, a stand-in bot readiness
endpoint that counts its calls, and small HTTP clients. Everything on loopback, every wait bounded."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testsupport.net import free_port, wait_until

HFO_SITE = [sys.executable, "-m", "hfo_site.cli"]
SECRET = "s3cret-for-tests-only-0123456789abcdef"  # >= 32 bytes, the plain keyring form
TOKEN = "details-token-for-tests-0123456789"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(
    port: int,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def answers(port: int, path: str) -> bool:
    try:
        return request(port, path, timeout=1.0).status == 200
    except OSError:
        return False


class BotStub:
    """The bot's readiness endpoint: answers ``status`` on GET /readyz and counts the calls."""

    def __init__(self) -> None:
        self.status = 200
        self.calls = 0
        self.call_times: list[float] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                with stub.lock:
                    stub.calls += 1
                    stub.call_times.append(time.monotonic())
                    status = stub.status
                body = b"ok" if status == 200 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/readyz"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def count(self) -> int:
        with self.lock:
            return self.calls

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SiteProcess:
    """``hfo-site <command>`` as a child process with its own environment and log file."""

    def __init__(self, command: str, env: Mapping[str, str], log_path: Path) -> None:
        self.command = command
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SiteProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*HFO_SITE, self.command], env=self.env, stdout=self._log, stderr=self._log)
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict]:
        out = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, port: int, path: str = "/livez", timeout: float = 20.0) -> None:
        def up() -> bool:
            if not self.alive():
                raise AssertionError(f"hfo-site {self.command} exited early:\n{self.logs()}")
            return answers(port, path)

        wait_until(up, timeout=timeout, what=f"hfo-site {self.command} on :{port}{path}")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self._log.close()
        return code


@contextmanager
def site_process(command: str, env: Mapping[str, str], log_path: Path) -> Iterator[SiteProcess]:
    process = SiteProcess(command, env, log_path).start()
    try:
        yield process
    finally:
        process.terminate()


def health_ports() -> dict[str, str]:
    return {
        "HFO_HEALTH_BIND": "127.0.0.1",
        "HFO_HEALTH_PORT": str(free_port()),
        "HFO_STATUS_PORT": str(free_port()),
        "HFO_METRICS_PORT": str(free_port()),
    }


def metric_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The value of one sample in Prometheus text format, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted((labels or {}).items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series == name and not want:
            return float(value)
        if series.startswith(name + "{"):
            got = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
            if got == want:
                return float(value)
    return None


# -- a stand-in bot for the exec backend ---------------------------------------------------------

WORKLOAD_SCRIPT = """
import os, signal, sys, time
out = sys.argv[1]
def write(line):
    with open(out, "a") as f:
        f.write(line + "\\n")
def bye(*_):
    write(f"term {time.time():.6f} {os.getpid()}")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
write(f"start {time.time():.6f} {os.getpid()}")
while True:
    write(f"tick {time.time():.6f} {os.getpid()}")
    time.sleep(0.02)
"""


@dataclass
class Run:
    """One life of the stand-in bot: from its first line to its last (``term`` when it was asked)."""

    pid: int
    start: float
    end: float
    terminated: bool


def write_workload(directory: Path) -> Path:
    path = directory / "workload.py"
    path.write_text(WORKLOAD_SCRIPT)
    return path


def workload_command(script: Path, out: Path) -> str:
    return f"{sys.executable} {script} {out}"


def runs(out: Path) -> list[Run]:
    result: dict[int, Run] = {}
    if not out.exists():
        return []
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # a line being written right now
        kind, stamp, pid = parts[0], float(parts[1]), int(parts[2])
        run = result.get(pid)
        if run is None:
            result[pid] = Run(pid, stamp, stamp, kind == "term")
        else:
            run.end = max(run.end, stamp)
            run.terminated = run.terminated or kind == "term"
    return sorted(result.values(), key=lambda r: r.start)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        # The process went away between the directory lookup and the read (ESRCH): not alive.
        return False
