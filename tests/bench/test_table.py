"""The printed table: aligned columns, one block per trace, blanks said as '-'."""

from __future__ import annotations

from failover import boot, metrics, policies, runner, table

BOOT = boot.load()


def test_the_table_has_a_block_per_trace_and_a_row_per_policy_in_aligned_columns():
    rows = runner.run_all(BOOT, list(policies.POLICIES.values()), ["outage-10m", "funnel-only-30m"], runs=1)
    text = table.render(rows)
    lines = text.splitlines()
    header = lines[0]
    for name, _ in table.COLUMNS:
        assert name in header
    assert lines[2].startswith("outage-10m: the laptop dies for 10 min")
    body = [line for line in lines[2:] if line.startswith("  ")]
    assert [line.split()[0] for line in body] == ["ours-default", "ours-speed", "seed"] * 2
    # Right-aligned numeric columns end where the header's column ends.
    end = header.index("two bots") + len("two bots")
    assert all(len(line) == end for line in body)
    funnel_ours = next(line for line in body if line.split()[0] == "ours-default" and "    -" in line)
    assert funnel_ours.split()[1:3] == ["-", "-"]  # no decision, never down


def test_partial_decisions_say_how_many_runs_had_one():
    f = metrics.Figures(120, None, 0, 0, 1, 1, 0.0, 0, runs=4, decided_runs=3)
    assert table.cells("p", f)[1:3] == ["120 s (3/4)", "-"]
