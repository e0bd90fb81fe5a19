"""Warm tick overhead of the watchdog against a local moto server.

The real tick handler (Powertools decorators, settings, store, EC2 adapter, SNS notifier) runs in
this process; only the probe is replaced by an instant in-process prober, so the figure is the
watchdog's own overhead without the probe's network wait. Also measured: the heartbeat handler,
and the first (cold) invocation that builds settings, secrets and clients. Baseline, in the same
run and against the same server: one raw DynamoDB GetItem round trip.

    python bench/warm_tick.py [--ticks N]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import statistics
import sys
import time
from contextlib import redirect_stdout
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()

    import secrets

    import boto3
    from hfo_drill.aws_setup import directly, read_functions
    from hfo_drill.lambda_runtime import LambdaContext, function_url_event
    from hfo_drill.moto_server import MotoServer
    from hfo_protocol.heartbeat import Heartbeat, build_heartbeat, sign_heartbeat
    from hfo_protocol.keys import Keyring
    from hfo_protocol.nonce import new_nonce

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
        from hfo_watchdog.config import Settings
        from hfo_watchdog.handlers import entry_points
        from hfo_watchdog.runtime import Container, Runtime

        # The real handlers on a container whose Runtime has the instant prober put in.
        handlers = entry_points(Container(lambda: Runtime(Settings.from_env(os.environ), prober=InstantProber())))

        keyring = Keyring.from_secret_string(secret_text)
        seq = [0]

        def beat() -> dict[str, Any]:
            seq[0] += 1
            hb = Heartbeat("primary", time.time(), new_nonce(), seq[0], "running", 1, True)
            body = build_heartbeat(hb)
            headers = {"content-type": "application/json", "x-hfo-signature": sign_heartbeat(keyring, body)}
            return handlers.heartbeat(function_url_event(body, headers), LambdaContext("hfo-heartbeat"))

        sink = io.StringIO()  # EMF metric documents are printed on stdout; keep the report readable

        def tick() -> dict[str, Any]:
            with redirect_stdout(sink):
                return handlers.tick({"source": "aws.scheduler"}, LambdaContext("hfo-tick"))

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
                }
            }
        )
    )


if __name__ == "__main__":
    main()
