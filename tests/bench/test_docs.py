"""docs/benchmarks.md stays true: its boot table is figures.toml's, and the figures it quotes are
what the benchmark prints (seed 1, 10 runs) for the traces the headline uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from failover import boot, policies, runner, table

DOC = (Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md").read_text()
BOOT = boot.load()
HEADLINE_TRACES = ["outage-10m", "flap-20", "funnel-only-30m"]


@pytest.fixture(scope="module")
def rows():
    return runner.run_all(BOOT, list(policies.POLICIES.values()), HEADLINE_TRACES, runs=10, seed_value=1)


def test_the_boot_table_matches_the_figures_file():
    for key, stage in BOOT.stages.items():
        path = "yes" if stage.on_path else "no"
        pattern = rf"^\| `{re.escape(key)}` \| {stage.seconds} \| ({path}|-) \|"
        assert re.search(pattern, DOC, re.MULTILINE), f"docs/benchmarks.md: no row for {key} = {stage.seconds} s"
    assert f"**{BOOT.our_critical_path_s} s**" in DOC
    assert f"**{BOOT.ec2_start_s + BOOT.seed_bot_ready_s} s**" in DOC
    price = BOOT.price
    assert f"**{price.instance_type}, {price.region}, {price.usd_per_hour} USD per hour**" in DOC


def test_the_printed_table_in_the_docs_is_what_the_benchmark_prints(rows):
    block = DOC.split("```text\n", 1)[1].split("```", 1)[0]
    for row in rows:
        expected = table.cells(row.policy, row.figures)
        trace_block = block.split(f"\n{row.trace.name}: ", 1)[1].split("\n\n", 1)[0]
        line = next(ln for ln in trace_block.splitlines() if ln.split() and ln.split()[0] == row.policy)
        assert re.split(r"\s{2,}", line.strip()) == expected, (row.trace.name, row.policy)


def test_the_headline_quotes_those_figures(rows):
    by = {(r.trace.name, r.policy): r.figures for r in rows}
    for policy in policies.POLICIES:
        f = by["outage-10m", policy]
        assert f"**{f.downtime_s:.0f} s** (worst {f.worst_downtime_s:.0f} s)" in DOC
    seed = policies.SEED.name
    assert f"**{table.count(by['flap-20', seed].false_failovers)}**" in DOC
    assert f"**{by['flap-20', seed].two_bots_s:.0f} s**" in DOC
    assert f"**1 / {by['funnel-only-30m', seed].two_bots_s:.0f} s**" in DOC
    assert f"**{by['outage-10m', seed].two_bots_s:.0f} s**" in DOC
    for ours in (policies.DEFAULT.name, policies.SPEED.name):
        assert by["flap-20", ours].false_failovers == by["funnel-only-30m", ours].false_failovers == 0
        assert by["flap-20", ours].two_bots_s == by["outage-10m", ours].two_bots_s == 0
