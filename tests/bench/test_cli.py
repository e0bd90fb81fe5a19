"""The benchmark's command line: what `make bench-failover` runs."""

from __future__ import annotations

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
        (["--runs", "0"], "--runs 0 is out of range: 1-100"),
        (["--runs", "many"], "--runs 'many' is not a whole number"),
        (["--seed", "-1"], "--seed -1 is out of range"),
        (["--traces", "outage-10m,nope"], "unknown trace 'nope'; one of: outage-2m, outage-10m"),
        (["--traces", ","], "--traces needs at least one of"),
        (["--plot-trace", "nope"], "unknown trace 'nope'"),
        (["--plot-policy", "fast"], "unknown policy 'fast'; one of: ours-default, ours-speed, seed"),
        (["--agent-clock", "wall"], "invalid choice: 'wall'"),
    ],
)
def test_bad_arguments_exit_2_and_say_why(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_bad_figures_exit_2_naming_the_figure(tmp_path, capsys):
    figures = tmp_path / "figures.toml"
    shipped = (ROOT / "bench" / "failover" / "figures.toml").read_text()
    figures.write_text(shipped.replace("seconds = 30", "seconds = -30"))
    assert cli.main(["--figures", str(figures), "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "standby.k3s_ready.seconds = -30 is out of range: 0-3600 seconds" in err


def test_the_script_prints_the_table_and_writes_the_timeline(tmp_path):
    out = tmp_path / "bench" / "timeline.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", "2", "--traces", "outage-10m,funnel-only-30m", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "outage-10m: the laptop dies for 10 min" in text and "funnel-only-30m:" in text
    for policy in ("ours-default", "ours-speed", "seed"):
        assert text.count(f"\n  {policy} ") == 2
    assert "10-minute outage: downtime" in text and "funnel-only-30m: false failovers 0 vs 1" in text
    assert "seconds with both sites holding a fresh lease, all runs: 0" in text
    assert text.rstrip().splitlines()[-2] == f"timeline (outage-10m, ours-default, run 0): {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_bench_runs_the_failover_benchmark():
    done = subprocess.run(["make", "-n", "bench"], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
    assert "bench/failover_quality.py" in done.stdout
