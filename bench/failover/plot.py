"""A timeline of one run on one time axis: what really happened, what the watchdog saw and
decided, the lease, the EC2 instance and the bots. Drawn with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from failover.metrics import Figures
from failover.ours import HEARTBEAT_SIGNALS, PHASE_CODES, PROBE_SIGNALS
from failover.world import EC2_CODES, LEASE_CODES, Run

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
EC2_COLOURS = {"stopped": "#eeeeee", "pending": "#fff176", "running": "#ff9800", "stopping": "#a1887f"}
SIGNAL_COLOURS = {"unknown": "#e0e0e0", "alive": "#a5d6a7", "failing": "#ffe082", "down": "#ef9a9a"}
LAPTOP_BOT, STANDBY_BOT, NO_BOT, TWO_BOTS = "#1e88e5", "#fb8c00", "#d32f2f", "#8e24aa"


def spans(values: Sequence[int], lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(start, length, value) of each run of equal values within [lo, hi)."""
    out: list[tuple[int, int, int]] = []
    start = lo
    for t in range(lo + 1, hi + 1):
        if t == hi or values[t] != values[start]:
            out.append((start, t - start, values[start]))
            start = t
    return out


def window(run: Run, margin_s: int = 180) -> tuple[int, int]:
    """From a little before the first incident to a little after the last change of anything."""
    n = run.trace.duration
    first = run.trace.incident_at or 0
    series: list[Sequence[int]] = [run.laptop_bot, run.standby_bot, run.ec2, run.trace.laptop, run.trace.net]
    series += [run.trace.funnel, run.trace.aws]
    if run.phase is not None and run.lease is not None:
        series += [run.phase, run.lease]
    last = first
    for s in series:
        for t in range(n - 1, first, -1):
            if s[t] != s[t - 1]:
                last = max(last, t)
                break
    return max(0, first - margin_s), min(n, last + margin_s)


