"""The benchmark's command line: what `make bench-failover` runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from failover import cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "failover_quality.py"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0"], "--runs 0 is out of range: 1-10000"),
        (["--runs", "many"], "--runs 'many' is not a whole number"),
        (["--seed", "-1"], "--seed -1 is out of range"),
        (["--traces", "outage-10m,nope"], "unknown trace 'nope'; one of: outage-2m, outage-10m"),
        (["--traces", ","], "--traces needs at least one of"),
        (["--policies", "fast"], "unknown policy 'fast'; one of: ours"),
    ],
)
def test_bad_arguments_exit_2_and_say_why(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_bad_figures_a_bad_define_or_a_bad_trace_file_exit_2_naming_it(tmp_path, capsys):
    figures = tmp_path / "figures.toml"
    figures.write_text(cli.boot.FIGURES.read_text().replace("low = 30", "low = -30"))
    assert cli.main(["--figures", str(figures), "--no-plot"]) == 2
    assert "standby.k3s_ready.low = -30 is out of range" in capsys.readouterr().err
    assert cli.main(["--define", "HFO_LEASE_TTL_S=1", "--no-plot"]) == 2
    assert "HFO_LEASE_TTL_S" in capsys.readouterr().err
    bad = tmp_path / "mine.csv"
    bad.write_text("laptop,0,10,gone\n")
    assert cli.main(["--trace-file", str(bad), "--no-plot"]) == 2
    assert "mine.csv, line 1: how 'gone'" in capsys.readouterr().err


def test_json_gives_the_same_rows_as_the_table_and_repeats(capsys):
    args = ["--runs", "2", "--traces", "outage-2m", "--policies", "ours,seed", "--no-plot", "--quiet"]
    assert cli.main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in doc["rows"]] == ["ours", "seed"] and doc["runs"] == 2
    for row in doc["rows"]:
        assert set(row["downtime_s"]) == {"mean", "mean_ci95", "p95", "p95_ci95", "worst", "n"}
        assert row["trace"] == "outage-2m" and row["two_bots_s"]["mean"] >= 0
    assert doc["rows"][0]["idle_month_usd"] > 0 and doc["rows"][1]["idle_month_usd"] is None
    assert cli.main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == doc
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "outage-2m: the laptop dies for 2 min" in text
    assert text.count("\n  ours ") == 1 and text.count("\n  seed ") == 1


def test_the_paired_difference_against_the_seed_is_run_by_run_on_the_same_draws(capsys):
    # The paired mean is the difference of the means (same runs, same draws); its interval is
    # what says whether a loss or a win is more than noise, so it must be there for every policy
    # but the seed, and absent when the seed design was not run.
    args = ["--runs", "12", "--traces", "blips-10", "--policies", "ours,ours-no-prewarm,seed", "--no-plot", "--quiet"]
    assert cli.main([*args, "--json"]) == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["seed"]["downtime_vs_seed_s"] is None
    for name in ("ours", "ours-no-prewarm"):
        d = rows[name]["downtime_vs_seed_s"]
        assert d["n"] == 12
        gap = rows[name]["downtime_s"]["mean"] - rows["seed"]["downtime_s"]["mean"]
        assert abs(d["mean"] - gap) < 0.01
        lo, hi = d["mean_ci95"]
        assert lo <= d["mean"] <= hi
    only_ours = ["--runs", "2", "--traces", "outage-2m", "--policies", "ours", "--no-plot", "--quiet", "--json"]
    assert cli.main(only_ours) == 0
    (alone,) = json.loads(capsys.readouterr().out)["rows"]
    assert alone["downtime_vs_seed_s"] is None
    assert cli.main(args) == 0
    assert "vs seed, paired (95% CI)" in capsys.readouterr().out


def test_a_trace_file_runs_every_policy_on_it(tmp_path, capsys):
    mine = tmp_path / "mine.csv"
    mine.write_text("channel,start,seconds,how\nlaptop,100,60,asleep\n")
    assert cli.main(["--trace-file", str(mine), "--runs", "2", "--json", "--no-plot", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["trace"] for r in doc["rows"]} == {"mine.csv"}
    assert [r["policy"] for r in doc["rows"]] == list(doc["policies"])


def test_the_script_prints_the_table_and_writes_the_timeline(tmp_path):
    out = tmp_path / "bench" / "timeline.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", "2", "--traces", "outage-10m", "--policies", "ours,seed",
         "--define", "HFO_HEARTBEAT_INTERVAL_S=5", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "outage-10m: the laptop dies for 10 min" in text
    for policy in ("ours", "ours-custom", "seed"):
        assert text.count(f"\n  {policy} ") == 1
    assert "ours: seconds with both sites holding a fresh lease, all runs: 0" in text
    assert f"timeline (outage-10m, ours, run 0): {out}" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_bench_runs_the_failover_benchmark():
    done = subprocess.run(["make", "-n", "bench"], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
    assert "bench/failover_quality.py" in done.stdout


def test_jobs_share_the_work_and_print_the_same_table(capsys):
    args = ["--runs", "2", "--traces", "outage-2m,sleep-45s", "--no-plot", "--quiet", "--json"]
    assert cli.main(args) == 0
    alone = capsys.readouterr().out
    assert cli.main([*args, "--jobs", "2"]) == 0
    assert capsys.readouterr().out == alone
