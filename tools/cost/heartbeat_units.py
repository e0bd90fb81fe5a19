#!/usr/bin/env python3
"""What one heartbeat (and a tick's control write) costs in DynamoDB requests and capacity
units, measured on the real store code (hfo_watchdog.store) against the moto server: every call
the store makes is recorded through botocore's events, and its request units are worked out with
DynamoDB's own rules, from the sizes of the items it really writes and reads.

    python tools/cost/heartbeat_units.py            # 20 heartbeats of one agent, after the first
    python tools/cost/heartbeat_units.py --json

moto does not meter capacity (it answers constants), so the units come from the rules of the
DynamoDB developer guide ("Item sizes and formats", "Read/write capacity mode", "Capacity
management for transactions"): a write is 1 write unit per KB of the larger of the item before
and after; a strongly consistent read 1 read unit per 4 KB of each item read (a BatchGetItem
rounds each item on its own); in a transaction every item costs twice. The tick's control item
is sized on the failover simulator (hfo_drill.sim), which runs the shipped tick.
tools/cost/prices.toml takes `heartbeat_write_units`, `heartbeat_read_units` and
`tick_write_units` from this measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

TABLE = "hfo-state"
KB = 1024


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value ("Item sizes and formats": strings by their UTF-8
    length, numbers about one byte per two significant digits plus one, 1 byte for a boolean or
    null, 3 bytes plus the elements, each with 1 byte more, for a map or a list)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = Decimal(v).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(attribute_size(x) + 1 for x in v)
    if kind == "B":
        return len(v)
    raise ValueError(f"attribute type {kind} is not sized here")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class Meter:
    """Request units of every DynamoDB call the store makes, by DynamoDB's rules."""

    stored: dict[tuple[str, str], int] = field(default_factory=dict)  # (pk, sk) -> item size
    calls: dict[str, int] = field(default_factory=dict)
    write_units: float = 0.0
    read_units: float = 0.0

    def _key(self, key: Mapping[str, Any]) -> tuple[str, str]:
        return (key["pk"]["S"], key["sk"]["S"])

    def before(self, operation: str, params: Mapping[str, Any]) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if operation == "PutItem":
            self._write(params["Item"], 1)
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                if kind == "Put":
                    self._write(body["Item"], 2)
                elif kind == "ConditionCheck":
                    self.read_units += 2 * max(1, math.ceil(self.stored.get(self._key(body["Key"]), 0) / (4 * KB)))
                else:  # Update: at least the item as stored
                    self.write_units += 2 * max(1, math.ceil(self.stored.get(self._key(body["Key"]), 0) / KB))

    def _write(self, item: Mapping[str, Any], factor: int) -> None:
        key = self._key(item)
        size = max(item_size(item), self.stored.get(key, 0))
        self.write_units += factor * max(1, math.ceil(size / KB))
        self.stored[key] = item_size(item)

    def after(self, operation: str, parsed: Mapping[str, Any]) -> None:
        if operation == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                for item in items:
                    self.read_units += max(1, math.ceil(item_size(item) / (4 * KB)))
        elif operation == "GetItem" and "Item" in parsed:
            self.read_units += max(1, math.ceil(item_size(parsed["Item"]) / (4 * KB)))


@dataclass(frozen=True)
class Measured:
    heartbeats: int
    calls_per_heartbeat: dict[str, float]
    write_units_per_heartbeat: float
    read_units_per_heartbeat: float
    site_item_bytes: int


def measure(heartbeats: int = 20) -> Measured:
    import boto3
    from hfo_drill.aws_setup import ensure_table
    from hfo_drill.moto_server import moto_server
    from hfo_protocol.heartbeat import Heartbeat
    from hfo_protocol.nonce import new_nonce
    from hfo_watchdog.core.model import ControlState
    from hfo_watchdog.store import DynamoStateStore

    with moto_server() as server:
        # The emulator's own throwaway credentials (MotoServer.env()), never a real account's.
        env = server.env()
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=server.region,
        )
        client = session.client("dynamodb", endpoint_url=server.endpoint)
        ensure_table(client, TABLE)
        meter = Meter()
        client.meta.events.register(
            "provide-client-params.dynamodb.*",
            lambda params, model, **_: meter.before(model.name, params),
        )
        client.meta.events.register(
            "after-call.dynamodb.*",
            lambda parsed, model, **_: meter.after(model.name, parsed),
        )
        store = DynamoStateStore(client, TABLE)
        store.save(0, ControlState(version=1), None)
        boot = "b" + new_nonce()[:15]
        start = time.time()

        def beat(seq: int, site: str = "primary") -> None:
            hb = Heartbeat(
                site=site, sent_at=start + 10 * seq, nonce=new_nonce(), seq=seq, workload="running",
                epoch_seen=1, ready=True, agent="hfo-agent/0.1.0", boot=boot,
            )  # fmt: skip
            store.accept_heartbeat(hb, lambda: start + 10 * seq + 0.2)

        # Both sites' first heartbeats create their items: the table of a deployment that has
        # failed over once (the standby's item stays), which every later read includes.
        beat(1, "standby")
        beat(1)
        meter.calls.clear()
        meter.write_units = meter.read_units = 0.0
        for seq in range(2, heartbeats + 2):
            beat(seq)
        site = meter.stored[("SITE", "primary")]
    return Measured(
        heartbeats=heartbeats,
        calls_per_heartbeat={k: v / heartbeats for k, v in sorted(meter.calls.items())},
        write_units_per_heartbeat=meter.write_units / heartbeats,
        read_units_per_heartbeat=meter.read_units / heartbeats,
        site_item_bytes=site,
    )


