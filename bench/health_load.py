"""Load the health service's /healthz from a second process on loopback and print figures.

    .venv/bin/python bench/health_load.py [--duration 5] [--connections 32] [--generator auto|wrk|python]

What runs:
- the real ``hfo-site health`` as a child process (exec backend, a readiness URL served by a
  counting stub in this process, an agent status pushed so the verdict is ``pass``), its rate
  limit raised so the load measures the request path rather than 429s;
- the same load against a trivial aiohttp "hello" handler in another child process: the baseline,
  measured in the same run on the same machine;
- a third row: the real service with its default rate limit, all load from one client (a flood
  from one address: answered with 429 from memory).

The load generator is wrk when installed (``apt-get install wrk``), else a Python keep-alive
client (aiohttp) in a child process. Printed: requests/s, p50 and p99 latency, errors, and the
number of backend checks (calls the stub received) during the run next to what the interval
alone predicts.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from hfo_drill.net import free_port

CHECK_INTERVAL_S = 0.5
NONCE = "benchmarkNonce_0123456789abcdefgh"

PY_LOADGEN = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import aiohttp

    async def main(url, duration, connections):
        latencies, codes, errors = [], {}, 0
        deadline = time.perf_counter() + duration
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker():
                nonlocal errors
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    try:
                        async with session.get(url) as resp:
                            await resp.read()
                            codes[resp.status] = codes.get(resp.status, 0) + 1
                    except aiohttp.ClientError:
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
        print(json.dumps({"requests": len(latencies), "elapsed": elapsed, "p50": pick(0.50), "p99": pick(0.99),
                          "errors": errors, "codes": codes}))

    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    """
)

HELLO_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web
    async def hello(request):
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


def wait_http(port: int, path: str, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on :{port}{path} within {timeout}s")


class CountingStub:
    """The bot's readiness endpoint; every call is one backend check."""

    def __init__(self) -> None:
        self.calls = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                stub.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/readyz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def push_status(status_port: int) -> None:
    from hfo_site.agent_status import AgentStatus, build_status

    now = time.time()
    body = build_status(AgentStatus("primary", "exec", "running", True, "primary", 1, True, 3600.0, 0.0, now))
    conn = http.client.HTTPConnection("127.0.0.1", status_port, timeout=5)
    conn.request("POST", "/agent-status", body=body, headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 204


def run_wrk(url: str, duration: float, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout

    def found(pattern: str, text: str) -> re.Match[str]:
        match = re.search(pattern, text)
        if match is None:
            raise RuntimeError(f"wrk's report has no {pattern!r}:\n{out}")
        return match

    def ms(value: str) -> float:
        number, unit = found(r"^([\d.]+)(us|ms|s)$", value).groups()
        return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]

    rps = float(found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(found(r"\s50%\s+(\S+)", out).group(1))
    p99 = ms(found(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_python(url: str, duration: float, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PY_LOADGEN, url, str(duration), str(connections)],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    doc = json.loads(out)
    non2xx = sum(n for code, n in doc["codes"].items() if not str(code).startswith("2"))
    return {
        "rps": doc["requests"] / doc["elapsed"],
        "p50": doc["p50"],
        "p99": doc["p99"],
        "errors": doc["errors"],
        "non2xx": non2xx,
    }


def health_env(tmp: Path, stub: CountingStub, ports: dict[str, int], limited: bool) -> dict[str, str]:
    (tmp / "secret").write_text("bench-secret-" + "x" * 40)
    (tmp / "token").write_text("bench-token-0123456789")
    env = {
        **os.environ,
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(tmp / "secret"),
        "HFO_DETAILS_TOKEN_FILE": str(tmp / "token"),
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": "bot",
        "HFO_WORKLOAD_READY_URL": stub.url,
        "HFO_CHECK_INTERVAL_S": str(CHECK_INTERVAL_S),
        "HFO_HEARTBEAT_INTERVAL_S": "300",  # the pushed status stays fresh for the whole run
        "HFO_HEALTH_BIND": "127.0.0.1",
        "HFO_HEALTH_PORT": str(ports["health"]),
        "HFO_STATUS_PORT": str(ports["status"]),
        "HFO_METRICS_PORT": str(ports["metrics"]),
        "HFO_LOG_LEVEL": "WARNING",
    }
    if not limited:
        env.update({"HFO_RATE_LIMIT_RPS": "1000000", "HFO_RATE_LIMIT_BURST": "1000000"})
    return env


def measure(name: str, url: str, args: argparse.Namespace, generator: str, stub: CountingStub | None) -> dict[str, Any]:
    before = stub.calls if stub else 0
    started = time.monotonic()
    load = run_wrk if generator == "wrk" else run_python
    result = load(url, args.duration, args.connections)
    elapsed = time.monotonic() - started
    result["name"] = name
    if stub is not None:
        result["checks"] = stub.calls - before
        result["checks_expected"] = elapsed / CHECK_INTERVAL_S
    return result


def run_health(
    args: argparse.Namespace, generator: str, stub: CountingStub, limited: bool, name: str
) -> dict[str, Any]:
    ports = {"health": free_port(), "status": free_port(), "metrics": free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        env = health_env(Path(tmp), stub, ports, limited)
        proc = subprocess.Popen([sys.executable, "-m", "hfo_site.cli", "health"], env=env)
        try:
            wait_http(ports["health"], "/readyz", proc)
            push_status(ports["status"])
            time.sleep(CHECK_INTERVAL_S * 2)
            url = f"http://127.0.0.1:{ports['health']}/healthz?nonce={NONCE}"
            return measure(name, url, args, generator, stub)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def run_baseline(args: argparse.Namespace, generator: str) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", HELLO_SERVER, str(port)])
    try:
        wait_http(port, "/healthz", proc)
        return measure("baseline: aiohttp hello", f"http://127.0.0.1:{port}/healthz", args, generator, None)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per row (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    if not 0.5 <= args.duration <= 600 or not 1 <= args.connections <= 1000:
        parser.error("--duration must be 0.5-600 s and --connections 1-1000")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    if generator == "wrk" and not shutil.which("wrk"):
        parser.error("--generator wrk: wrk is not installed (apt-get install wrk)")

    stub = CountingStub()
    rows = [
        run_baseline(args, generator),
        run_health(args, generator, stub, limited=False, name="hfo-site health /healthz (signed)"),
        run_health(args, generator, stub, limited=True, name="same, one client over its rate limit (429)"),
    ]
    cpus = os.cpu_count()
    print(
        f"\nload: {generator}, {args.connections} keep-alive connections, {args.duration:g} s per row, "
        f"loopback, {cpus} CPUs shared with the load generator; check interval {CHECK_INTERVAL_S} s"
    )
    print(f"{'row':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'non-2xx':>8} {'checks':>14}")
    for row in rows:
        checks = f"{row['checks']} (~{row['checks_expected']:.0f})" if "checks" in row else "-"
        print(
            f"{row['name']:44} {row['rps']:9.0f} {row['p50'] * 1000:8.2f} {row['p99'] * 1000:8.2f} "
            f"{row['errors']:7d} {row['non2xx']:8d} {checks:>14}"
        )
    base = rows[0]["rps"]
    print(f"\nsigned /healthz throughput = {rows[1]['rps'] / base:.2f} x the hello baseline")
    print("checks: calls the readiness stub received during the row; (~n) is duration / interval")
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
