"""Health histories: what really happened, second by second, on four channels.

- `laptop`: the laptop's stack is up (K3s, the agent, the health service). Down means dead (power
  cut, crash, reboot) or, for a `sleep` outage, suspended (lid closed): processes frozen, not gone.
- `net`: the laptop's internet connection as a whole (Wi-Fi, ISP). Down takes both paths below
  AND Discord: the laptop's bot cannot answer anyone, whatever it runs.
- `funnel`: the probe's own path (Tailscale Funnel, from AWS to the laptop's health service).
- `aws`: the laptop's own path to the watchdog's Function URL (its heartbeats).

The probe succeeds when the laptop, its network and the Funnel path are up; a heartbeat arrives
when the laptop, its network and its AWS path are up. The standby's network is always fine.
Random traces draw from a `random.Random` seeded by the caller, so a seed gives the same trace
every time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHANNELS = ("laptop", "net", "funnel", "aws")
LEAD_S = 15 * 60  # healthy time before the first incident: every policy starts settled
TAIL_S = 40 * 60  # healthy time after the last incident: handback, EC2 stop, settle


class TraceError(ValueError):
    """A trace that cannot be built (bad length, rate, channel); the message names it."""


@dataclass(frozen=True)
class Outage:
    """`channels` down from `start` for `seconds`."""

    start: int
    seconds: int
    channels: tuple[str, ...]
    sleep: bool = False  # laptop outages only: suspended, not dead


@dataclass(frozen=True)
class Trace:
    name: str
    title: str
    duration: int
    outages: tuple[Outage, ...]
    laptop: bytes  # one byte per second, 1 = up
    net: bytes
    funnel: bytes
    aws: bytes
    asleep: bytes  # 1 where the laptop is down because it is suspended

    @property
    def incident_at(self) -> int | None:
        """The first second any channel is down (None for a trace without incident)."""
        return min((o.start for o in self.outages), default=None)

    def probe_path(self, t: int) -> bool:
        return bool(self.laptop[t] and self.net[t] and self.funnel[t])

    def heartbeat_path(self, t: int) -> bool:
        return bool(self.laptop[t] and self.net[t] and self.aws[t])

    def laptop_fine(self, t: int) -> bool:
        """The laptop could answer on Discord at second `t`: up, awake and online."""
        return bool(self.laptop[t] and self.net[t])

    def down_seconds(self, channel: str) -> int:
        up: list[bool] = getattr(self, channel)
        return len(up) - sum(up)


def build(name: str, title: str, outages: Sequence[Outage], tail_s: int = TAIL_S) -> Trace:
    """Lay `outages` on an all-up history that lasts until `tail_s` after the last one ends."""
    if not outages:
        raise TraceError(f"trace {name!r} needs at least one outage")
    for o in outages:
        if o.seconds <= 0 or o.start < 0:
            raise TraceError(f"trace {name!r}: outage at {o.start} s lasting {o.seconds} s: both must be positive")
        unknown = set(o.channels) - set(CHANNELS)
        if unknown or not o.channels:
            raise TraceError(f"trace {name!r}: channels {o.channels!r} must be among {', '.join(CHANNELS)}")
        if o.sleep and o.channels != ("laptop",):
            raise TraceError(f"trace {name!r}: only a laptop outage can be a sleep")
    duration = max(o.start + o.seconds for o in outages) + tail_s
    series = {c: bytearray(b"\x01" * duration) for c in CHANNELS}
    asleep = bytearray(duration)
    for o in outages:
        for c in o.channels:
            series[c][o.start : o.start + o.seconds] = bytes(o.seconds)
        if o.sleep:
            asleep[o.start : o.start + o.seconds] = b"\x01" * o.seconds
    return Trace(
        name=name,
        title=title,
        duration=duration,
        outages=tuple(sorted(outages, key=lambda o: o.start)),
        laptop=bytes(series["laptop"]),
        net=bytes(series["net"]),
        funnel=bytes(series["funnel"]),
        aws=bytes(series["aws"]),
        asleep=bytes(asleep),
    )


def laptop_outage(name: str, seconds: int, *, sleep: bool = False) -> Trace:
    how = "sleeps (lid closed)" if sleep else "dies"
    return build(name, f"the laptop {how} for {_human(seconds)}", [Outage(LEAD_S, seconds, ("laptop",), sleep)])


def path_outage(name: str, channel: str, seconds: int) -> Trace:
    what = {"funnel": "the Funnel path (probe) is down", "aws": "the laptop's path to AWS (heartbeats) is down"}
    if channel not in what:
        raise TraceError(f"path outage channel {channel!r} must be funnel or aws")
    return build(name, f"{what[channel]} for {_human(seconds)}", [Outage(LEAD_S, seconds, (channel,))])


def repeated(name: str, seconds: int, every_s: int, count: int) -> Trace:
    if every_s <= seconds:
        raise TraceError(f"repeated outages of {seconds} s must be further apart than that (every {every_s} s)")
    if not 1 <= count <= 1000:
        raise TraceError(f"repeated outage count {count} is out of range: 1-1000")
    outages = [Outage(LEAD_S + i * every_s, seconds, ("laptop",)) for i in range(count)]
    return build(name, f"the laptop dies for {_human(seconds)}, {count} times, every {_human(every_s)}", outages)


def episodes(
    rng: random.Random,
    *,
    rate: float,
    span_s: int,
    glitch_s: tuple[int, int],
    channels: tuple[str, ...],
) -> list[Outage]:
    """Random glitches on `channels` that cover about `rate` of `span_s`: glitch lengths uniform
    in `glitch_s`, gaps exponential with the mean that gives that share."""
    if not 0.0 < rate < 1.0:
        raise TraceError(f"failure rate {rate!r} is out of range: strictly between 0 and 1")
    low, high = glitch_s
    if not 1 <= low <= high:
        raise TraceError(f"glitch lengths {glitch_s!r} must be 1 <= low <= high seconds")
    mean_glitch = (low + high) / 2
    mean_gap = mean_glitch * (1.0 - rate) / rate
    out, t = [], LEAD_S + int(rng.expovariate(1.0 / mean_gap))
    while t < LEAD_S + span_s:
        length = min(rng.randint(low, high), LEAD_S + span_s - t)
        out.append(Outage(t, length, channels))
        t += length + 1 + int(rng.expovariate(1.0 / mean_gap))
    return out


def flapping(name: str, rng: random.Random, rate: float, span_s: int = 6 * 3600) -> Trace:
    """The probe path flaps (Funnel's 502s and dark spells, 20 s to 2 min each) about `rate` of the
    time; the laptop and its heartbeats are fine throughout."""
    outages = episodes(rng, rate=rate, span_s=span_s, glitch_s=(20, 120), channels=("funnel",))
    if not outages:
        raise TraceError(f"trace {name!r}: no glitch drawn; use a longer span or a higher rate")
    return build(name, f"Funnel flaps {rate:.0%} of the time for {_human(span_s)}", outages)


def blips(name: str, rng: random.Random, rate: float, span_s: int = 6 * 3600) -> Trace:
    """The laptop's internet drops (Wi-Fi, ISP; 30 s to 150 s each) about `rate` of the time: both
    signals and Discord are gone during a blip; the laptop itself stays up."""
    outages = episodes(rng, rate=rate, span_s=span_s, glitch_s=(30, 150), channels=("net",))
    if not outages:
        raise TraceError(f"trace {name!r}: no blip drawn; use a longer span or a higher rate")
    return build(name, f"the laptop's internet drops {rate:.0%} of the time for {_human(span_s)}", outages)


def _human(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# The catalogue: name -> builder (random ones draw from the rng; the others ignore it).
CATALOGUE: dict[str, Callable[[random.Random], Trace]] = {
    "outage-2m": lambda rng: laptop_outage("outage-2m", 120),
    "outage-10m": lambda rng: laptop_outage("outage-10m", 600),
    "outage-1h": lambda rng: laptop_outage("outage-1h", 3600),
    "return-mid-failover": lambda rng: build(
        "return-mid-failover",
        "the laptop dies for 4 min and returns while the standby boots",
        [Outage(LEAD_S, 240, ("laptop",))],
    ),
    "sleep-10m": lambda rng: laptop_outage("sleep-10m", 600, sleep=True),
    "offline-10m": lambda rng: build(
        "offline-10m", "the laptop's internet is down for 10 min (the laptop runs)", [Outage(LEAD_S, 600, ("net",))]
    ),
    "flap-5": lambda rng: flapping("flap-5", rng, 0.05),
    "flap-20": lambda rng: flapping("flap-20", rng, 0.20),
    "flap-50": lambda rng: flapping("flap-50", rng, 0.50),
    "blips-10": lambda rng: blips("blips-10", rng, 0.10),
    "funnel-only-30m": lambda rng: path_outage("funnel-only-30m", "funnel", 1800),
    "heartbeat-only-30m": lambda rng: path_outage("heartbeat-only-30m", "aws", 1800),
    "repeated-90s": lambda rng: repeated("repeated-90s", 90, 15 * 60, 8),
    "repeated-4m": lambda rng: repeated("repeated-4m", 240, 20 * 60, 4),
}


def make(name: str, rng: random.Random) -> Trace:
    try:
        builder = CATALOGUE[name]
    except KeyError:
        raise TraceError(f"unknown trace {name!r}; one of: {', '.join(CATALOGUE)}") from None
    return builder(rng)
