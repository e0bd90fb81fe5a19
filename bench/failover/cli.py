"""Command line of the failover-quality benchmark (bench/failover_quality.py)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from failover import boot, policies, runner, table, tracefile
from failover.policies import Policy, PolicyError
from failover.traces import CATALOGUE, Trace, TraceError

DEFAULT_OUT = Path("build/bench/timeline.png")
REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("results") / "default.json"
DEFAULT_PLOT_TRACE = "outage-10m"


def _int_in(name: str, low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not a whole number ({low}-{high})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} {value} is out of range: {low}-{high}")
        return value

    return parse


def _trace(text: str) -> str:
    if text not in CATALOGUE:
        raise argparse.ArgumentTypeError(f"unknown trace {text!r}; one of: {', '.join(CATALOGUE)}")
    return text


def _traces(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--traces needs at least one of: {', '.join(CATALOGUE)}")
    return [_trace(n) for n in dict.fromkeys(names)]


def _policies(text: str) -> list[str]:
    known = policies.catalogue()
    if text.strip() == "all":
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--policies needs at least one of: {', '.join(known)}")
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown policy {n!r}; one of: {', '.join(known)}")
    return list(dict.fromkeys(names))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="failover_quality.py",
        description="Replay health histories through the shipped watchdog and agent lease rule; compare policies.",
    )
    p.add_argument(
        "--runs",
        type=_int_in("--runs", 1, runner.MAX_RUNS),
        default=runner.DEFAULT_RUNS,
        help=f"replays per trace, schedule phases drawn anew (default {runner.DEFAULT_RUNS})",
    )
    p.add_argument(
        "--seed", type=_int_in("--seed", 0, 2**63 - 1), default=1, help="seed of every random draw (default 1)"
    )
    p.add_argument("--traces", type=_traces, default=None, help="comma-separated traces (default: all)")
    p.add_argument(
        "--trace-file", type=Path, action="append", default=[], help="your own outage history (CSV; docs/benchmarks.md)"
    )
    p.add_argument(
        "--policies",
        type=_policies,
        default=None,
        help=f"comma-separated, or all (default: {', '.join(policies.DEFAULT_POLICIES)})",
    )
    p.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add policy ours-custom: the shipped defaults with this override (HFO_... or bot.lease_aware); repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON instead")
    p.add_argument(
        "--save", type=Path, default=None, help=f"also write the JSON here (e.g. {RESULTS.relative_to(REPO)})"
    )
    p.add_argument("--plot-trace", default=None, help=f"trace of the timeline (default {DEFAULT_PLOT_TRACE})")
    p.add_argument("--plot-policy", default="ours", help="policy of the timeline (default ours)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"timeline PNG (default {DEFAULT_OUT})")
    p.add_argument("--no-plot", action="store_true", help="no timeline")
    p.add_argument("--figures", type=Path, default=boot.FIGURES, help="boot figures (TOML)")
    p.add_argument("--argocd-on-path", action="store_true", help="Argo CD's catch-up on every standby boot's path")
    p.add_argument("--image-changed", action="store_true", help="the bot's image changed since the standby last booted")
    p.add_argument(
        "--signed",
        action="store_true",
        help="every heartbeat as a signed Function URL event through heartbeat.handle (twice as slow; same answers)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--jobs", type=_int_in("--jobs", 1, 64), default=1, help="processes, one trace each (default 1)")
    p.add_argument(
        "--write-docs",
        type=Path,
        nargs="?",
        const=RESULTS,
        default=None,
        metavar="RESULTS",
        help=f"run nothing: write the saved results (default {RESULTS.relative_to(REPO)}) into"
        " docs/benchmarks.md and README.md",
    )
    return p


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def document(
    rows: Sequence[runner.Row], chosen: Sequence[Policy], figures: boot.Figures, args: argparse.Namespace
) -> dict[str, Any]:
    return {
        "benchmark": "failover quality (docs/benchmarks.md)",
        "seed": args.seed,
        "runs": args.runs,
        "boot": {key: stage.text for key, stage in figures.stages.items()},
        "image_changed": args.image_changed,
        "argocd_on_path": args.argocd_on_path,
        "heartbeats": "signed, through heartbeat.handle" if args.signed else "past heartbeat.handle's stateless checks",
        "price": {
            "instance_type": figures.price.instance_type,
            "region": figures.price.region,
            "usd_per_hour": figures.price.usd_per_hour,
            "source": figures.price.source,
        },
        "policies": {p.name: policies.describe(p) for p in chosen},
        "rows": [r.to_dict() for r in rows],
    }


def _fixed(trace: Trace) -> runner.TraceSource:
    """A user's history: the same in every run (only the schedule's phases vary)."""

    def source(rng: random.Random) -> Trace:
        return trace

    return source


def main(argv: Sequence[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.write_docs is not None:
        from failover import docs

        try:
            written = docs.write(args.write_docs)
        except docs.DocsError as exc:
            print(f"failover_quality.py: error: {exc}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(_shown(p) for p in written))
        return 0
    try:
        figures = boot.load(args.figures, argocd_on_path=args.argocd_on_path, image_changed=args.image_changed)
        known = policies.catalogue()
        chosen: list[Policy] = [known[n] for n in (args.policies or policies.DEFAULT_POLICIES)]
        if args.define:
            chosen.insert(len([p for p in chosen if p.name != "seed"]), policies.custom(args.define))
        files = [tracefile.load(f) for f in args.trace_file]
    except (boot.FiguresError, PolicyError, TraceError) as exc:
        print(f"failover_quality.py: error: {exc}", file=sys.stderr)
        return 2
    names = args.traces or ([] if files else list(CATALOGUE))
    units: list[tuple[str, Trace | None]] = [(n, None) for n in names]
    units += [(t.name, t) for t in files]
    plot_trace = args.plot_trace or (DEFAULT_PLOT_TRACE if DEFAULT_PLOT_TRACE in names else units[0][0])
    by_name = {p.name: p for p in chosen}
    if plot_trace not in dict(units):
        ap.error(f"--plot-trace {plot_trace!r} is not among the traces run")
    if args.plot_policy not in by_name:
        ap.error(f"unknown policy {args.plot_policy!r}; one of: {', '.join(by_name)}")
    started = time.perf_counter()
    rows = runner.run_all(
        figures,
        chosen,
        units,
        runs=args.runs,
        seed_value=args.seed,
        progress=not args.quiet,
        signed=args.signed,
        jobs=args.jobs,
    )
    doc = document(rows, chosen, figures, args)
    if args.save is not None:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(doc, indent=1) + "\n")
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    b = figures.boot
    low, high = b.agent_ready_range()
    print(
        "Failover quality: the shipped watchdog and agent lease rule, simulated on health traces (docs/benchmarks.md)"
    )
    print(f"runs per trace: {args.runs}, seed: {args.seed}; figures: {_shown(args.figures)}")
    for p in chosen:
        print(f"  - {policies.describe(p)}")
    print(
        f"  standby boot: running after {b.ec2_start_s:g} s, first agent heartbeat {low:g}-{high:g} s later;"
        f" image {'changed (pulled at boot)' if b.image_changed else 'unchanged'};"
        f" Argo CD catch-up {'ON' if b.argocd_on_path else 'off'} the path;"
        f" {figures.price.instance_type} at {figures.price.usd_per_hour} USD/h ({figures.price.region})"
    )
    print()
    print(table.render(doc["rows"]))
    print()
    for p in chosen:
        if isinstance(p, policies.OurPolicy):
            overlap = [r for r in rows if r.policy == p.name and r.lease_overlap_s]
            where = f" (in {', '.join(r.trace.name for r in overlap)})" if overlap else ""
            total = sum(r.lease_overlap_s for r in overlap)
            print(f"{p.name}: seconds with both sites holding a fresh lease, all runs: {total:.0f}{where}")
    if not args.no_plot:
        from failover import plot  # matplotlib only when a plot is wanted

        fixed = dict(units)[plot_trace]
        trace, phases = runner.draw(args.seed, plot_trace, 0, None if fixed is None else _fixed(fixed))
        policy = by_name[args.plot_policy]
        result = runner.replay(policy, b, trace, phases, key=f"{args.seed}:{plot_trace}:0")
        path = plot.draw(
            result, policies.describe(policy), args.out, ec2_start_s=b.ec2_start_s, ec2_stop_s=b.ec2_stop_s
        )
        print(f"timeline ({plot_trace}, {args.plot_policy}, run 0): {path}")
    print(f"elapsed: {time.perf_counter() - started:.1f} s")
    return 0


__all__ = ["Trace", "main", "parser"]
