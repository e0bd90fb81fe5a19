"""Scaling the watchdog's configuration down for a drill of minutes: one production minute is
one drill second (docs/demo.md, "Timings"). The function's environment goes in, as Terraform gave
it; the accelerated environment comes out, with each change and its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

TIME_FACTOR = 60  # one production minute is one drill second
# Durations divided by TIME_FACTOR, rounded up to whole seconds (the watchdog reads them as
# integers), then raised to the smallest value it accepts (docs/configuration.md).
SCALED_DURATIONS: Mapping[str, int] = {
    "HFO_TICK_INTERVAL_S": 1,
    "HFO_HEARTBEAT_INTERVAL_S": 1,
    "HFO_LEASE_TTL_S": 5,
    "HFO_STOP_GRACE_S": 0,
    "HFO_DOWN_HEARTBEAT_S": 10,
    "HFO_RECOVERY_STEADY_S": 0,
    "HFO_MIN_STATE_S": 0,
    "HFO_START_COOLDOWN_S": 0,
    "HFO_STANDBY_MAX_RUNTIME_S": 600,
}
# The fast-failover settings, scaled the same way when the environment has them (Terraform sets
# them all; an environment from before them keeps the watchdog's defaults). A probe lease TTL of 0
# (no renewal over the probe path) stays 0.
OPTIONAL_DURATIONS: Mapping[str, int] = {
    "HFO_PREWARM_SILENCE_S": 1,
    "HFO_PREWARM_HOLD_S": 10,
    "HFO_PROBE_LEASE_TTL_S": 0,
    "HFO_PROBE_RENEW_AFTER_S": 0,
    "HFO_HANDOVER_HEARTBEAT_INTERVAL_S": 1,
}
# Network timeouts do not shrink with the story (a TLS handshake on a loaded machine takes what
# it takes); they are divided by 10 and must still fit in one tick.
NETWORK_FACTOR = 10
NETWORK_TIMEOUTS = ("HFO_PROBE_CONNECT_TIMEOUT_S", "HFO_PROBE_READ_TIMEOUT_S")


class DrillConfigError(ValueError):
    """A function environment the drill cannot scale; names the variable."""


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None
    after: str
    why: str


def _number(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name)
    if raw is None:
        raise DrillConfigError(f"{name}: missing from the function's environment")
    try:
        value = float(raw)
    except ValueError:
        raise DrillConfigError(f"{name}: {raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise DrillConfigError(f"{name}: {raw!r} must be a finite number >= 0")
    return value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def accelerate(env: Mapping[str, str], factor: int = TIME_FACTOR) -> tuple[dict[str, str], list[Change]]:
    """The function's environment with its timings scaled down for the drill, and what changed
    and why. Counts (failed probes, good probes) and everything else are kept as given.

    1. every duration of SCALED_DURATIONS: divided by `factor`, rounded up, raised to the
       watchdog's minimum;
    2. the probe's connect and read timeouts: divided by NETWORK_FACTOR, and shrunk further if
       both together would not fit in one tick;
    3. the watchdog's timing rules, restored if rounding broke them: lease TTL >= 3 heartbeat
       intervals, heartbeat silence > lease TTL + stop grace + heartbeat interval, a probe lease
       TTL (when not 0) > one tick + the probe's timeouts, renewals no sooner than one heartbeat
       interval late.
    """
    if factor < 1:
        raise DrillConfigError(f"time factor: must be at least 1, got {factor}")
    out = dict(env)
    changes: list[Change] = []

    def put(name: str, value: float, why: str) -> None:
        text = _fmt(value)
        if out.get(name) != text:
            changes.append(Change(name, out.get(name), text, why))
            out[name] = text

    scaled = {**SCALED_DURATIONS, **{k: v for k, v in OPTIONAL_DURATIONS.items() if k in env}}
    for name, minimum in scaled.items():
        value = math.ceil(_number(env, name) / factor)
        why = f"/{factor}, rounded up"
        if value < minimum:
            value, why = minimum, f"/{factor} is below the watchdog's minimum {minimum}"
        put(name, value, why)

    tick = _number(out, "HFO_TICK_INTERVAL_S")
    timeouts = {name: round(_number(env, name) / NETWORK_FACTOR, 2) for name in NETWORK_TIMEOUTS}
    total = sum(timeouts.values())
    if total >= tick:
        shrink = 0.8 * tick / total
        timeouts = {name: max(0.1, round(v * shrink, 2)) for name, v in timeouts.items()}
    for name, seconds in timeouts.items():
        put(name, seconds, f"/{NETWORK_FACTOR} (a network timeout), connect + read within one tick")

    hb = _number(out, "HFO_HEARTBEAT_INTERVAL_S")
    if _number(out, "HFO_LEASE_TTL_S") < 3 * hb:
        put("HFO_LEASE_TTL_S", 3 * hb, "raised to 3 heartbeat intervals (one lost heartbeat must not fence)")
    need = _number(out, "HFO_LEASE_TTL_S") + _number(out, "HFO_STOP_GRACE_S") + hb
    if _number(out, "HFO_DOWN_HEARTBEAT_S") <= need:
        put("HFO_DOWN_HEARTBEAT_S", math.floor(need) + 1, "raised above lease TTL + stop grace + heartbeat interval")
    if "HFO_PREWARM_SILENCE_S" in out and _number(out, "HFO_PREWARM_SILENCE_S") < 3 * hb:
        # Production waits 1.5 heartbeat intervals; a drill heartbeat on a loaded machine can be
        # that late, and a pre-warm during the Funnel outage would start EC2 for nothing.
        put(
            "HFO_PREWARM_SILENCE_S",
            3 * hb,
            "raised to 3 heartbeat intervals (drill heartbeats on a busy machine run late)",
        )
    if _number(out, "HFO_PROBE_LEASE_TTL_S") if "HFO_PROBE_LEASE_TTL_S" in out else 0:
        gap = tick + sum(_number(out, name) for name in NETWORK_TIMEOUTS)
        if _number(out, "HFO_PROBE_LEASE_TTL_S") <= gap:
            put("HFO_PROBE_LEASE_TTL_S", math.floor(gap) + 1, "raised above one tick + the probe's timeouts")
        if "HFO_PROBE_RENEW_AFTER_S" in out and 0 < _number(out, "HFO_PROBE_RENEW_AFTER_S") < hb:
            put("HFO_PROBE_RENEW_AFTER_S", hb, "raised to one heartbeat interval (a heartbeat is not late before one)")
    return out, changes
