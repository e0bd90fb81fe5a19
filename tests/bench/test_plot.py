"""The timeline PNG of one run: written, at a readable size, for ours and the seed."""

from __future__ import annotations

import matplotlib.image
from failover import boot, plot, policies, runner

FIG = boot.load()


def draw(tmp_path, trace_name, policy):
    trace, phases = runner.draw(1, trace_name, 0)
    result = runner.replay(policy, FIG.boot, trace, phases, key="1:t:0")
    return plot.draw(result, policies.describe(policy), tmp_path / "sub" / "t.png", ec2_start_s=20.0, ec2_stop_s=45.0)


def test_a_timeline_png_is_written_at_a_readable_size(tmp_path):
    out = draw(tmp_path, "outage-10m", policies.OURS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(out).shape
    assert width >= 1400 and height >= 800


def test_the_seeds_timeline_has_no_lease_rows_but_still_draws(tmp_path):
    out = draw(tmp_path, "funnel-only-30m", policies.SEED)
    assert out.stat().st_size > 10_000


def test_steps_turn_changes_into_spans():
    assert plot.steps([(0, "a"), (5, "b"), (5, "c"), (9, "d")], 12) == [(0, 5, "a"), (5, 9, "c"), (9, 12, "d")]
