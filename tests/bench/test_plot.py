"""The timeline PNG: written, readable size, and framed on the incident."""

from __future__ import annotations

import matplotlib.image
from failover import boot, metrics, plot, policies, runner

BOOT = boot.load()


def draw(tmp_path, trace_name, policy):
    trace, phases = runner.draw(1, trace_name, 0)
    run = runner.replay(policy, BOOT, trace, phases)
    out = plot.draw(run, metrics.figures(run, BOOT.price), policies.describe(policy), tmp_path / "sub" / "t.png")
    return run, out


def test_a_timeline_png_is_written_at_a_readable_size(tmp_path):
    _, out = draw(tmp_path, "outage-10m", policies.DEFAULT)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(out).shape
    assert width >= 1400 and height >= 800  # readable without zooming


def test_the_seeds_timeline_has_no_lease_rows_but_still_draws(tmp_path):
    _, out = draw(tmp_path, "funnel-only-30m", policies.SEED)
    assert out.stat().st_size > 10_000


def test_the_window_starts_before_the_incident_and_ends_after_the_last_change():
    trace, phases = runner.draw(1, "outage-10m", 0)
    run = runner.replay(policies.DEFAULT, BOOT, trace, phases)
    lo, hi = plot.window(run)
    assert lo < trace.incident_at
    last_change = max(t for t in range(1, trace.duration) if run.ec2[t] != run.ec2[t - 1])
    assert hi > last_change and hi <= trace.duration


def test_spans_split_a_series_into_runs_of_equal_values():
    assert plot.spans([0, 0, 1, 1, 1, 0], 0, 6) == [(0, 2, 0), (2, 3, 1), (5, 1, 0)]
    assert plot.spans([0, 0, 1, 1, 1, 0], 1, 4) == [(1, 1, 0), (2, 2, 1)]
