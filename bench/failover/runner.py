"""Replay every trace under every policy, many times, deterministically from one seed.

Run r of a trace draws, from `random.Random(f"{seed}:{trace}:{r}")`, the trace itself (for the
random ones) and the schedule's phases (the second our ticks fire, the laptop's heartbeat phase,
the second the seed's probe fires); the simulator's own draws (agents' jitter, each standby
boot's K3s time) come from the same key. Every policy replays the same trace with the same draws,
so the comparison is like for like; the runs spread the schedule's luck.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from hfo_drill.sim.model import BootModel, Trace
from hfo_drill.sim.run import Phases, Result, simulate

from failover import boot as boot_figures
from failover.policies import SEED, OurPolicy, Policy, SeedPolicy
from failover.stats import Estimate, estimate
from failover.traces import make

MAX_RUNS = 10_000
DEFAULT_RUNS = 100
TraceSource = Callable[[random.Random], Trace]


def rng_for(seed_value: int, trace: str, run: int) -> random.Random:
    return random.Random(f"{seed_value}:{trace}:{run}")


def draw(seed_value: int, trace_name: str, run: int, source: TraceSource | None = None) -> tuple[Trace, Phases]:
    rng = rng_for(seed_value, trace_name, run)
    trace = (source or (lambda r: make(trace_name, r)))(rng)
    return trace, Phases.draw(rng)


def replay(
    policy: Policy,
    boot: BootModel,
    trace: Trace,
    phases: Phases,
    *,
    key: str,
    minimum_billed_s: float = 60.0,
    signed: bool = False,
) -> Result:
    if isinstance(policy, SeedPolicy):
        return simulate(
            trace,
            boot,
            OurPolicy("_").setup,
            design="seed",
            phases=phases,
            seed=key,
            seed_tick_s=policy.tick_s,
            minimum_billed_s=minimum_billed_s,
        )
    setup = replace(policy.setup, signed=signed)
    return simulate(trace, boot, setup, design="ours", phases=phases, seed=key, minimum_billed_s=minimum_billed_s)


@dataclass(frozen=True)
class Row:
    """One trace under one policy, over all runs."""

    trace: Trace  # run 0's realisation (the random traces differ between runs)
    policy: str
    runs: int
    downtime: Estimate
    two_bots_mean_s: float
    two_bots_max_s: float
    lease_overlap_s: float  # ours: seconds both sites held a fresh lease, all runs together (must be 0)
    false_failovers: float  # mean per run
    starts_failover: float  # mean EC2 starts per run, by purpose
    starts_prewarm: float
    ec2_minutes: float
    cost_usd: float  # EC2 billed seconds at the price, mean per run
    idle_month_usd: float | None  # `make cost`'s idle month for this policy's settings (ours only)
    decision_s: float | None  # mean over the runs that had one
    decided_runs: int
    back_s: float | None
    back_runs: int
    # This policy's downtime minus the seed design's, run by run on the same draws (paired): its
    # interval is much narrower than the two policies' own intervals side by side. None for the
    # seed itself, or when the seed design was not run.
    vs_seed: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None, digits: int = 3) -> float | None:
            return None if v is None else round(v, digits)

        return {
            "trace": self.trace.name,
            "title": self.trace.title,
            "policy": self.policy,
            "runs": self.runs,
            "downtime_s": self.downtime.to_dict(),
            "two_bots_s": {"mean": r(self.two_bots_mean_s), "max": r(self.two_bots_max_s)},
            "lease_overlap_s": r(self.lease_overlap_s),
            "false_failovers": r(self.false_failovers),
            "ec2_starts": {"failover": r(self.starts_failover), "prewarm": r(self.starts_prewarm)},
            "ec2_minutes": r(self.ec2_minutes),
            "cost_usd": r(self.cost_usd, 6),
            "idle_month_usd": r(self.idle_month_usd, 4),
            "decision_s": r(self.decision_s),
            "decided_runs": self.decided_runs,
            "back_s": r(self.back_s),
            "back_runs": self.back_runs,
            "downtime_vs_seed_s": None if self.vs_seed is None else self.vs_seed.to_dict(),
        }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _known_mean(values: Sequence[float | None]) -> tuple[float | None, int]:
    known = [v for v in values if v is not None]
    return (sum(known) / len(known) if known else None), len(known)


def summarise(
    trace: Trace,
    policy: Policy,
    results: Sequence[Result],
    price: boot_figures.Price,
    seed_results: Sequence[Result] | None = None,
) -> Row:
    idle: float | None = None
    if isinstance(policy, OurPolicy):
        setup = policy.setup
        idle = boot_figures.idle_month_usd(setup.policy.heartbeat_interval_s, setup.tick_s)
    decision, decided = _known_mean([r.decision_s for r in results])
    back, backed = _known_mean([r.back_s for r in results])
    return Row(
        trace=trace,
        policy=policy.name,
        runs=len(results),
        downtime=estimate([r.downtime_s for r in results]),
        two_bots_mean_s=_mean([r.two_bots_s for r in results]),
        two_bots_max_s=max(r.two_bots_s for r in results),
        lease_overlap_s=sum(r.lease_overlap_s for r in results),
        false_failovers=_mean([float(r.false_failovers) for r in results]),
        starts_failover=_mean([float(r.ec2_starts.get("failover", 0)) for r in results]),
        starts_prewarm=_mean([float(r.ec2_starts.get("prewarm", 0)) for r in results]),
        ec2_minutes=_mean([r.running_s / 60.0 for r in results]),
        cost_usd=_mean([price.cost(r.billed_s) for r in results]),
        idle_month_usd=idle,
        decision_s=decision,
        decided_runs=decided,
        back_s=back,
        back_runs=backed,
        vs_seed=None
        if seed_results is None or policy.name == SEED.name
        else estimate([a.downtime_s - b.downtime_s for a, b in zip(results, seed_results, strict=True)]),
    )


def trace_rows(
    figures: boot_figures.Figures,
    policies: Sequence[Policy],
    name: str,
    fixed: Trace | None,
    *,
    runs: int,
    seed_value: int,
    signed: bool,
) -> list[Row]:
    """Every policy on one trace (a catalogue name, or `fixed`: a user's history), `runs` times."""
    source: TraceSource | None = None if fixed is None else (lambda rng: fixed)
    price = figures.price
    per_policy: dict[str, list[Result]] = {p.name: [] for p in policies}
    first: Trace | None = None
    for r in range(runs):
        trace, phases = draw(seed_value, name, r, source)
        first = first or trace
        for p in policies:
            key = f"{seed_value}:{name}:{r}"
            result = replay(
                p, figures.boot, trace, phases, key=key, minimum_billed_s=price.minimum_billed_s, signed=signed
            )
            per_policy[p.name].append(result)
    assert first is not None
    seed_results = per_policy.get(SEED.name)
    return [summarise(first, p, per_policy[p.name], price, seed_results) for p in policies]


def run_all(
    figures: boot_figures.Figures,
    policies: Sequence[Policy],
    traces: Sequence[tuple[str, Trace | None]],
    *,
    runs: int = DEFAULT_RUNS,
    seed_value: int = 1,
    progress: bool = False,
    signed: bool = False,
    jobs: int = 1,
) -> list[Row]:
    """Rows for every trace (in the order given) and policy. `jobs` > 1 runs traces in that many
    processes; every run's draws come from its own key, so the table is the same."""
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs {runs} is out of range: 1-{MAX_RUNS}")
    kwargs = {"runs": runs, "seed_value": seed_value, "signed": signed}
    done: dict[str, list[Row]] = {}

    def note(name: str) -> None:
        if progress:
            print(f"  ... {name}: {runs} runs x {len(policies)} policies done", file=sys.stderr, flush=True)

    if jobs <= 1:
        for name, fixed in traces:
            done[name] = trace_rows(figures, policies, name, fixed, **kwargs)  # type: ignore[arg-type]
            note(name)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(trace_rows, figures, policies, name, fixed, **kwargs): name  # type: ignore[arg-type]
                for name, fixed in traces
            }
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                note(futures[future])
    return [row for name, _ in traces for row in done[name]]
