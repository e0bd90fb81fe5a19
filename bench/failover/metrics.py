"""The figures of one run, and their mean over several runs.

Definitions (docs/benchmarks.md repeats them):

- decision: seconds from the trace's first incident to the first failover decision at or after it
  (ours: the engine's emergency move to failing_over; the seed: its EC2 start). None: no failover.
- bot back: seconds from the first incident to the end of the first downtime that starts at or
  after it. None: the bot never went down.
- downtime: seconds, over the whole trace, during which no site's bot answers on Discord. The
  laptop's own outage counts: the user has no bot either way. Averaged over the runs; `worst` is
  the largest of them.
- false failovers: failover decisions made while the laptop was fine: up, awake and online (its
  Funnel path or its AWS path may have been down). It could have kept answering on Discord.
- EC2 starts; EC2 running minutes (seconds in `running`); cost of the billed seconds (per second,
  one-minute minimum per start) at the price in figures.toml.
- two bots: seconds during which both sites' bots answer (each command answered twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from failover.boot import Price
from failover.world import Run


@dataclass(frozen=True)
class Figures:
    decision_s: float | None
    back_s: float | None
    downtime_s: float
    false_failovers: float
    ec2_starts: float
    ec2_running_min: float
    cost_usd: float
    two_bots_s: float
    runs: int = 1
    worst_downtime_s: float = 0.0  # the largest downtime of the runs averaged
    decided_runs: int = 0  # runs with a failover decision (decision_s is their mean)
    back_runs: int = 0


def downtime_spans(run: Run) -> list[tuple[int, int]]:
    """[start, end) of each spell with no bot answering anywhere."""
    spans, start = [], None
    for t, (a, b) in enumerate(zip(run.laptop_bot, run.standby_bot, strict=True)):
        if not a and not b:
            if start is None:
                start = t
        elif start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, len(run.laptop_bot)))
    return spans


def figures(run: Run, price: Price) -> Figures:
    incident = run.trace.incident_at
    decision = back = None
    if incident is not None:
        decision = next((t - incident for t in run.failovers if t >= incident), None)
        back = next((end - incident for start, end in downtime_spans(run) if start >= incident), None)
    downtime = sum(1 for a, b in zip(run.laptop_bot, run.standby_bot, strict=True) if not a and not b)
    return Figures(
        decision_s=decision,
        back_s=back,
        downtime_s=downtime,
        worst_downtime_s=downtime,
        false_failovers=sum(1 for t in run.failovers if run.trace.laptop_fine(t)),
        ec2_starts=len(run.ec2_starts),
        ec2_running_min=run.running_s / 60.0,
        cost_usd=price.cost(run.billed_s),
        two_bots_s=sum(1 for a, b in zip(run.laptop_bot, run.standby_bot, strict=True) if a and b),
        decided_runs=int(decision is not None),
        back_runs=int(back is not None),
    )


def _mean_of(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def mean(all_figures: Sequence[Figures]) -> Figures:
    """The mean over runs; decision and bot back over the runs that have one."""
    if not all_figures:
        raise ValueError("no runs to average")
    n = len(all_figures)

    def avg(name: str) -> float:
        return float(sum(getattr(f, name) for f in all_figures)) / n

    return Figures(
        decision_s=_mean_of([f.decision_s for f in all_figures]),
        back_s=_mean_of([f.back_s for f in all_figures]),
        downtime_s=avg("downtime_s"),
        false_failovers=avg("false_failovers"),
        ec2_starts=avg("ec2_starts"),
        ec2_running_min=avg("ec2_running_min"),
        cost_usd=avg("cost_usd"),
        two_bots_s=avg("two_bots_s"),
        runs=n,
        worst_downtime_s=max(f.worst_downtime_s for f in all_figures),
        decided_runs=sum(f.decided_runs for f in all_figures),
        back_runs=sum(f.back_runs for f in all_figures),
    )
