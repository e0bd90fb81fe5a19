"""The policies compared side by side.

Ours are the watchdog's own settings: `hfo_watchdog.config.Settings.from_env` with the shipped
defaults plus a few overrides (environment variables, exactly as a deployment sets them), so the
cross-field rules of the real configuration apply and no default is copied here. `--define
KEY=VALUE` adds a policy `ours-custom` with the user's overrides.

- `ours`: the shipped defaults (docs/configuration.md);
- `ours-hb5`: heartbeats every 5 s, lease TTL 20 s (twice the heartbeat invocations: the idle
  cost column says what that costs);
- `ours-no-prewarm`: pre-warm off (HFO_PREWARM_MAX_PER_HOUR=0), when the watchdog has it;
- `seed`: the seed tutorial's watchdog (probe every 5 min, start on one failure, stop on one
  success, no lease, no agent).

The bot's behaviour after a pause follows the shipped bot: lease-aware (asks its agent before it
connects) when hfo_bot has its lease gate (hfo_bot.lease_gate), otherwise not. `--define
bot.lease_aware=true|false` overrides it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hfo_drill.sim.world import Setup
from hfo_watchdog.config import Settings, SettingsError

# What Settings.from_env requires besides the policy: placeholders, never used by the simulator.
_REQUIRED_ENV = {
    "HFO_TABLE_NAME": "hfo-bench",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz",
    "HFO_HMAC_SECRET_ARN": "hfo/hmac",
}
SIM_KEYS = ("bot.lease_aware",)
SEED_TICK_S = 300.0


class PolicyError(ValueError):
    """A policy override that the watchdog's configuration or the simulator refuses."""


def shipped_bot_is_lease_aware() -> bool:
    return importlib.util.find_spec("hfo_bot.lease_gate") is not None


@dataclass(frozen=True)
class OurPolicy:
    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    sim: Mapping[str, str] = field(default_factory=dict)
    title: str = ""

    @functools.cached_property
    def settings(self) -> Settings:
        try:
            return Settings.from_env({**_REQUIRED_ENV, **self.env})
        except SettingsError as exc:
            raise PolicyError(f"{self.name}: {exc}") from None

    @functools.cached_property
    def setup(self) -> Setup:
        s = self.settings
        aware = self.sim.get("bot.lease_aware")
        return Setup(
            policy=s.policy,
            tick_s=float(s.tick_interval_s),
            max_skew_s=float(s.max_skew_s),
            lease_aware_bot=shipped_bot_is_lease_aware() if aware is None else aware == "true",
        )


@dataclass(frozen=True)
class SeedPolicy:
    name: str = "seed"
    tick_s: float = SEED_TICK_S
    title: str = "the seed tutorial: probe every 5 min through Funnel; start EC2 on 1 failure, stop on 1 success"


Policy = OurPolicy | SeedPolicy


def _has(env_name: str) -> bool:
    """Whether the shipped watchdog reads this setting (it is among its Policy's fields)."""
    try:
        Settings.from_env({**_REQUIRED_ENV, env_name: "not-a-number"})
    except SettingsError as exc:
        return exc.variable == env_name
    return False


OURS = OurPolicy("ours", title="the shipped defaults")
HB5 = OurPolicy(
    "ours-hb5",
    {"HFO_HEARTBEAT_INTERVAL_S": "5", "HFO_LEASE_TTL_S": "20"},
    title="heartbeat every 5 s, lease TTL 20 s",
)
NO_PREWARM = OurPolicy("ours-no-prewarm", {"HFO_PREWARM_MAX_PER_HOUR": "0"}, title="pre-warm off")
SEED = SeedPolicy()


def catalogue() -> dict[str, Policy]:
    policies: list[Policy] = [OURS, HB5]
    if _has("HFO_PREWARM_MAX_PER_HOUR"):
        policies.append(NO_PREWARM)
    policies.append(SEED)
    return {p.name: p for p in policies}


# What `make bench-failover` runs by default (the others with --policies: each costs CPU time).
DEFAULT_POLICIES = tuple(n for n in catalogue() if n != HB5.name)


def custom(defines: Sequence[str], name: str = "ours-custom") -> OurPolicy:
    """A policy from `--define KEY=VALUE` overrides: HFO_* settings of the watchdog (validated by
    its own configuration) or the simulator's `bot.lease_aware`."""
    env: dict[str, str] = {}
    sim: dict[str, str] = {}
    for text in defines:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise PolicyError(f"--define {text!r}: expected KEY=VALUE")
        if key in SIM_KEYS:
            if value not in ("true", "false"):
                raise PolicyError(f"--define {key}: must be true or false, got {value!r}")
            sim[key] = value
        elif key.startswith("HFO_") and _has(key):
            env[key] = value
        else:
            raise PolicyError(
                f"--define {key}: not a setting of the watchdog's policy (HFO_..., docs/configuration.md)"
                f" nor one of the simulator's ({', '.join(SIM_KEYS)})"
            )
    policy = OurPolicy(name, env, sim, title=", ".join(defines))
    policy.setup  # noqa: B018 - validates now, with the watchdog's own cross-field rules
    return policy


def describe(p: Policy) -> str:
    if isinstance(p, SeedPolicy):
        return f"{p.name}: {p.title}"
    q = p.setup.policy
    fields = ", ".join(f"{k}={v}" for k, v in vars(q).items())
    bot = "lease-aware bot" if p.setup.lease_aware_bot else "bot without lease check"
    return f"{p.name} ({p.title}): tick {p.setup.tick_s:g} s; {bot}; {fields}"
