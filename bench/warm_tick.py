"""Warm tick overhead of the watchdog against a local moto server.

The real tick handler (Powertools decorators, settings, store, EC2 adapter, SNS notifier) runs in
this process; only the probe is replaced by an instant in-process prober, so the figure is the
watchdog's own overhead without the probe's network wait. Also measured: the heartbeat handler,
and the first (cold) invocation that builds settings, secrets and clients. Baseline, in the same
run and against the same server: one raw DynamoDB GetItem round trip.

Then the footprint a Lambda memory setting must hold: for each function, a fresh interpreter (as
its own execution environment) runs its handler, first then warm, and reports its peak resident
memory and the CPU time each invocation took: the part that stretches when Lambda gives a function
less CPU (in proportion to memory; `one_vcpu_mb` of tools/cost/prices.toml is one vCPU).

    python bench/warm_tick.py [--ticks N]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import botocore.endpoint

CALLS: collections.Counter[str] = collections.Counter()
_make_request = botocore.endpoint.Endpoint.make_request


AWS_MS = [0.0]


def _counting(self: Any, operation_model: Any, request_dict: Any) -> Any:
    CALLS[operation_model.name] += 1
    started = time.perf_counter()
    try:
        return _make_request(self, operation_model, request_dict)
    finally:
        AWS_MS[0] += (time.perf_counter() - started) * 1000


# Counting every AWS call (and its time) needs botocore's own request method replaced.
botocore.endpoint.Endpoint.make_request = _counting  # type: ignore[method-assign]  # a deliberate patch


class InstantProber:
    """A good probe result with no network at all."""

    def probe(self) -> Any:
        from hfo_watchdog.core.model import ProbeResult

        return ProbeResult(ok=True, at=time.time(), http_status=200, latency_ms=0.0, detail="instant (benchmark)")

    def renew(self, renewal: Any) -> Any:
        from hfo_watchdog.core.model import RenewOutcome

        return RenewOutcome(ok=True, detail="instant (benchmark)")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


PRICES = Path(__file__).resolve().parents[1] / "tools" / "cost" / "prices.toml"
FUNCTIONS = ("heartbeat", "tick")
KEYRING_ENV = "HFO_BENCH_KEYRING"  # the child's copy of the benchmark's own throwaway keyring


class Invokers:
    """The real handlers, as the functions run them, on a Runtime with the instant prober, and
    helpers that call them the way the Function URL and the schedule do."""

    def __init__(self, secret_text: str) -> None:
        from hfo_protocol.keys import Keyring
        from hfo_watchdog.config import Settings
        from hfo_watchdog.handlers import entry_points
        from hfo_watchdog.runtime import Container, Runtime

        self.handlers = entry_points(Container(lambda: Runtime(Settings.from_env(os.environ), prober=InstantProber())))
        self.keyring = Keyring.from_secret_string(secret_text)
        self.seq = 0
        self.sink = io.StringIO()  # EMF metric documents are printed on stdout; keep the report readable

    def beat(self) -> dict[str, Any]:
        from hfo_drill.lambda_runtime import LambdaContext, function_url_event
        from hfo_protocol.heartbeat import Heartbeat, build_heartbeat, sign_heartbeat
        from hfo_protocol.nonce import new_nonce

        self.seq += 1
        hb = Heartbeat("primary", time.time(), new_nonce(), self.seq, "running", 1, True)
        body = build_heartbeat(hb)
        headers = {"content-type": "application/json", "x-hfo-signature": sign_heartbeat(self.keyring, body)}
        return self.handlers.heartbeat(function_url_event(body, headers), LambdaContext("hfo-heartbeat"))

    def tick(self) -> dict[str, Any]:
        from hfo_drill.lambda_runtime import LambdaContext

        with redirect_stdout(self.sink):
            return self.handlers.tick({"source": "aws.scheduler"}, LambdaContext("hfo-tick"))


def cpu_ms(call: Any) -> tuple[float, Any]:
    started = time.process_time()
    result = call()
    return (time.process_time() - started) * 1000, result


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, which exec
    replaces; getrusage's ru_maxrss would carry over the parent's peak into the child on Linux."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise SystemExit("no VmHWM in /proc/self/status: the footprint needs Linux")


def footprint(function: str, n: int) -> None:
    """In a fresh interpreter, as one function's execution environment: the CPU time of its first
    invocation (settings, secret, clients: the handlers build them lazily) and of warm ones, and
    the peak resident memory."""
    before = peak_rss_mib()
    inv = Invokers(os.environ[KEYRING_ENV])
    call = inv.beat if function == "heartbeat" else inv.tick
    cold, _ = cpu_ms(call)
    for _ in range(5):
        call()
    warm = [cpu_ms(call)[0] for _ in range(n)]
    result = {"interpreter_rss_mib": before, "peak_rss_mib": peak_rss_mib(), "first_cpu_ms": cold}
    print(json.dumps({**result, "warm_cpu_median_ms": statistics.median(warm)}))


def measure_footprint(n: int, secret_text: str) -> dict[str, Any]:
    """Each function's footprint, measured by a child of its own (while the moto server runs)."""
    fps: dict[str, Any] = {}
    for function in FUNCTIONS:
        # Our own interpreter and script, fixed arguments.
        child = subprocess.run(
            [sys.executable, __file__, "--footprint", function, "--ticks", str(n)],
            env={**os.environ, KEYRING_ENV: secret_text},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if child.returncode != 0:
            raise SystemExit(f"the {function} footprint child failed:\n{child.stderr[-3000:]}")
        fps[function] = json.loads(child.stdout.strip().splitlines()[-1])
    return fps


def report_footprint(n: int, fps: dict[str, Any]) -> dict[str, Any]:
    # Lambda's CPU share, as `make cost` prices it: in proportion to memory, one vCPU at one_vcpu_mb.
    one_vcpu_mb = tomllib.loads(PRICES.read_text(encoding="utf-8"))["usage"]["one_vcpu_mb"]
    print()
    print(f"footprint: each function alone in a fresh interpreter (its own execution environment), {n} warm calls")
    print(f"  {'function':<10} {'peak RSS':>10} {'first call CPU':>15} {'warm call CPU':>14}")
    for function, fp in fps.items():
        print(
            f"  {function:<10} {fp['peak_rss_mib']:>6.1f} MiB {fp['first_cpu_ms']:>12.0f} ms "
            f"{fp['warm_cpu_median_ms']:>11.1f} ms"
        )
    print(f"  (the interpreter with the benchmark's imports: {fps['tick']['interpreter_rss_mib']:.1f} MiB)")
    print(f"  the CPU time stretched to Lambda's share of a vCPU (1 vCPU = {one_vcpu_mb} MB; this machine's core")
    print("  taken as one vCPU): what it adds to an invocation's duration at each memory setting, network aside")
    print(f"  {'memory':>8} {'vCPU':>6}" + "".join(f" {f + ' first':>16} {f + ' warm':>15}" for f in FUNCTIONS))
    stretch: dict[str, dict[str, float]] = {}
    for mb in (128, 256, 512):
        share = min(1.0, mb / one_vcpu_mb)
        row: dict[str, float] = {}
        for function, fp in fps.items():
            row[f"{function}_first_ms"] = fp["first_cpu_ms"] / share
            row[f"{function}_warm_ms"] = fp["warm_cpu_median_ms"] / share
        stretch[str(mb)] = row
        cells = "".join(f" {row[f + '_first_ms']:>13.0f} ms {row[f + '_warm_ms']:>12.0f} ms" for f in FUNCTIONS)
        print(f"  {mb:>5} MB {share:>6.3f}{cells}")
    return {**fps, "at_memory_mb": stretch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--footprint", choices=FUNCTIONS, help=argparse.SUPPRESS)  # a child's mode
    args = parser.parse_args()
    if args.footprint:
        footprint(args.footprint, args.ticks)
        return

    import secrets

    import boto3
    from hfo_drill.aws_setup import directly, read_functions
    from hfo_drill.moto_server import MotoServer

    moto = MotoServer()
    try:
        moto.start()
        os.environ.update(moto.env())
        # The account terraform/examples/complete makes, and the functions' configuration (the
        # modules' defaults) as the watchdog reads it from its environment.
        session = boto3.session.Session()
        secret_text = secrets.token_urlsafe(36)
        side = directly(session, secret_text, "https://laptop.invalid/healthz", "benchmark")
        read_functions(session, side)
        os.environ.update({**side.env("tick"), "POWERTOOLS_LOG_LEVEL": "WARNING"})
        # The real handlers on a container whose Runtime has the instant prober put in.
        inv = Invokers(secret_text)
        beat, tick = inv.beat, inv.tick

        # Cold: the first invocation builds settings, fetches the secret, creates the clients.
        CALLS.clear()
        started = time.perf_counter()
        beat()
        cold_heartbeat_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        tick()
        cold_tick_ms = (time.perf_counter() - started) * 1000

        for _ in range(5):  # reach the steady healthy state (no transitions, no alerts)
            beat()
            time.sleep(0.01)
            tick()
        tick_ms: list[float] = []
        beat_ms: list[float] = []
        tick_calls: collections.Counter[str] = collections.Counter()
        beat_calls: collections.Counter[str] = collections.Counter()
        tick_aws_ms: list[float] = []
        for _ in range(args.ticks):
            CALLS.clear()
            started = time.perf_counter()
            answer = beat()
            beat_ms.append((time.perf_counter() - started) * 1000)
            assert answer["statusCode"] == 200, answer
            beat_calls.update(CALLS)
            CALLS.clear()
            AWS_MS[0] = 0.0
            started = time.perf_counter()
            report = tick()
            tick_ms.append((time.perf_counter() - started) * 1000)
            tick_aws_ms.append(AWS_MS[0])
            assert report["outcome"] == "saved" and report["phase"] == "healthy", report
            tick_calls.update(CALLS)

        ddb = boto3.client("dynamodb")
        key = {"pk": {"S": "CONTROL"}, "sk": {"S": "STATE"}}
        for _ in range(5):
            ddb.get_item(TableName=side.table, Key=key, ConsistentRead=True)
        get_ms = []
        for _ in range(args.ticks):
            started = time.perf_counter()
            ddb.get_item(TableName=side.table, Key=key, ConsistentRead=True)
            get_ms.append((time.perf_counter() - started) * 1000)
        fps = measure_footprint(args.ticks, secret_text)
    finally:
        moto.stop()

    n = args.ticks
    base = statistics.median(get_ms)
    print(f"warm invocations against moto on loopback, {n} each (python {sys.version.split()[0]})")
    print(f"{'what':<34} {'median':>9} {'p95':>9} {'x GetItem':>10}  AWS calls per invocation")

    def row(name: str, values: list[float], calls: collections.Counter[str] | None) -> None:
        per = "" if calls is None else ", ".join(f"{op} {c / n:g}" for op, c in sorted(calls.items()))
        total = "" if calls is None else f"{sum(calls.values()) / n:g} = "
        print(
            f"{name:<34} {statistics.median(values):>6.1f} ms {pct(values, 95):>6.1f} ms "
            f"{statistics.median(values) / base:>9.1f}x  {total}{per}"
        )

    row("baseline: raw GetItem round trip", get_ms, None)
    row("tick (instant probe)", tick_ms, tick_calls)
    row("heartbeat", beat_ms, beat_calls)
    own = [t - a for t, a in zip(tick_ms, tick_aws_ms, strict=True)]
    print(
        f"of a warm tick, waiting on AWS calls: median {statistics.median(tick_aws_ms):.1f} ms; "
        f"the watchdog's own code (engine, logging, metrics, codec): median {statistics.median(own):.1f} ms"
    )
    print(f"cold first heartbeat (builds settings, secret, clients): {cold_heartbeat_ms:.0f} ms")
    print(f"cold first tick after that (builds the EC2 and SNS side): {cold_tick_ms:.0f} ms")
    fp = report_footprint(n, fps)
    print(
        json.dumps(
            {
                "warm_tick": {
                    "getitem_median_ms": base,
                    "tick_median_ms": statistics.median(tick_ms),
                    "tick_p95_ms": pct(tick_ms, 95),
                    "tick_aws_calls": sum(tick_calls.values()) / n,
                    "tick_own_code_median_ms": statistics.median(own),
                    "heartbeat_median_ms": statistics.median(beat_ms),
                    "heartbeat_p95_ms": pct(beat_ms, 95),
                    "heartbeat_aws_calls": sum(beat_calls.values()) / n,
                },
                "footprint": fp,
            }
        )
    )


if __name__ == "__main__":
    main()
