"""Command line of the failover-quality benchmark (bench/failover_quality.py)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from failover import boot, ours, policies, runner, table
from failover.metrics import figures
from failover.traces import CATALOGUE

DEFAULT_OUT = Path("build/bench/timeline.png")
REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLOT_TRACE = "outage-10m"


def _runs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--runs {text!r} is not a whole number (1-{runner.MAX_RUNS})") from None
    if not 1 <= value <= runner.MAX_RUNS:
        raise argparse.ArgumentTypeError(f"--runs {value} is out of range: 1-{runner.MAX_RUNS}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed {text!r} is not a whole number (0-2**63)") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"--seed {value} is out of range: 0-2**63")
    return value


def _trace(text: str) -> str:
    if text not in CATALOGUE:
        raise argparse.ArgumentTypeError(f"unknown trace {text!r}; one of: {', '.join(CATALOGUE)}")
    return text


def _traces(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--traces needs at least one of: {', '.join(CATALOGUE)}")
    return [_trace(n) for n in dict.fromkeys(names)]


def _policy(text: str) -> str:
    if text not in policies.POLICIES:
        raise argparse.ArgumentTypeError(f"unknown policy {text!r}; one of: {', '.join(policies.POLICIES)}")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="failover_quality.py",
        description="Replay health histories through the real decision engine; compare policies.",
    )
    p.add_argument("--runs", type=_runs, default=10, help="replays per trace, schedule phases drawn anew (default 10)")
    p.add_argument("--seed", type=_seed, default=1, help="seed of every random draw (default 1)")
    p.add_argument("--traces", type=_traces, default=list(CATALOGUE), help="comma-separated traces (default: all)")
    p.add_argument("--plot-trace", type=_trace, default=DEFAULT_PLOT_TRACE, help=f"default {DEFAULT_PLOT_TRACE}")
    p.add_argument("--plot-policy", type=_policy, default=policies.DEFAULT.name, help="default ours-default")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"timeline PNG (default {DEFAULT_OUT})")
    p.add_argument("--no-plot", action="store_true", help="print the table only")
    p.add_argument("--figures", type=Path, default=boot.FIGURES, help="boot figures and price (TOML)")
    p.add_argument(
        "--argocd-on-path", action="store_true", help="put Argo CD's catch-up on every standby boot's critical path"
    )
    p.add_argument(
        "--agent-clock",
        choices=ours.AGENT_CLOCKS,
        default="monotonic",
        help="clock of the laptop agent's lease: monotonic (as hfo_site is built; stands still while the"
        " laptop sleeps) or boottime (counts the sleep)",
    )
    return p


def _shown(path: Path) -> str:
    """A path as the reader knows it: relative to the repository when it lies inside."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def headline(rows: Sequence[runner.Row]) -> list[str]:
    """Our defaults against the seed on the traces the README quotes (when they were run)."""
    by = {(r.trace.name, r.policy): r.figures for r in rows}
    ours, seed = policies.DEFAULT.name, policies.SEED.name
    out = []
    if ("outage-10m", ours) in by and ("outage-10m", seed) in by:
        a, b = by["outage-10m", ours], by["outage-10m", seed]
        out.append(
            f"10-minute outage: downtime {a.downtime_s:.0f} s (ours) vs {b.downtime_s:.0f} s (seed);"
            f" two bots {a.two_bots_s:.0f} s vs {b.two_bots_s:.0f} s"
        )
    for name in ("flap-20", "funnel-only-30m"):
        if (name, ours) in by and (name, seed) in by:
            a, b = by[name, ours], by[name, seed]
            out.append(
                f"{name}: false failovers {table.count(a.false_failovers)} vs {table.count(b.false_failovers)};"
                f" two bots {a.two_bots_s:.0f} s vs {b.two_bots_s:.0f} s;"
                f" EC2 {a.ec2_running_min:.1f} min vs {b.ec2_running_min:.1f} min"
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        model = boot.load(args.figures, argocd_on_path=args.argocd_on_path)
    except boot.FiguresError as exc:
        print(f"failover_quality.py: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    chosen = list(policies.POLICIES.values())
    print("Failover quality: the real decision engine replayed on health traces (docs/benchmarks.md)")
    print(
        f"runs per trace: {args.runs}, seed: {args.seed}; laptop agent's clock: {args.agent_clock};"
        f" figures: {_shown(args.figures)}"
    )
    for p in chosen:
        print(f"  {policies.describe(p)}")
    print(
        f"  standby boot (StartInstances to bot answering): ours {model.our_critical_path_s} s"
        f" (+ heartbeat), seed {model.ec2_start_s + model.seed_bot_ready_s} s;"
        f" Argo CD catch-up {'ON' if model.argocd_on_path else 'off'} the path;"
        f" {model.price.instance_type} at {model.price.usd_per_hour} USD/h ({model.price.region})"
    )
    print()
    rows = runner.run_all(
        model, chosen, args.traces, runs=args.runs, seed_value=args.seed, agent_clock=args.agent_clock
    )
    print(table.render(rows))
    print()
    for line in headline(rows):
        print(line)
    overlap = {r.policy: 0 for r in rows if r.policy != policies.SEED.name}
    where: dict[str, list[str]] = {name: [] for name in overlap}
    for r in rows:
        if r.policy in overlap and r.lease_overlap_s:
            overlap[r.policy] += r.lease_overlap_s
            where[r.policy].append(r.trace.name)
    for name, seconds in overlap.items():
        detail = f" (in {', '.join(where[name])})" if where[name] else ""
        print(f"{name}: seconds with both sites holding a fresh lease, all runs: {seconds}{detail}")
    if not args.no_plot:
        from failover import plot  # matplotlib only when a plot is wanted

        trace, phases = runner.draw(args.seed, args.plot_trace, 0)
        policy = policies.POLICIES[args.plot_policy]
        run = runner.replay(policy, model, trace, phases, agent_clock=args.agent_clock)
        path = plot.draw(run, figures(run, model.price), policies.describe(policy), args.out)
        print(f"timeline ({args.plot_trace}, {args.plot_policy}, run 0): {path}")
    print(f"elapsed: {time.perf_counter() - started:.1f} s")
    return 0
