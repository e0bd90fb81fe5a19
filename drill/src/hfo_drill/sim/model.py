"""What the simulator takes as given: the boot model of the standby and the bots, and the
channels of a health history (a trace).

Durations are seconds. The benchmark reads them from bench/failover/figures.toml (each with its
source); tests build their own.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

CHANNELS = ("laptop", "net", "funnel", "aws")


class TraceError(ValueError):
    """A trace that cannot be built (bad length, channel, sleep); the message names it."""


@dataclass(frozen=True)
class BootModel:
    """How long the standby and the bots take.

    The standby: StartInstances -> `running` after `ec2_start_s`; the OS starts K3s after
    `os_boot_s`; K3s is ready (its API answers, the node restarted its pods) after a time drawn
    uniformly from `k3s_ready_s` at each boot; each pod then starts in `pod_start_s`; the site
    agent sends its first heartbeat `agent_start_s` after its pod runs. When the bot's image
    changed since the standby last booted (`image_changed`), the boot's pre-pull fetches it in
    `image_pull_s` from K3s ready on, and the bot's pod cannot start before that.
    `argocd_on_path` adds `argocd_sync_s` to K3s ready (a Git change while the standby was off).

    A bot starts in `pod_start_s + gateway_connect_s` (pod, then Discord's READY), reconnects in
    `gateway_connect_s` (after its laptop's network or a suspend) and has exited `bot_stop_s`
    after it was told to stop; it answers until then."""

    ec2_start_s: float
    os_boot_s: float
    k3s_ready_s: tuple[float, float]
    pod_start_s: float
    agent_start_s: float
    image_pull_s: float
    argocd_sync_s: float
    ec2_stop_s: float
    gateway_connect_s: float
    bot_stop_s: float
    image_changed: bool = False
    argocd_on_path: bool = False

    def __post_init__(self) -> None:
        low, high = self.k3s_ready_s
        if not 0 <= low <= high:
            raise ValueError(f"k3s_ready_s {self.k3s_ready_s!r} must be 0 <= low <= high")
        for name in (
            "ec2_start_s",
            "os_boot_s",
            "pod_start_s",
            "agent_start_s",
            "image_pull_s",
            "argocd_sync_s",
            "ec2_stop_s",
            "gateway_connect_s",
            "bot_stop_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def k3s_ready(self, rng: random.Random) -> float:
        low, high = self.k3s_ready_s
        extra = self.argocd_sync_s if self.argocd_on_path else 0.0
        return rng.uniform(low, high) + extra

    @property
    def bot_start_s(self) -> float:
        return self.pod_start_s + self.gateway_connect_s

    def agent_ready_range(self) -> tuple[float, float]:
        """`running` until the standby's agent's first heartbeat: shortest and longest."""
        low, high = self.k3s_ready_s
        extra = self.os_boot_s + self.pod_start_s + self.agent_start_s
        extra += self.argocd_sync_s if self.argocd_on_path else 0.0
        return low + extra, high + extra


@dataclass(frozen=True)
class Outage:
    """`channel` down from `start` for `seconds` (trace seconds). A laptop outage is a death
    (power cut, crash: processes gone) unless `asleep` (suspended: processes frozen)."""

    channel: str
    start: float
    seconds: float
    asleep: bool = False

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise TraceError(f"channel {self.channel!r} must be one of {', '.join(CHANNELS)}")
        if self.start < 0 or self.seconds <= 0:
            raise TraceError(
                f"{self.channel} outage at {self.start:g} s for {self.seconds:g} s: start >= 0, length > 0"
            )
        if self.asleep and self.channel != "laptop":
            raise TraceError(f"only the laptop can be asleep, not {self.channel}")

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(frozen=True)
class Trace:
    """A health history: outages on the four channels, over `duration` seconds.

    - `laptop`: the laptop's stack (K3s, agent, health service, bot) is up and awake;
    - `net`: the laptop's internet (both paths below and Discord);
    - `funnel`: the probe's path (Tailscale Funnel, AWS to the laptop's health service);
    - `aws`: the laptop's path to the watchdog's Function URL (its heartbeats).

    Overlapping laptop outages must agree on asleep or dead."""

    name: str
    title: str
    duration: float
    outages: tuple[Outage, ...]

    def __post_init__(self) -> None:
        for o in self.outages:
            if o.end > self.duration:
                raise TraceError(
                    f"trace {self.name!r}: an outage ends at {o.end:g} s, after the trace ({self.duration:g})"
                )
        laptop = sorted((o for o in self.outages if o.channel == "laptop"), key=lambda o: o.start)
        for a, b in itertools.pairwise(laptop):
            if b.start < a.end and a.asleep != b.asleep:
                raise TraceError(
                    f"trace {self.name!r}: overlapping laptop outages at {b.start:g} s mix asleep and dead"
                )

    @property
    def incident_at(self) -> float | None:
        return min((o.start for o in self.outages), default=None)

    def down_spans(self, channel: str) -> list[tuple[float, float, bool]]:
        """Merged [start, end) spans when `channel` is down, with `asleep`."""
        spans = sorted((o.start, o.end, o.asleep) for o in self.outages if o.channel == channel)
        merged: list[tuple[float, float, bool]] = []
        for start, end, asleep in spans:
            if merged and start <= merged[-1][1]:
                s, e, a = merged[-1]
                merged[-1] = (s, max(e, end), a)
            else:
                merged.append((start, end, asleep))
        return merged

    def is_down(self, channel: str, t: float) -> bool:
        return any(s <= t < e for s, e, _ in self.down_spans(channel))

    def laptop_fine(self, t: float) -> bool:
        """The laptop could answer on Discord: up, awake and online."""
        return not self.is_down("laptop", t) and not self.is_down("net", t)


def make_trace(name: str, title: str, outages: Sequence[Outage], tail_s: float) -> Trace:
    """A trace that lasts until `tail_s` after its last outage ends."""
    if not outages:
        raise TraceError(f"trace {name!r} needs at least one outage")
    end = max(o.end for o in outages)
    return Trace(name, title, end + tail_s, tuple(sorted(outages, key=lambda o: (o.start, o.channel))))