@dataclass(frozen=True)
class TickMeasured:
    control_writes: int
    control_item_bytes_max: int
    write_units_per_control_write: int


def measure_tick(seed: int = 2) -> TickMeasured:
    """The control item a tick writes, on the shipped tick and heartbeat code run by the
    failover simulator (hfo_drill.sim) through a laptop outage, a failover and a handback: the
    largest item it writes sets the tick's write units (each tick writes it once)."""
    from dataclasses import replace

    from hfo_drill.sim.dynamo import FakeDynamoDB
    from hfo_drill.sim.model import BootModel, Outage, make_trace
    from hfo_drill.sim.run import simulate
    from hfo_drill.sim.world import Setup
    from hfo_watchdog.config import Settings

    settings = Settings.from_env({
        "HFO_TABLE_NAME": TABLE, "HFO_INSTANCE_ID": "i-0123456789abcdef0",
        "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz", "HFO_HMAC_SECRET_ARN": "/hfo/hmac-keyring",
    })  # fmt: skip
    setup = Setup(policy=settings.policy, tick_s=float(settings.tick_interval_s), max_skew_s=settings.max_skew_s)
    boot = BootModel(
        ec2_start_s=20, os_boot_s=15, k3s_ready_s=(45, 45), pod_start_s=5, agent_start_s=5, image_pull_s=25,
        argocd_sync_s=70, ec2_stop_s=45, gateway_connect_s=3, bot_stop_s=5,
    )  # fmt: skip
    sizes: list[int] = []

    class Recording:
        def __init__(self, db: FakeDynamoDB) -> None:
            self.db = db

        def __getattr__(self, name: str) -> Any:
            method = getattr(self.db, name)

            def call(**kwargs: Any) -> Any:
                puts = [kwargs] if name == "put_item" else []
                if name == "transact_write_items":
                    puts = [a["Put"] for a in kwargs["TransactItems"] if "Put" in a]
                sizes.extend(item_size(p["Item"]) for p in puts if p["Item"]["pk"]["S"] == "CONTROL")
                return method(**kwargs)

            return call

    trace = make_trace("units", "units", [Outage("laptop", 900.0, 600.0), Outage("funnel", 3000.0, 600.0)], 1500.0)
    simulate(trace, boot, replace(setup), seed=seed, dynamodb=(Recording(FakeDynamoDB(TABLE)), TABLE))
    largest = max(sizes)
    return TickMeasured(len(sizes), largest, max(1, math.ceil(largest / KB)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--heartbeats", type=int, default=20, help="heartbeats measured after each site's first (1-1000)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if not 1 <= args.heartbeats <= 1000:
        print(f"heartbeat_units: --heartbeats must be from 1 to 1000, got {args.heartbeats}", file=sys.stderr)
        return 2
    result = measure(args.heartbeats)
    if args.json:
        print(json.dumps({"heartbeat": asdict(result), "tick": asdict(measure_tick())}, indent=2))
        return 0
    calls = ", ".join(f"{k} {v:g}" for k, v in result.calls_per_heartbeat.items())
    print(f"per heartbeat of the laptop ({result.heartbeats} measured, both site items present): {calls}")
    print(f"  write units {result.write_units_per_heartbeat:g}, read units {result.read_units_per_heartbeat:g}")
    print(f"  site item {result.site_item_bytes} bytes")
    tick = measure_tick()
    print(
        f"per tick: the control item, at most {tick.control_item_bytes_max} bytes over {tick.control_writes} writes"
        f" (an outage, a failover and a handback in the simulator): {tick.write_units_per_control_write} write unit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
