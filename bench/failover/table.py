"""The benchmark's plain-text table: one block per trace, one row per policy, aligned columns."""

from __future__ import annotations

from collections.abc import Sequence

from failover.metrics import Figures
from failover.runner import Row

COLUMNS = (
    ("policy", "<"),
    ("decision", ">"),
    ("bot back", ">"),
    ("downtime", ">"),
    ("worst", ">"),
    ("false f/o", ">"),
    ("EC2 starts", ">"),
    ("EC2 min", ">"),
    ("cost USD", ">"),
    ("two bots", ">"),
)


def _seconds(value: float | None, got: int, runs: int) -> str:
    if value is None:
        return "-"
    text = f"{value:.0f} s"
    return text if got == runs else f"{text} ({got}/{runs})"


def count(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def cells(policy: str, f: Figures) -> list[str]:
    return [
        policy,
        _seconds(f.decision_s, f.decided_runs, f.runs),
        _seconds(f.back_s, f.back_runs, f.runs),
        f"{f.downtime_s:.0f} s",
        f"{f.worst_downtime_s:.0f} s",
        count(f.false_failovers),
        count(f.ec2_starts),
        f"{f.ec2_running_min:.1f}",
        f"{f.cost_usd:.4f}",
        f"{f.two_bots_s:.0f} s",
    ]


def render(rows: Sequence[Row]) -> str:
    """Blocks per trace (in the order given), each headed by the trace's name and title."""
    body = [cells(r.policy, r.figures) for r in rows]
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
        if row.trace.name != current:
            current = row.trace.name
            if len(lines) > 2:
                lines.append("")
            lines.append(f"{row.trace.name}: {row.trace.title}")
        lines.append(line(values))
    return "\n".join(lines)
