"""The benchmark's health histories (traces), built on the simulator's model (hfo_drill.sim.model).

Four channels: `laptop` (its stack; down = dead, or asleep for the sleep traces), `net` (its
internet: both paths and Discord), `funnel` (the probe's path), `aws` (its path to the Function
URL: the heartbeats). Every trace starts with LEAD_S of health and ends with TAIL_S of health,
time enough for the handback. Random traces draw from a `random.Random` the caller seeds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hfo_drill.sim.model import Outage, Trace, TraceError, make_trace

LEAD_S = 15 * 60
TAIL_S = 40 * 60

__all__ = ["CATALOGUE", "LEAD_S", "TAIL_S", "Outage", "Trace", "TraceError", "build", "make"]


def build(name: str, title: str, outages: Sequence[Outage], tail_s: float = TAIL_S) -> Trace:
    return make_trace(name, title, outages, tail_s)


def laptop_outage(name: str, seconds: int, *, asleep: bool = False) -> Trace:
    how = "sleeps (lid closed)" if asleep else "dies"
    return build(name, f"the laptop {how} for {_human(seconds)}", [Outage("laptop", LEAD_S, seconds, asleep)])


def path_outage(name: str, channel: str, seconds: int) -> Trace:
    what = {"funnel": "the Funnel path (probe) is down", "aws": "the laptop's path to AWS (heartbeats) is down"}
    if channel not in what:
        raise TraceError(f"path outage channel {channel!r} must be funnel or aws")
    return build(name, f"{what[channel]} for {_human(seconds)}", [Outage(channel, LEAD_S, seconds)])


def repeated(name: str, seconds: int, every_s: int, count: int, *, asleep: bool = False) -> Trace:
    if every_s <= seconds:
        raise TraceError(f"repeated outages of {seconds} s must be further apart than that (every {every_s} s)")
    if not 1 <= count <= 1000:
        raise TraceError(f"repeated outage count {count} is out of range: 1-1000")
    outages = [Outage("laptop", LEAD_S + i * every_s, seconds, asleep) for i in range(count)]
    how = "sleeps" if asleep else "dies"
    return build(name, f"the laptop {how} for {_human(seconds)}, {count} times, every {_human(every_s)}", outages)


def episodes(rng: random.Random, *, rate: float, span_s: int, glitch_s: tuple[int, int], channel: str) -> list[Outage]:
    """Random glitches on `channel` covering about `rate` of `span_s`: lengths uniform in
    `glitch_s`, gaps exponential with the mean that gives that share."""
    if not 0.0 < rate < 1.0:
        raise TraceError(f"failure rate {rate!r} is out of range: strictly between 0 and 1")
    low, high = glitch_s
    if not 1 <= low <= high:
        raise TraceError(f"glitch lengths {glitch_s!r} must be 1 <= low <= high seconds")
    mean_gap = (low + high) / 2 * (1.0 - rate) / rate
    out, t = [], LEAD_S + int(rng.expovariate(1.0 / mean_gap))
    while t < LEAD_S + span_s:
        length = min(rng.randint(low, high), LEAD_S + span_s - t)
        out.append(Outage(channel, t, length))
        t += length + 1 + int(rng.expovariate(1.0 / mean_gap))
    return out


def flapping(name: str, rng: random.Random, rate: float, span_s: int = 6 * 3600) -> Trace:
    """Funnel's 502s and dark spells (20 s to 2 min each) about `rate` of the time; the laptop and
    its heartbeats are fine throughout."""
    outages = episodes(rng, rate=rate, span_s=span_s, glitch_s=(20, 120), channel="funnel")
    if not outages:
        raise TraceError(f"trace {name!r}: no glitch drawn; use a longer span or a higher rate")
    return build(name, f"Funnel flaps {rate:.0%} of the time for {_human(span_s)}", outages)


def blips(name: str, rng: random.Random, rate: float, span_s: int = 6 * 3600) -> Trace:
    """The laptop's internet drops (30 s to 150 s each) about `rate` of the time."""
    outages = episodes(rng, rate=rate, span_s=span_s, glitch_s=(30, 150), channel="net")
    if not outages:
        raise TraceError(f"trace {name!r}: no blip drawn; use a longer span or a higher rate")
    return build(name, f"the laptop's internet drops {rate:.0%} of the time for {_human(span_s)}", outages)


def _human(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds) // 3600} h"
    if seconds % 60 == 0:
        return f"{int(seconds) // 60} min"
    return f"{seconds:g} s"


# The catalogue: name -> builder (random ones draw from the rng; the others ignore it).
CATALOGUE: dict[str, Callable[[random.Random], Trace]] = {
    "outage-2m": lambda rng: laptop_outage("outage-2m", 120),
    "outage-10m": lambda rng: laptop_outage("outage-10m", 600),
    "outage-1h": lambda rng: laptop_outage("outage-1h", 3600),
    "return-mid-failover": lambda rng: build(
        "return-mid-failover",
        "the laptop dies for 4 min and returns while the standby boots",
        [Outage("laptop", LEAD_S, 240)],
    ),
    "sleep-10m": lambda rng: laptop_outage("sleep-10m", 600, asleep=True),
    "offline-10m": lambda rng: build(
        "offline-10m", "the laptop's internet is down for 10 min (the laptop runs)", [Outage("net", LEAD_S, 600)]
    ),
    "flap-5": lambda rng: flapping("flap-5", rng, 0.05),
    "flap-20": lambda rng: flapping("flap-20", rng, 0.20),
    "flap-50": lambda rng: flapping("flap-50", rng, 0.50),
    "blips-10": lambda rng: blips("blips-10", rng, 0.10),
    "funnel-only-30m": lambda rng: path_outage("funnel-only-30m", "funnel", 1800),
    "heartbeat-only-30m": lambda rng: path_outage("heartbeat-only-30m", "aws", 1800),
    "repeated-90s": lambda rng: repeated("repeated-90s", 90, 15 * 60, 8),
    "repeated-4m": lambda rng: repeated("repeated-4m", 240, 20 * 60, 4),
    # Sleep and wake: the laptop is frozen (agent and bot), its lease clock keeps counting.
    "sleep-45s": lambda rng: laptop_outage("sleep-45s", 45, asleep=True),
    "sleep-4m": lambda rng: laptop_outage("sleep-4m", 240, asleep=True),
    "sleep-1h": lambda rng: laptop_outage("sleep-1h", 3600, asleep=True),
    "sleep-wake-5x": lambda rng: repeated("sleep-wake-5x", 300, 30 * 60, 5, asleep=True),
}


def make(name: str, rng: random.Random) -> Trace:
    try:
        builder = CATALOGUE[name]
    except KeyError:
        raise TraceError(f"unknown trace {name!r}; one of: {', '.join(CATALOGUE)}") from None
    return builder(rng)
