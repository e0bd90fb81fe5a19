"""The three policies compared side by side.

- `ours-default`: the documented defaults (docs/configuration.md), ticking every 60 s.
- `ours-speed`: still one tick a minute (EventBridge's floor; the watchdog probes once per tick),
  but shorter windows: down after 1 failed probe AND 60 s without heartbeat (both signals must
  still agree), heartbeats every 5 s, lease TTL 20 s, recovery after 2 good probes and 120 s of
  steady heartbeats. The stop grace stays 30 s (the bot's termination grace is 20 s). It doubles
  the heartbeat invocations of the Lambda, the main idle cost.
- `seed`: the seed tutorial's watchdog (probe every 5 min, start on one failure, stop on one
  success, no lease).
"""

from __future__ import annotations

from dataclasses import replace

from hfo_watchdog.core.model import Policy

from failover.ours import OurPolicy
from failover.seed import SeedPolicy

PROBE_TIMEOUTS_S = 3 + 5  # HFO_PROBE_CONNECT_TIMEOUT_S + HFO_PROBE_READ_TIMEOUT_S defaults

DEFAULT = OurPolicy("ours-default", Policy(), tick_s=60)
SPEED = OurPolicy(
    "ours-speed",
    replace(
        Policy(),
        down_probes=1,
        down_heartbeat_s=60.0,
        heartbeat_interval_s=5.0,
        lease_ttl_s=20.0,
        recovery_probes=2,
        recovery_steady_s=120.0,
    ),
    tick_s=60,
)
SEED = SeedPolicy("seed", tick_s=300)

POLICIES: dict[str, OurPolicy | SeedPolicy] = {p.name: p for p in (DEFAULT, SPEED, SEED)}


def check_timing(p: OurPolicy) -> None:
    """The cross-field rules the watchdog enforces at cold start (docs/configuration.md): a
    policy that breaks one is not a configuration a user could deploy."""
    q = p.policy
    if not q.lease_ttl_s + q.stop_grace_s + q.heartbeat_interval_s < q.down_heartbeat_s:
        raise ValueError(
            f"{p.name}: lease_ttl_s + stop_grace_s + heartbeat_interval_s"
            f" ({q.lease_ttl_s:g} + {q.stop_grace_s:g} + {q.heartbeat_interval_s:g}) must be below"
            f" down_heartbeat_s ({q.down_heartbeat_s:g})"
        )
    if not q.heartbeat_interval_s * 3 <= q.lease_ttl_s:
        raise ValueError(
            f"{p.name}: heartbeat_interval_s * 3 ({q.heartbeat_interval_s * 3:g}) must be at most"
            f" lease_ttl_s ({q.lease_ttl_s:g})"
        )
    if not p.tick_s > PROBE_TIMEOUTS_S:
        raise ValueError(f"{p.name}: the probe timeouts ({PROBE_TIMEOUTS_S} s) must be below tick_s ({p.tick_s})")
    if not 60 <= p.tick_s <= 3600:
        raise ValueError(f"{p.name}: tick_s {p.tick_s} is out of range: 60-3600 s (EventBridge's floor is a minute)")
    if q.heartbeat_interval_s != int(q.heartbeat_interval_s):
        raise ValueError(f"{p.name}: heartbeat_interval_s {q.heartbeat_interval_s:g} must be whole seconds here")


def describe(p: OurPolicy | SeedPolicy) -> str:
    if isinstance(p, SeedPolicy):
        return f"{p.name}: probe every {p.tick_s} s through Funnel; start EC2 on 1 failure, stop on 1 success; no lease"
    q = p.policy
    return (
        f"{p.name}: tick {p.tick_s} s; down after {q.down_probes} failed probe(s) AND {q.down_heartbeat_s:g} s"
        f" without heartbeat; heartbeat every {q.heartbeat_interval_s:g} s, lease TTL {q.lease_ttl_s:g} s,"
        f" stop grace {q.stop_grace_s:g} s; back after {q.recovery_probes} good probes and"
        f" {q.recovery_steady_s:g} s steady; cooldown {q.start_cooldown_s:g} s, min state {q.min_state_s:g} s"
    )


for _p in (DEFAULT, SPEED):
    check_timing(_p)
