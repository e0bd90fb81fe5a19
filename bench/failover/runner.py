"""Replay every trace under every policy, several times, deterministically from one seed.

Run r of a trace draws, from `random.Random(f"{seed}:{trace}:{r}")`, the trace itself (for the
random ones) and the schedule phases: the second of the minute our ticks fire, the second of the
interval the laptop heartbeats, the second of the 5 minutes the seed's probe fires. Every policy
replays the same trace in the same run, so the comparison is like for like; the runs spread the
schedule's luck (an outage just before or just after a tick).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from failover import ours, seed
from failover.boot import BootModel
from failover.metrics import Figures, figures, mean
from failover.ours import OurPolicy
from failover.seed import SeedPolicy
from failover.traces import CATALOGUE, Trace, make
from failover.world import Run

MAX_RUNS = 100


@dataclass(frozen=True)
class Phases:
    tick: int  # our tick's second within the minute
    heartbeat: int  # the laptop's heartbeat second within its interval (at most 60 s: a draw in 0-59)
    seed_tick: int  # the seed's probe second within its 5 minutes


def rng_for(seed_value: int, trace: str, run: int) -> random.Random:
    return random.Random(f"{seed_value}:{trace}:{run}")


def draw(seed_value: int, trace_name: str, run: int) -> tuple[Trace, Phases]:
    rng = rng_for(seed_value, trace_name, run)
    trace = make(trace_name, rng)
    return trace, Phases(tick=rng.randrange(3600), heartbeat=rng.randrange(3600), seed_tick=rng.randrange(3600))


def replay(
    policy: OurPolicy | SeedPolicy, boot: BootModel, trace: Trace, phases: Phases, *, agent_clock: str = "monotonic"
) -> Run:
    if isinstance(policy, SeedPolicy):
        return seed.simulate(policy, boot, trace, tick_phase=phases.seed_tick % policy.tick_s)
    interval = int(policy.policy.heartbeat_interval_s)
    return ours.simulate(
        policy,
        boot,
        trace,
        tick_phase=phases.tick % policy.tick_s,
        hb_phase=phases.heartbeat % interval,
        agent_clock=agent_clock,
    )


@dataclass(frozen=True)
class Row:
    trace: Trace  # run 0's realisation (the random traces differ between runs)
    policy: str
    figures: Figures
    lease_overlap_s: int  # ours: seconds both sites held a fresh lease, over all runs (must be 0)


def run_all(
    boot: BootModel,
    policies: Sequence[OurPolicy | SeedPolicy],
    trace_names: Iterable[str] = tuple(CATALOGUE),
    *,
    runs: int = 5,
    seed_value: int = 1,
    agent_clock: str = "monotonic",
) -> list[Row]:
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs {runs} is out of range: 1-{MAX_RUNS}")
    rows: list[Row] = []
    for name in trace_names:
        per_policy: dict[str, list[Figures]] = {p.name: [] for p in policies}
        overlap = dict.fromkeys(per_policy, 0)
        first: Trace | None = None
        for r in range(runs):
            trace, phases = draw(seed_value, name, r)
            first = first or trace
            for p in policies:
                run = replay(p, boot, trace, phases, agent_clock=agent_clock)
                per_policy[p.name].append(figures(run, boot.price))
                overlap[p.name] += run.lease_overlap_s
        assert first is not None
        rows.extend(Row(first, p.name, mean(per_policy[p.name]), overlap[p.name]) for p in policies)
    return rows