def draw(run: Run, figures: Figures, describe: str, out: Path) -> Path:
    lo, hi = window(run)
    zero = run.trace.incident_at or 0
    minutes: Callable[[float], float] = lambda t: (t - zero) / 60.0  # noqa: E731
    fig, ax = plt.subplots(figsize=(15, 8.6), dpi=110)

    def band(
        y: float,
        values: Sequence[int],
        colour_of: Callable[[int], str],
        label_of: Callable[[int], str] | None = None,
        *,
        low: bool = False,
    ) -> None:
        """A row of coloured spans; labels in the wide ones (in the lower half when `low`, leaving
        the upper half to markers)."""
        for start, length, value in spans(values, lo, hi):
            ax.broken_barh([(minutes(start), length / 60.0)], (y - 0.35, 0.7), facecolors=colour_of(value), linewidth=0)
            if label_of is not None and length >= (hi - lo) * 0.05:
                ty = y - 0.17 if low else y
                ax.text(minutes(start + length / 2), ty, label_of(value), ha="center", va="center", fontsize=8)

    names: list[str] = []

    def row(name: str) -> float:
        names.append(name)
        return -float(len(names) - 1)

    tr = run.trace
    y = row("laptop")
    laptop_state = [2 if tr.asleep[t] else tr.laptop[t] for t in range(tr.duration)]
    band(y, laptop_state, lambda v: (DOWN, UP, ASLEEP)[v])
    for name, channel in (
        ("laptop's internet", tr.net),
        ("Funnel path (probe)", tr.funnel),
        ("AWS path (heartbeats)", tr.aws),
    ):
        band(row(name), channel, lambda v: UP if v else DOWN)

    y = row("probes / signal" if run.probe_signal is not None else "probes")
    if run.probe_signal is not None:
        band(y, run.probe_signal, lambda v: SIGNAL_COLOURS[PROBE_SIGNALS[v]], lambda v: PROBE_SIGNALS[v], low=True)
    probes = [(t, ok) for t, ok in run.probes if lo <= t < hi]
    marks_y = y + 0.17 if run.probe_signal is not None else y
    good, bad = [minutes(t) for t, ok in probes if ok], [minutes(t) for t, ok in probes if not ok]
    ax.scatter(good, [marks_y] * len(good), marker="o", s=18, c=UP, zorder=3)
    ax.scatter(bad, [marks_y] * len(bad), marker="x", s=22, c=DOWN, zorder=3)

    if run.heartbeat_signal is not None:
        y = row("heartbeats / signal")
        band(
            y,
            run.heartbeat_signal,
            lambda v: SIGNAL_COLOURS[HEARTBEAT_SIGNALS[v]],
            lambda v: HEARTBEAT_SIGNALS[v],
            low=True,
        )
        beats = [minutes(t) for t in run.heartbeats if lo <= t < hi]
        ax.vlines(beats, y + 0.02, y + 0.33, colors="#2e7d32", linewidth=0.6, zorder=3)

    if run.phase is not None:
        y = row("phase")
        band(
            y,
            run.phase,
            lambda v: PHASE_COLOURS[PHASE_CODES[v].value],
            lambda v: PHASE_CODES[v].value.replace("_", " "),
        )
    if run.lease is not None and run.epoch is not None:
        y = row("lease (epoch)")
        lease, epoch = run.lease, run.epoch
        keyed = [lease[t] * 1_000_000 + epoch[t] for t in range(tr.duration)]
        band(
            y,
            keyed,
            lambda v: LEASE_COLOURS[LEASE_CODES[v // 1_000_000]],
            lambda v: f"{LEASE_CODES[v // 1_000_000]} ({v % 1_000_000})",
        )

    band(row("EC2 standby"), run.ec2, lambda v: EC2_COLOURS[EC2_CODES[v].value], lambda v: EC2_CODES[v].value)
    band(row("laptop's bot"), run.laptop_bot, lambda v: LAPTOP_BOT if v else "#f5f5f5")
    band(row("standby's bot"), run.standby_bot, lambda v: STANDBY_BOT if v else "#f5f5f5")
    both = [
        (0 if not a and not b else 2 if a and b else 1) for a, b in zip(run.laptop_bot, run.standby_bot, strict=True)
    ]
    band(row("no bot / two bots"), both, lambda v: (NO_BOT, "#ffffff", TWO_BOTS)[v])

    decision_label = True
    for t in run.failovers:
        if lo <= t < hi:
            ax.axvline(minutes(t), color="#b71c1c", linestyle="--", linewidth=1.0, zorder=1)
            ax.text(
                minutes(t),
                0.75,
                " failover decided" if decision_label else "",
                color="#b71c1c",
                fontsize=8,
                va="bottom",
            )
            decision_label = False
    for tr_ in run.transitions:
        if lo <= tr_.t < hi and tr_.t not in run.failovers:
            ax.axvline(minutes(tr_.t), color="#9e9e9e", linestyle=":", linewidth=0.8, zorder=1)
    for t in run.ec2_starts:
        if lo <= t < hi:
            ax.annotate("start", (minutes(t), -names.index("EC2 standby") + 0.36), fontsize=7, ha="left", va="bottom")
    for t in run.ec2_stops:
        if lo <= t < hi:
            ax.annotate("stop", (minutes(t), -names.index("EC2 standby") + 0.36), fontsize=7, ha="left", va="bottom")

    ax.set_yticks([-float(i) for i in range(len(names))], names)
    ax.set_ylim(-len(names) + 0.4, 1.3)
    ax.set_xlim(minutes(lo), minutes(hi))
    ax.set_xlabel("minutes since the first incident" if run.trace.incident_at is not None else "minutes")
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    decision = "no failover" if figures.decision_s is None else f"failover decided after {figures.decision_s:.0f} s"
    ax.set_title(
        f"{run.trace.name}: {run.trace.title}\n{textwrap.fill(describe, 170)}\n{decision};"
        f" downtime {figures.downtime_s:.0f} s; two bots {figures.two_bots_s:.0f} s;"
        f" EC2 starts {figures.ec2_starts:.0f}",
        fontsize=9,
        loc="left",
    )
    legend = [
        Patch(color=UP, label="up"),
        Patch(color=DOWN, label="down"),
        Patch(color=ASLEEP, label="asleep"),
        Line2D([], [], marker="o", color=UP, linestyle="", label="probe ok"),
        Line2D([], [], marker="x", color=DOWN, linestyle="", label="probe failed"),
        Line2D([], [], color="#2e7d32", label="laptop heartbeat"),
        Patch(color=LAPTOP_BOT, label="laptop's bot answers"),
        Patch(color=STANDBY_BOT, label="standby's bot answers"),
        Patch(color=NO_BOT, label="no bot"),
        Patch(color=TWO_BOTS, label="two bots"),
        Line2D([], [], color="#b71c1c", linestyle="--", label="failover decision"),
        Line2D([], [], color="#9e9e9e", linestyle=":", label="other transition"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=6, fontsize=8, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
