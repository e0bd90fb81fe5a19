"""A timeline of one run on one time axis: what really happened, what the watchdog decided, the
lease, the EC2 instance and the bots. Drawn with matplotlib's Agg backend (no display)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from hfo_drill.sim.run import Result
from hfo_drill.sim.spans import Span, complement, intersect
from hfo_drill.sim.world import T0
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

UP, DOWN, ASLEEP = "#4caf50", "#d32f2f", "#78909c"
PHASE_COLOURS = {
    "healthy": "#c8e6c9",
    "suspect": "#fff59d",
    "failing_over": "#ffab91",
    "on_standby": "#ffcc80",
    "recovering": "#b3e5fc",
    "handing_back": "#ce93d8",
}
LEASE_COLOURS = {"primary": "#64b5f6", "none": "#bdbdbd", "standby": "#ffb74d"}
EC2_COLOURS = {"pending": "#fff176", "running": "#ff9800", "stopping": "#a1887f"}
LAPTOP_BOT, STANDBY_BOT, NO_BOT, TWO_BOTS = "#1e88e5", "#fb8c00", "#d32f2f", "#8e24aa"


def steps(changes: Sequence[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    """(start, end, value) from (time, value) changes."""
    out = []
    for i, (t, v) in enumerate(changes):
        nxt = changes[i + 1][0] if i + 1 < len(changes) else end
        if nxt > t:
            out.append((t, nxt, v))
    return out


def draw(
    result: Result, describe: str, out: Path, *, ec2_start_s: float, ec2_stop_s: float, margin_s: float = 180
) -> Path:
    rec, trace, w0 = result.rec, result.trace, result.warmup_s
    end = trace.duration
    first = trace.incident_at or 0.0
    last = max((o.end for o in trace.outages), default=first)
    last = max([last, *(h.at - T0 - w0 for h in rec.history), *(t - w0 for t in rec.ec2_stops)]) + ec2_stop_s
    lo, hi = max(0.0, first - margin_s), min(end, last + margin_s)

    def m(t: float) -> float:
        return (t - first) / 60.0

    fig, ax = plt.subplots(figsize=(15, 8.6), dpi=110)
    names: list[str] = []

    def row(name: str) -> float:
        names.append(name)
        return -float(len(names) - 1)

    def band(y: float, spans: Sequence[tuple[float, float, str]], label: bool = False) -> None:
        for s, e, colour_label in spans:
            s, e = max(s, lo), min(e, hi)
            if e <= s:
                continue
            colour, _, text = colour_label.partition("|")
            ax.broken_barh([(m(s), (e - s) / 60.0)], (y - 0.35, 0.7), facecolors=colour, linewidth=0)
            if label and text and e - s >= (hi - lo) * 0.05:
                ax.text(m((s + e) / 2), y, text, ha="center", va="center", fontsize=8)

    def shifted(spans: Sequence[Span]) -> list[Span]:
        return [(s - w0, e - w0) for s, e in spans]

    y = row("laptop")
    band(y, [(0, end, UP)])
    band(y, [(s, e, ASLEEP if a else DOWN) for s, e, a in trace.down_spans("laptop")])
    for name, channel in (
        ("laptop's internet", "net"),
        ("Funnel path (probe)", "funnel"),
        ("AWS path (heartbeats)", "aws"),
    ):
        y = row(name)
        band(y, [(0, end, UP)])
        band(y, [(s, e, DOWN) for s, e, _ in trace.down_spans(channel)])
    y = row("probes")
    probes = [(t - w0, ok) for t, ok in rec.probes if lo <= t - w0 < hi]
    ax.scatter([m(t) for t, ok in probes if ok], [y] * sum(ok for _, ok in probes), marker="o", s=18, c=UP, zorder=3)
    bad = [m(t) for t, ok in probes if not ok]
    ax.scatter(bad, [y] * len(bad), marker="x", s=22, c=DOWN, zorder=3)
    y = row("laptop heartbeats")
    ax.vlines(
        [m(t - w0) for t in rec.heartbeats if lo <= t - w0 < hi], y - 0.3, y + 0.3, colors="#2e7d32", linewidth=0.6
    )
    if result.design == "ours":
        phases = [(-w0, "healthy")] + [(h.at - T0 - w0, h.to_phase) for h in rec.history]
        band(
            row("phase"),
            [(s, e, f"{PHASE_COLOURS.get(v, '#eeeeee')}|{v.replace('_', ' ')}") for s, e, v in steps(phases, end)],
            True,
        )
        leases = [(-w0, "primary (1)")] + [
            (h.at - T0 - w0, f"{h.to_lease.site.value} ({h.to_lease.epoch})") for h in rec.history
        ]
        band(
            row("lease (epoch)"),
            [(s, e, f"{LEASE_COLOURS[v.split()[0]]}|{v}") for s, e, v in steps(leases, end)],
            True,
        )
    y = row("EC2 standby")
    ec2 = [(t - w0, t - w0 + ec2_start_s, f"{EC2_COLOURS['pending']}|pending") for t, _ in rec.ec2_starts]
    ec2 += [(s, e, f"{EC2_COLOURS['running']}|running") for s, e in shifted(rec.running_spans)]
    ec2 += [(t - w0, t - w0 + ec2_stop_s, f"{EC2_COLOURS['stopping']}|stopping") for t in rec.ec2_stops]
    band(y, ec2, True)
    for t, purpose in rec.ec2_starts:
        if lo <= t - w0 < hi:
            ax.annotate(f"start ({purpose})", (m(t - w0), y + 0.36), fontsize=7, ha="left", va="bottom")
    laptop_bot, standby_bot = shifted(rec.bot_spans["primary"]), shifted(rec.bot_spans["standby"])
    band(row("laptop's bot"), [(s, e, LAPTOP_BOT) for s, e in laptop_bot])
    band(row("standby's bot"), [(s, e, STANDBY_BOT) for s, e in standby_bot])
    y = row("no bot / two bots")
    band(y, [(s, e, NO_BOT) for s, e in complement([*laptop_bot, *standby_bot], 0, end)])
    band(y, [(s, e, TWO_BOTS) for s, e in intersect(laptop_bot, standby_bot)])
    for t in result.failovers:
        if lo <= t < hi:
            ax.axvline(m(t), color="#b71c1c", linestyle="--", linewidth=1.0, zorder=1)
    ax.set_yticks([-float(i) for i in range(len(names))], names)
    ax.set_ylim(-len(names) + 0.4, 1.0)
    ax.set_xlim(m(lo), m(hi))
    ax.set_xlabel("minutes since the first incident")
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.5)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    decision = "no failover" if result.decision_s is None else f"failover decided after {result.decision_s:.0f} s"
    ax.set_title(
        f"{trace.name}: {trace.title}\n{textwrap.fill(describe, 170)}\n{decision}; downtime {result.downtime_s:.0f} s;"
        f" two bots {result.two_bots_s:.0f} s; EC2 starts {result.ec2_start_count}",
        fontsize=9,
        loc="left",
    )
    legend = [
        Patch(color=UP, label="up"),
        Patch(color=DOWN, label="down"),
        Patch(color=ASLEEP, label="asleep"),
        Line2D([], [], marker="o", color=UP, linestyle="", label="probe ok"),
        Line2D([], [], marker="x", color=DOWN, linestyle="", label="probe failed"),
        Patch(color=LAPTOP_BOT, label="laptop's bot answers"),
        Patch(color=STANDBY_BOT, label="standby's bot answers"),
        Patch(color=NO_BOT, label="no bot"),
        Patch(color=TWO_BOTS, label="two bots"),
        Line2D([], [], color="#b71c1c", linestyle="--", label="failover decision"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=5, fontsize=8, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
