"""docs/benchmarks.md and the README stay true: the boot table is figures.toml's, the results
tables are what `--write-docs` renders from bench/failover/results/default.json, and those saved
results were measured with the policies as they are now."""

from __future__ import annotations

import re

from failover import boot, docs, policies

DOC = docs.BENCHMARKS.read_text()
README = docs.README.read_text()
FIG = boot.load()
SAVED = docs.load()


def test_the_boot_table_matches_the_figures_file():
    for key, stage in FIG.stages.items():
        path = "yes" if stage.on_path else "(no|-)"
        if key == "standby.image_pull":
            path = "only with `--image-changed`"
        pattern = rf"^\| `{re.escape(key)}` \| {re.escape(stage.text)} \| ({path}|-) \|"
        assert re.search(pattern, DOC, re.MULTILINE), f"docs/benchmarks.md: no row for {key} = {stage.text} s"
    low, high = FIG.boot.agent_ready_range()
    first = FIG.boot.ec2_start_s
    assert f"**{first + low:g} to {first + high:g} s**" in DOC
    assert f"**{FIG.boot.bot_start_s:g} s**" in DOC


def test_the_results_in_the_docs_are_the_saved_results():
    full, summary = docs.render(SAVED)
    i, j = docs.section(DOC, "results")
    assert DOC[i:j] == full, "run: .venv/bin/python bench/failover_quality.py --write-docs"
    i, j = docs.section(README, "summary")
    assert README[i:j] == summary, "run: .venv/bin/python bench/failover_quality.py --write-docs"


def test_the_saved_results_cover_every_trace_for_ours_and_the_seed_at_100_runs_or_say_how_many():
    rows = SAVED["rows"]
    assert {r["policy"] for r in rows} >= {"ours", "seed"}
    assert all(r["runs"] == SAVED["runs"] for r in rows)
    assert "runs per trace" in DOC and f"{SAVED['runs']} runs per trace" in DOC


def test_the_saved_results_were_measured_with_the_shipped_defaults():
    """A change of the defaults (or of what a policy means) makes the saved results stale."""
    for name, text in SAVED["policies"].items():
        known = policies.catalogue()
        if name in known:
            assert policies.describe(known[name]) == text, f"{name} changed: `make bench-failover-results`"


def test_ours_never_holds_two_leases_in_the_saved_results():
    assert all(r["lease_overlap_s"] == 0 for r in SAVED["rows"] if r["policy"] != "seed")


def test_the_cost_tools_pre_warm_figure_is_the_saved_results():
    """`make cost` adds the pre-warm's expected EC2 hours from this benchmark: its figure is the
    extra standby minutes pre-warm costs on the blips trace (ours less ours-no-prewarm), priced
    as a failover hour (t4g.small and its public IPv4 address, us-east-1)."""
    import tomllib

    prices = tomllib.loads((docs.BENCHMARKS.parents[1] / "tools" / "cost" / "prices.toml").read_text())
    minutes = {r["policy"]: r["ec2_minutes"] for r in SAVED["rows"] if r["trace"] == "blips-10"}
    us_east_1 = prices["regions"]["us-east-1"]
    hour = us_east_1["ec2_hour"]["t4g.small"] + us_east_1["public_ipv4_hour"]
    extra = (minutes["ours"] - minutes["ours-no-prewarm"]) / 60 * hour
    assert prices["benchmark"]["prewarm_usd_per_trace"] == round(extra, 3), round(extra, 3)
