"""The benchmark's tables: plain text for the terminal, Markdown for docs/benchmarks.md and the
README, and the same rows as JSON (`--json`, bench/failover/results/default.json)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = (
    ("policy", "<"),
    ("downtime mean (95% CI)", ">"),
    ("p95 (95% CI)", ">"),
    ("vs seed, paired (95% CI)", ">"),
    ("two bots", ">"),
    ("false f/o", ">"),
    ("EC2 starts f/o+warm", ">"),
    ("EC2 min", ">"),
    ("EC2 USD", ">"),
    ("idle USD/month", ">"),
    ("decision", ">"),
    ("bot back", ">"),
)


def count(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _s(value: float) -> str:
    return f"{value:.0f} s"


def _opt(value: Any, got: int, runs: int) -> str:
    if value is None:
        return "-"
    text = f"{value:.0f} s"
    return text if got == runs else f"{text} ({got}/{runs})"


def _signed(value: float) -> str:
    text = f"{value:+.0f}"
    return "0" if text in ("+0", "-0") else text


def vs_seed(row: Mapping[str, Any]) -> str:
    """This policy's downtime minus the seed's, run by run: `+105 s (+30 to +180)`; `-` for the seed."""
    d = row.get("downtime_vs_seed_s")
    if d is None:
        return "-"
    lo, hi = d["mean_ci95"]
    return f"{_signed(d['mean'])} s ({_signed(lo)} to {_signed(hi)})"


def cells(row: Mapping[str, Any]) -> list[str]:
    """One row (as in the JSON) as table cells."""
    d = row["downtime_s"]
    idle = row["idle_month_usd"]
    return [
        row["policy"],
        f"{d['mean']:.0f} s ({d['mean_ci95'][0]:.0f}-{d['mean_ci95'][1]:.0f})",
        f"{d['p95']:.0f} s ({d['p95_ci95'][0]:.0f}-{d['p95_ci95'][1]:.0f})",
        vs_seed(row),
        f"{row['two_bots_s']['mean']:.1f} s",
        count(row["false_failovers"]),
        f"{count(row['ec2_starts']['failover'])}+{count(row['ec2_starts']['prewarm'])}",
        f"{row['ec2_minutes']:.1f}",
        f"{row['cost_usd']:.4f}",
        "-" if idle is None else f"{idle:.2f}",
        _opt(row["decision_s"], row["decided_runs"], row["runs"]),
        _opt(row["back_s"], row["back_runs"], row["runs"]),
    ]


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    """Blocks per trace (in the order given), each headed by the trace's name and title."""
    body = [cells(r) for r in rows]
    header = [name for name, _ in COLUMNS]
    widths = [max(len(header[i]), *(len(c[i]) for c in body)) for i in range(len(COLUMNS))]

    def line(values: Sequence[str]) -> str:
        out = []
        for (_, align), width, value in zip(COLUMNS, widths, values, strict=True):
            out.append(value.ljust(width) if align == "<" else value.rjust(width))
        return "  " + "  ".join(out).rstrip()

    lines = [line(header), "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))]
    current = None
    for row, values in zip(rows, body, strict=True):
        if row["trace"] != current:
            current = row["trace"]
            if len(lines) > 2:
                lines.append("")
            lines.append(f"{row['trace']}: {row['title']}")
        lines.append(line(values))
    return "\n".join(lines)


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """One Markdown table: a line per trace and policy (the docs' full table)."""
    header = ["trace", *(name for name, _ in COLUMNS)]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join([f"`{row['trace']}`", *cells(row)]) + " |")
    return "\n".join(out)


def summary(rows: Sequence[Mapping[str, Any]], ours: str, seed: str) -> str:
    """The README's table: per trace, downtime of ours against the seed's, two bots, cost."""
    by = {(r["trace"], r["policy"]): r for r in rows}
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    out = [
        "| trace (modelled) | downtime, ours: mean (p95) | downtime, seed: mean (p95) |"
        " ours minus seed, paired: mean (95% CI) | two bots, ours / seed |"
        " EC2 starts, ours: failover + pre-warm | EC2 USD per trace, ours / seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in traces:
        a, b = by.get((name, ours)), by.get((name, seed))
        if a is None or b is None:
            continue
        da, db = a["downtime_s"], b["downtime_s"]
        win = "" if da["mean"] <= db["mean"] + 10 else " (we lose)"
        out.append(
            f"| {a['title']} | {da['mean']:.0f} s ({da['p95']:.0f} s){win} | {db['mean']:.0f} s ({db['p95']:.0f} s) |"
            f" {vs_seed(a)} |"
            f" {a['two_bots_s']['mean']:.0f} s / {b['two_bots_s']['mean']:.0f} s |"
            f" {count(a['ec2_starts']['failover'])} + {count(a['ec2_starts']['prewarm'])} |"
            f" {a['cost_usd']:.4f} / {b['cost_usd']:.4f} |"
        )
    return "\n".join(out)
