"""The full drill (`make demo`) as a real child process, run once for this module; its outcome is
checked from what it leaves behind, not from its exit status alone:

- the bots' ledger (read here with a parser of this test's own): who ran when, the downtime of
  the failover and of the handback, no overlap, no gap during the Funnel-only outage;
- the watchdog's recorded history: the transitions in order, one EC2 start per death of the
  laptop, the handback completed by a heartbeat, no failover during the Funnel outage, and the
  second death's failover called off with the lease unchanged;
- the printed summary agreeing with both;
- every process it started gone, its work directory removed.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.ledger import moves, parse
from hfo_drill.terraform import Terraform, TerraformUnavailable
from hfo_watchdog.core.alerts import DEGRADED_PROBE, KINDS
from testsupport.drill import DrillProcess

pytestmark = [pytest.mark.slow, pytest.mark.system]

MILESTONES = [
    "** milestone: healthy",
    "== the laptop dies",
    # The lease waits on the primary until the standby has booted and reports ready.
    "== standby booted",
    "** milestone: failover: lease on the standby, instance running in moto",
    "** milestone: on standby",
    "== the laptop comes back",
    "** milestone: handback: lease home on the primary",
    "** milestone: standby instance stopped in moto",
    "** milestone: the laptop runs the bot again",
    "== Funnel goes dark",
    "== Funnel is back",
    "** milestone: Funnel back",
    "== the laptop dies again",
    "** milestone: failing over, the lease still on the laptop: the standby is booting",
    "== the laptop comes back before the standby is ready",
    "** milestone: failover called off: the lease never left the laptop (primary#4)",
    "** milestone: the laptop runs the bot again, under the same lease",
    "** milestone: the pre-warmed standby is stopped",
    "DRILL PASSED",
]
PERIOD_S = 1.0  # the bots' period (hfo_drill.demo.BOT_PERIOD_S)


@dataclass
class Outcome:
    output: str
    returncode: int
    out: Path
    run: DrillProcess
    summary: dict[str, Any]
    history: list[dict[str, Any]]  # oldest first
    ledger: list[tuple[float, str, str, int]]
    instances: dict[str, list[tuple[float, str, str, int]]]  # the same lines, by bot instance
    restores: list[dict[str, Any]]  # the history's state_restored entries, oldest first


def terraform_usable(tmp: Path) -> str | None:
    """None when the drill will use Terraform, else the reason it will not."""
    try:
        Terraform.locate(tmp)
    except TerraformUnavailable as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    out = tmp_path_factory.mktemp("drill-out")
    run = DrillProcess("--out", str(out))
    try:
        output = run.rest(timeout=480)
    finally:
        run.close()
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    history = json.loads((out / "history.json").read_text())[::-1] if (out / "history.json").exists() else []
    restores = [h for h in history if h.get("kind") == "state_restored"]
    history = [h for h in history if h.get("kind") != "state_restored"]  # the transitions
    ledger = []
    instances: dict[str, list[tuple[float, str, str, int]]] = {}
    for line in (out / "ledger.txt").read_text().splitlines():
        at, site, event, pid, instance = line.split()[:5]  # then count=<n>: the bot's counter
        ledger.append((float(at), site, event, int(pid)))
        instances.setdefault(instance, []).append(ledger[-1])
    yield Outcome(output, run.proc.returncode, out, run, summary, history, ledger, instances, restores)


def bot_runs(ledger: list[tuple[float, str, str, int]]) -> list[dict[str, Any]]:
    """One entry per bot process, in start order: site, first and last record, stopped or not."""
    found: dict[int, dict[str, Any]] = {}
    for at, site, event, pid in sorted(ledger):
        run = found.setdefault(pid, {"site": site, "first": at, "last": at, "stopped": False, "pid": pid})
        run["last"] = at
        run["stopped"] = run["stopped"] or event == "stop"
    return sorted(found.values(), key=lambda r: r["first"])


@pytest.mark.timeout(600)
def test_the_story_plays_out_and_passes(outcome: Outcome) -> None:
    assert outcome.returncode == 0, outcome.output
    positions = [outcome.output.find(m) for m in MILESTONES]
    assert all(p >= 0 for p in positions), (list(zip(MILESTONES, positions, strict=True)), outcome.output)
    assert positions == sorted(positions), outcome.output
    assert "Traceback" not in outcome.output


def test_it_says_how_the_aws_side_was_made(outcome: Outcome, tmp_path: Path) -> None:
    reason = terraform_usable(tmp_path)
    if reason is None:
        assert outcome.summary["aws"]["how"] == "terraform"
        assert "terraform apply of terraform/examples/complete against moto" in outcome.output
        assert re.search(r"Apply complete! Resources: \d+ added", outcome.output)
        assert "NOT USING TERRAFORM" not in outcome.output
    else:
        assert outcome.summary["aws"]["how"] == "direct"
        assert f"NOT USING TERRAFORM: {reason.splitlines()[0]}" in outcome.output
        assert "creating the same resources directly with boto3" in outcome.output


def test_the_watchdog_ran_on_the_functions_configuration_scaled_down(outcome: Outcome) -> None:
    given, used = outcome.summary["function_env"], outcome.summary["accelerated_env"]
    assert given["HFO_TICK_INTERVAL_S"] == "60" and used["HFO_TICK_INTERVAL_S"] == "1"
    assert given["HFO_HEALTH_URL"] == used["HFO_HEALTH_URL"]  # the Funnel stand-in, as Terraform was told
    assert re.search(rf"Funnel stand-in {re.escape(given['HFO_HEALTH_URL'])} ", outcome.output)
    for key in ("HFO_TABLE_NAME", "HFO_INSTANCE_ID", "HFO_HMAC_SECRET_ARN", "HFO_DOWN_PROBES"):
        assert given[key] == used[key]


def test_every_bot_instance_fails_over_then_hands_back_and_never_runs_on_two_sites(outcome: Outcome) -> None:
    assert sorted(outcome.instances) == ["bot-a", "bot-b"]  # both sites run the two instances
    marks = outcome.summary["marks"]
    down_window = float(outcome.summary["accelerated_env"]["HFO_DOWN_HEARTBEAT_S"])
    for name, lines in outcome.instances.items():
        runs = bot_runs(lines)
        assert [r["site"] for r in runs] == ["primary", "standby", "primary", "primary"], (name, runs)
        first, standby, back, again = runs
        # the called-off failover: killed outright, back on the laptop, never on the standby
        assert not back["stopped"] and back["last"] < marks["again"] < again["first"]
        assert not first["stopped"] and first["last"] <= marks["killed"]  # killed outright: no stop line
        # A killed bot may have lived one period past its last record; the standby started later.
        assert standby["first"] > first["last"] + PERIOD_S
        # Stopped in order by its agent before the handback: with its stop line, unless its lease
        # gate heard of the handover first (it then stops serving and writes none); never killed
        # mid-run, which the counter check below (not one count lost) would show.
        assert back["first"] > standby["last"]
        failover = standby["first"] - first["last"]
        handback = back["first"] - standby["last"]
        figures = outcome.summary["instances"][name]
        assert figures["failover_gap_s"] == pytest.approx(failover, abs=0.01)
        assert figures["handback_gap_s"] == pytest.approx(handback, abs=0.01)
        assert figures["overlap_s"] == 0
        assert failover > down_window  # the failover waited for the heartbeat window, as it must
    # The site as a whole: no instance of the laptop ran while one of the standby did, and back.
    runs = bot_runs(outcome.ledger)
    for a, b in itertools.product(runs, runs):
        if a["site"] == "primary" and b["site"] == "standby":
            a_end = a["last"] + (0 if a["stopped"] else PERIOD_S)
            b_end = b["last"] + (0 if b["stopped"] else PERIOD_S)
            assert a_end < b["first"] or b_end < a["first"], (a, b)
    assert outcome.summary["overlap_s"] == 0
    assert outcome.summary["failover_gap_s"] > down_window


def test_the_funnel_outage_kept_the_bot_on_the_laptop(outcome: Outcome) -> None:
    marks = outcome.summary["marks"]
    during = sorted(at for at, site, _, _ in outcome.ledger if marks["dark"] <= at <= marks["light"])
    sites = {site for at, site, _, _ in outcome.ledger if marks["dark"] <= at <= marks["light"]}
    assert sites == {"primary"}
    assert during[0] - marks["dark"] < 2 * PERIOD_S and marks["light"] - during[-1] < 2 * PERIOD_S
    assert max(b - a for a, b in itertools.pairwise(during)) < 2 * PERIOD_S
    funnel = outcome.summary["funnel"]
    assert funnel["seconds"] > float(outcome.summary["accelerated_env"]["HFO_DOWN_HEARTBEAT_S"])
    assert funnel["failed_probes"] >= int(outcome.summary["accelerated_env"]["HFO_DOWN_PROBES"])
    assert funnel["lease"] == "primary#4" and funnel["ec2"] == ["stopped"]
    assert funnel["starts_before"] == funnel["starts_after"] == 1  # the second death came after it
    assert funnel["degraded_open"] is True
    assert KINDS[DEGRADED_PROBE].title in funnel["alert"]


def test_the_history_records_a_failover_a_handback_by_heartbeat_and_a_called_off_failover(outcome: Outcome) -> None:
    steps = [(h["from"], h["to"]) for h in outcome.history]
    expected = [
        ("healthy", "suspect"),
        ("suspect", "failing_over"),
        ("failing_over", "on_standby"),
        ("on_standby", "recovering"),
        ("recovering", "handing_back"),
        ("handing_back", "healthy"),
    ]
    at = 0
    for step in expected:  # in this order, other transitions (start-up flaps) allowed between
        at = steps.index(step, at) + 1
    assert sum(1 for frm, to in steps if to == "failing_over" and frm != "failing_over") == 2  # two deaths
    # The lease moves once, inside the failover: with the failover's decision when the pre-warmed
    # standby is already ready, or later (failing_over -> failing_over) once it is.
    moves = [h for h in outcome.history if (h["lease_from"]["site"], h["lease_to"]["site"]) == ("primary", "standby")]
    assert len(moves) == 1 and moves[0]["to"] == "failing_over"
    handback = outcome.history[steps.index(("handing_back", "healthy"))]
    assert handback["by"] == "heartbeat"
    assert (handback["lease_from"], handback["lease_to"]) == (
        {"site": "none", "epoch": 3},
        {"site": "primary", "epoch": 4},
    )
    later = outcome.history[steps.index(("handing_back", "healthy")) + 1 :]
    into = next(i for i, h in enumerate(later) if h["to"] == "failing_over")  # the second death
    funnel, again = later[:into], later[into:]
    assert funnel and {(h["from"], h["to"]) for h in funnel} <= {("healthy", "suspect"), ("suspect", "healthy")}
    # The Funnel's outage among them (before it, the laptop's probe may flap not_pass for the second its
    # bots take to restore their state after the handback: docs/demo.md#the-summary)
    darks = [h for h in funnel if h["to"] == "suspect"]
    assert any("connect_refused" in reason for h in darks for reason in h["reasons"])
    # The second death: failing over with the lease kept on the laptop, then called off without
    # the lease ever moving (same site, same epoch), and nothing after it but flaps.
    primary4 = {"site": "primary", "epoch": 4}
    assert again[0]["lease_from"] == again[0]["lease_to"] == primary4
    (call_off,) = [h for h in again if h["from"] == "failing_over"]
    assert call_off["to"] in ("healthy", "suspect")
    assert call_off["lease_from"] == call_off["lease_to"] == primary4
    assert any("called off" in reason and "the lease never left it" in reason for reason in call_off["reasons"])
    assert all(h["lease_to"] == primary4 for h in again)
    s = outcome.summary
    assert s["ec2_starts_state"] == s["ec2_starts_history"] == s["ec2_starts_seen"] == 2
    assert s["called_off_lease"] == "primary#4" and s["called_off_gap_s"] > 0


def test_the_printed_summary_states_the_measured_figures(outcome: Outcome) -> None:
    s = outcome.summary
    assert f"downtime      {s['downtime_s']:.1f} s with no bot running" in outcome.output
    assert f"{s['failover_gap_s']:5.1f} s  failover: primary's last record" in outcome.output
    assert f"{s['handback_gap_s']:5.1f} s  handback: standby's last record" in outcome.output
    assert "overlap       0.0 s with two bots running" in outcome.output
    # One start per death: the pre-warm's (the failover found the standby running) or the failover's.
    assert s["ec2_prewarm_starts"] in (0, 1, 2)
    assert (
        f"EC2 starts    2 (the watchdog's starts: {2 - s['ec2_prewarm_starts']} by a failover, "
        f"{s['ec2_prewarm_starts']} pre-warm), 2 (failovers in its history), 2 (stopped -> running"
    ) in outcome.output
    assert f"{s['called_off_gap_s']:5.1f} s  called off: primary's last record" in outcome.output
    assert (
        "called off    the second death's failover: the lease stayed primary#4, "
        f"the laptop's bot back after {s['called_off_gap_s']:.1f} s"
    ) in outcome.output
    assert "leases        primary#1 -> standby#2 -> none#3 -> primary#4" in outcome.output
    for name, f in s["instances"].items():
        assert (
            f"instance      {name}: failover {f['failover_gap_s']:.1f} s, handback {f['handback_gap_s']:.1f} s, "
            "on both sites at once 0.0 s (3 primary, 1 standby runs)"
        ) in outcome.output
    # 409: a retry that overtook its slow first attempt (a replay, refused by design) may show up
    # under load; any other refusal fails the drill itself
    assert re.search(r"heartbeats    through the Function URL: \d+ x 200(, \d+ x 409)?\n", outcome.output)


def test_each_bots_counter_continues_across_the_moves_with_the_rpo_printed(outcome: Outcome) -> None:
    """The state handoff, judged from the ledger itself: every instance's counter goes on after the
    failover (the laptop killed: at most the sync interval lost, plus an upload and a period) and after
    the planned handback (not one count lost), and the laptop's old epoch can no longer upload."""
    s = outcome.summary
    sync_s = 2.0  # hfo_drill.sites.SiteTiming.state_sync_s
    text = (outcome.out / "ledger.txt").read_text()
    found = moves(parse(text))
    for name in outcome.instances:
        mine = [m for m in found if m.instance == name]
        failover = next(m for m in mine if (m.before, m.after) == ("primary", "standby"))
        handback = next(m for m in mine if (m.before, m.after) == ("standby", "primary"))
        assert not failover.planned and failover.restored > 0
        assert failover.lost_s <= sync_s + 1.0 + 1.0, failover
        assert handback.lost == 0, handback  # RPO 0, with or without the standby's stop line
        assert s["fenced_uploads"][name].startswith("refused: ")
    printed = [line for line in outcome.output.splitlines() if line.startswith("rpo ")]
    assert len(printed) == len(s["rpo"]) >= 2 * len(outcome.instances)
    for f in s["rpo"]:
        assert (
            f"rpo           {f['instance']} {f['move']}: count {f['last']} -> restored {f['restored']}, "
            f"{f['lost']} lost ({f['lost_s']:.1f} s of work; "
        ) in outcome.output
    assert [f["lost"] for f in s["rpo"] if f["move"] == "handback"] == [0] * len(outcome.instances)
    # the watchdog's history: the standby restored the laptop's epoch 1, the laptop the standby's 2
    seen = {(h.get("site"), h.get("workload"), h.get("restored_epoch")) for h in outcome.restores}
    for name in outcome.instances:
        assert ("standby", name, 1) in seen and ("primary", name, 2) in seen, outcome.restores


def test_everything_it_started_is_gone(outcome: Outcome) -> None:
    run = outcome.run
    assert len(run.started) >= 8  # moto, health, agents, bots (and terraform when used) were seen
    assert run.left_running() == []
    assert not run.work_dir().exists()
