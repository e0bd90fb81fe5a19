"""Builders shared by the simulator's tests: boot models, setups from the watchdog's own
configuration, and traces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hfo_drill.sim.model import BootModel, Outage, Trace, make_trace
from hfo_drill.sim.world import Setup
from hfo_watchdog.config import Settings

REQUIRED_ENV = {
    "HFO_TABLE_NAME": "hfo-test",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz",
    "HFO_HMAC_SECRET_ARN": "hfo/hmac",
}

# The benchmark's figures (bench/failover/figures.toml), K3s drawn in 30-60 s.
REALISTIC = BootModel(
    ec2_start_s=20,
    os_boot_s=15,
    k3s_ready_s=(30, 60),
    pod_start_s=5,
    agent_start_s=5,
    image_pull_s=25,
    argocd_sync_s=70,
    ec2_stop_s=45,
    gateway_connect_s=3,
    bot_stop_s=5,
)
# A fixed boot, for exact assertions.
FIXED = replace(REALISTIC, k3s_ready_s=(45, 45))


def setup(env: Mapping[str, str] | None = None, **overrides: object) -> Setup:
    """A setup from the watchdog's configuration: its defaults plus `env` (HFO_... variables)."""
    s = Settings.from_env({**REQUIRED_ENV, **(env or {})})
    base = Setup(policy=s.policy, tick_s=float(s.tick_interval_s), max_skew_s=float(s.max_skew_s))
    return replace(base, **overrides)  # type: ignore[arg-type]


def trace(*outages: Outage, tail_s: float = 2400.0, name: str = "test") -> Trace:
    return make_trace(name, name, outages, tail_s)


LEAD_S = 900.0
