"""The drill's judgement can fail: the checks it makes while the story runs, and its verdict at
the end, on ledgers and watchdog states that break each rule (the full drill, which passes, is
tests/system/test_drill.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.function_url import UrlCounters
from hfo_drill.ledger import LedgerTail, by_instance, moves, parse, summarize
from hfo_drill.story import Marks, Story, StoryFailed, Timeline, Timings, print_instances, print_rpo
from hfo_watchdog.core.model import ControlState, Lease, LeaseSite

T0 = 1_800_000_000.0
GOOD_HISTORY = [{"from": "suspect", "to": "failing_over"}, {"from": "handing_back", "to": "healthy"}]


def rows(site: str, pid: int, start: float, end: float, *, stop: bool) -> str:
    lines = [f"{T0 + start:.3f} {site} start {pid}"]
    t = start + 1
    while t <= end:
        lines.append(f"{T0 + t:.3f} {site} run {pid}")
        t += 1
    if stop:
        lines.append(f"{T0 + end + 0.2:.3f} {site} stop {pid}")
    return "\n".join(lines) + "\n"


GOOD_LEDGER = (
    rows("primary", 10, 0, 10, stop=False)  # killed at 10.5
    + rows("standby", 20, 24, 40, stop=True)
    + rows("primary", 30, 41, 80, stop=False)
)


@dataclass
class FakeStore:
    state: ControlState = field(default_factory=lambda: ControlState(start_count=1))

    def load_control(self) -> ControlState:
        return self.state


@dataclass
class FakeUrlServer:
    counters: UrlCounters = field(default_factory=UrlCounters)


@dataclass
class FakeAws:
    instance_id: str = "i-0123456789abcdef0"


def story(tmp_path: Path, ledger_text: str, store: FakeStore | None = None) -> Story:
    path = tmp_path / "ledger"
    path.write_text(ledger_text)
    timings = Timings(
        tick_s=1, down_probes=3, down_heartbeat_s=10, lease_ttl_s=5, start_cooldown_s=15, bot_period_s=1, boot_delay_s=1
    )
    s = Story(
        Timeline(io.StringIO()), lambda: {}, None, FakeAws(), "", store or FakeStore(), None, None, None,
        FakeUrlServer(), LedgerTail(str(path)), timings,
    )  # fmt: skip
    s.ledger.poll()
    s.marks = Marks(killed=T0 + 10.5, back=T0 + 30, dark=T0 + 50, light=T0 + 70, end=T0 + 80)
    s.ec2_starts_seen = 1
    return s


def verdict(s: Story, history: list[dict[str, Any]] = GOOD_HISTORY) -> Any:
    return s.verdict(history, summarize(parse(Path(s.ledger.path).read_text()), period_s=1.0))


def test_a_good_drill_passes_with_its_figures(tmp_path: Path) -> None:
    v = verdict(story(tmp_path, GOOD_LEDGER))
    assert v.passed, v.failures
    assert v.failover_gap_s == pytest.approx(14.0)
    assert v.handback_gap_s == pytest.approx(0.8)
    assert (v.overlap_s, v.funnel_gap_s, v.ec2_starts_state) == (0, 0, 1)


def test_two_bots_at_once_fail_it(tmp_path: Path) -> None:
    overlapping = rows("primary", 10, 0, 10, stop=False) + rows("standby", 20, 10.5, 40, stop=True)
    overlapping += rows("primary", 30, 41, 80, stop=False)
    s = story(tmp_path, overlapping)
    assert "two bots ran at once for 0.5s" in verdict(s).failures
    with pytest.raises(StoryFailed, match="two bots ran at once"):
        s._check_invariants()


def test_downtime_during_the_funnel_outage_fails_it(tmp_path: Path) -> None:
    gap_in_outage = rows("primary", 10, 0, 10, stop=False) + rows("standby", 20, 24, 40, stop=True)
    gap_in_outage += rows("primary", 30, 41, 55, stop=False) + rows("primary", 31, 60, 80, stop=False)
    v = verdict(story(tmp_path, gap_in_outage))
    assert "the bot was down 5.0s during the Funnel-only outage" in v.failures


def test_a_missing_failover_or_handback_fails_it(tmp_path: Path) -> None:
    v = verdict(story(tmp_path, rows("primary", 10, 0, 80, stop=False)))
    assert any("no failover in the ledger" in f for f in v.failures)
    assert any("no handback in the ledger" in f for f in v.failures)


def test_ec2_starts_must_agree_and_be_one(tmp_path: Path) -> None:
    v = verdict(story(tmp_path, GOOD_LEDGER, FakeStore(ControlState(start_count=2))))
    assert "expected exactly one EC2 start, got 2 (state), 1 (history), 1 (seen in moto)" in v.failures
    v = verdict(story(tmp_path, GOOD_LEDGER), [*GOOD_HISTORY, {"from": "suspect", "to": "failing_over"}])
    assert not v.passed


def test_a_refused_heartbeat_fails_it_but_a_replay_does_not(tmp_path: Path) -> None:
    s = story(tmp_path, GOOD_LEDGER)
    s.url_server.counters.count(200)
    s.url_server.counters.count(409)
    s._check_invariants()  # a retry that overtook a slow first attempt: the protocol at work
    s.url_server.counters.count(401)
    with pytest.raises(StoryFailed, match=r"heartbeats refused by the watchdog: \{401: 1\}"):
        s._check_invariants()


def tick(lease: str = "primary", epoch: int = 4, instance: str = "stopped", ok: bool = False) -> dict[str, Any]:
    return {"lease_site": lease, "lease_epoch": epoch, "instance": instance, "probe_ok": ok}


def test_during_the_funnel_outage_a_lease_move_or_an_ec2_start_stops_the_story(tmp_path: Path) -> None:
    store = FakeStore(ControlState(start_count=1, lease=Lease(LeaseSite.PRIMARY, 4), open_alerts=frozenset()))
    s = story(tmp_path, GOOD_LEDGER, store)
    s.funnel_check.lease = "primary#4"
    s.ec2_state = "stopped"
    s.report = tick()
    s._check_funnel_tick()
    assert s.funnel_check.failed_probes == 1 and not s.funnel_check.degraded_open
    store.state = ControlState(start_count=1, open_alerts=frozenset({"degraded:probe"}))
    s._check_funnel_tick()
    assert s.funnel_check.degraded_open
    s.report = tick(lease="standby", epoch=5)
    with pytest.raises(StoryFailed, match="the lease moved during a Funnel-only outage: primary#4 -> standby#5"):
        s._check_funnel_tick()
    s.report = tick()
    s.ec2_state = "running"
    with pytest.raises(StoryFailed, match="EC2 is running during a Funnel-only outage"):
        s._check_funnel_tick()


# -- several bot instances (docs/demo.md): each must move both ways, none on both sites at once


def named(instance: str, text: str) -> str:
    return "".join(f"{line} {instance}\n" for line in text.splitlines())


def instance_verdict(s: Story) -> Any:
    records = parse(Path(s.ledger.path).read_text())
    return s.verdict(GOOD_HISTORY, summarize(records, period_s=1.0), by_instance(records, period_s=1.0))


def test_two_instances_that_both_move_pass_with_their_own_figures(tmp_path: Path) -> None:
    late = rows("primary", 11, 0, 10, stop=False) + rows("standby", 21, 25, 40, stop=True)
    late += rows("primary", 31, 41, 80, stop=False)
    s = story(tmp_path, named("bot-a", GOOD_LEDGER) + named("bot-b", late))
    s.instances = ("bot-a", "bot-b")
    v = instance_verdict(s)
    assert v.passed, v.failures
    assert v.instances["bot-a"]["failover_gap_s"] == pytest.approx(14.0)
    assert v.instances["bot-b"]["failover_gap_s"] == pytest.approx(15.0)
    assert v.instances["bot-b"]["runs"] == {"primary": 2, "standby": 1}
    out = io.StringIO()
    print_instances(out, v)
    assert "instance      bot-b: failover 15.0 s, handback 0.8 s, on both sites at once 0.0 s" in out.getvalue()


def test_an_instance_left_behind_or_missing_fails_it(tmp_path: Path) -> None:
    stays = rows("primary", 11, 0, 80, stop=False)  # bot-b never moved
    s = story(tmp_path, named("bot-a", GOOD_LEDGER) + named("bot-b", stays))
    s.instances = ("bot-a", "bot-b", "bot-c")
    v = instance_verdict(s)
    assert "bot instances never ran: bot-c" in v.failures
    assert "bot-b: no failover in the ledger" in v.failures and "bot-b: no handback in the ledger" in v.failures
    # bot-a on the standby while bot-b stayed on the laptop: two sites serving at once
    assert "two bots ran at once for 16.2s" in v.failures
    assert v.instances["bot-b"]["runs"] == {"primary": 1, "standby": 0}
    assert not any(f.startswith("bot-a") for f in v.failures)


def test_one_instance_on_both_sites_at_once_is_named(tmp_path: Path) -> None:
    early = rows("primary", 11, 0, 10, stop=False) + rows("standby", 21, 10.5, 40, stop=True)
    early += rows("primary", 31, 41, 80, stop=False)
    s = story(tmp_path, named("bot-a", GOOD_LEDGER) + named("bot-b", early))
    s.instances = ("bot-a", "bot-b")
    assert "bot-b ran on both sites at once for 0.5s" in instance_verdict(s).failures


def test_the_story_waits_for_every_instance(tmp_path: Path) -> None:
    s = story(tmp_path, named("bot-a", rows("standby", 20, 0, 3, stop=False)))
    s.instances = ("bot-a", "bot-b")
    assert not s.all_on("standby")
    s.instances = ("bot-a",)
    s.t = Timings(
        tick_s=1,
        down_probes=3,
        down_heartbeat_s=10,
        lease_ttl_s=5,
        start_cooldown_s=15,
        bot_period_s=1e9,
        boot_delay_s=1,
    )  # every line counts as recent
    assert s.all_on("standby") and not s.all_on("primary")


# --- the counter's RPO (state handoff on)


def counted(site: str, pid: int, start: float, end: float, first: int, *, stop: bool) -> str:
    """A run of bot-a whose lines carry its counter, one line a second from ``first``."""
    out, count, t = [], first, start
    while t <= end:
        out.append(f"{T0 + t:.3f} {site} {'start' if t == start else 'run'} {pid} bot-a count={count}")
        count, t = count + 1, t + 1
    if stop:
        out.append(f"{T0 + end + 0.2:.3f} {site} stop {pid} bot-a count={count - 1}")
    return "\n".join(out) + "\n"


def rpo_verdict(tmp_path: Path, text: str, sync_s: float = 2.0) -> Any:
    s = story(tmp_path, text)
    s.instances = ("bot-a",)
    s.state_sync_s = sync_s
    records = parse(text)
    return s.verdict(GOOD_HISTORY, summarize(records, period_s=1.0), by_instance(records, period_s=1.0), moves(records))


def test_the_counter_continuing_passes_and_prints_each_moves_rpo(tmp_path: Path) -> None:
    """Killed at count 11, the last upload held 9: 2 counts lost on the failover, within the crash
    bound (sync 2 s + upload 1 s + period 1 s); the orderly handback loses none."""
    text = (
        counted("primary", 10, 0, 10, 1, stop=False)
        + counted("standby", 20, 24, 40, 10, stop=True)  # restored 9; counts 10..26
        + counted("primary", 30, 41, 80, 27, stop=False)
    )
    v = rpo_verdict(tmp_path, text)
    assert v.passed, v.failures
    assert [(f["move"], f["lost"], f["lost_s"], f["planned"]) for f in v.rpo] == [
        ("failover", 2, 2.0, False),
        ("handback", 0, 0.0, True),
    ]
    out = io.StringIO()
    print_rpo(out, v)
    assert out.getvalue().splitlines() == [
        "rpo           bot-a failover: count 11 -> restored 9, 2 lost (2.0 s of work; crash, bound 4.0 s)",
        "rpo           bot-a handback: count 26 -> restored 26, 0 lost (0.0 s of work; orderly stop, RPO 0 promised)",
    ]


@pytest.mark.parametrize("stop_line", [True, False])
def test_a_count_lost_where_rpo_0_is_promised_fails_it(tmp_path: Path, stop_line: bool) -> None:
    """A handback is orderly with or without the standby's stop line (without it: its lease-aware bot
    heard of the handover from its gate before the SIGTERM landed): one count lost fails the drill."""
    text = (
        counted("primary", 10, 0, 10, 1, stop=False)
        + counted("standby", 20, 24, 40, 12, stop=stop_line)  # counts 12..28
        + counted("primary", 30, 41, 80, 28, stop=False)  # restored 27: the final upload missed one
    )
    v = rpo_verdict(tmp_path, text)
    lost_s = 1.2 if stop_line else 1.0  # the stop line is the old run's last line
    assert (
        f"bot-a: the handback after an orderly stop lost 1 counts ({lost_s:.1f} s of work) where RPO 0 is promised"
    ) in v.failures
    assert [(f["move"], f["planned"], f["bound_s"]) for f in v.rpo][-1] == ("handback", True, 0.0)


def test_a_crash_loss_over_its_bound_or_no_counter_fails_it(tmp_path: Path) -> None:
    text = (
        counted("primary", 10, 0, 10, 1, stop=False)
        + counted("standby", 20, 24, 40, 2, stop=True)  # restored 1: 10 s lost, bound 4 s
        + counted("primary", 30, 41, 80, 19, stop=False)
    )
    assert "bot-a: the failover after a crash lost 10.0 s, over its bound 4.0 s" in rpo_verdict(tmp_path, text).failures
    plain = named("bot-a", GOOD_LEDGER)  # the state handoff on, but no counter in the ledger
    failures = rpo_verdict(tmp_path, plain).failures
    assert "bot-a: no counter carried over in the failover" in failures
    assert "bot-a: no counter carried over in the handback" in failures


# -- the called-off failover (the second death, docs/demo.md step 10)

P4 = {"site": "primary", "epoch": 4}
CALLED_OFF = [
    *GOOD_HISTORY,
    {"from": "suspect", "to": "failing_over", "lease_from": P4, "lease_to": P4},
    {"from": "failing_over", "to": "healthy", "lease_from": P4, "lease_to": P4},
]
# the laptop killed again at 85.5 (its last record at 85), its bot back at 99
BEFORE_AGAIN = rows("primary", 10, 0, 10, stop=False) + rows("standby", 20, 24, 40, stop=True)
BEFORE_AGAIN += rows("primary", 30, 41, 85, stop=False)
AGAIN_LEDGER = BEFORE_AGAIN + rows("primary", 50, 99, 110, stop=False)


def called_off_story(tmp_path: Path, ledger: str = AGAIN_LEDGER) -> Story:
    s = story(tmp_path, ledger, FakeStore(ControlState(start_count=0, prewarm_starts=(T0 + 3, T0 + 88))))
    s.marks.again = T0 + 85.5
    s.ec2_starts_seen = 2
    return s


def with_moves(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = {"from": "failing_over", "to": "failing_over", "lease_from": P4 | {"epoch": 1},
             "lease_to": {"site": "standby", "epoch": 2}}  # fmt: skip
    return [first, *({"lease_from": P4, "lease_to": P4} | h for h in history)]


def test_a_called_off_failover_passes_with_its_gap_and_the_lease_it_kept(tmp_path: Path) -> None:
    v = verdict(called_off_story(tmp_path), with_moves(CALLED_OFF))
    assert v.passed, v.failures
    assert v.called_off_lease == "primary#4"
    assert v.called_off_gap_s == pytest.approx(14.0)
    assert v.ec2_starts_state == 2 and v.ec2_prewarm_starts == 2


def test_a_second_death_that_moved_the_lease_or_was_not_called_off_fails_it(tmp_path: Path) -> None:
    s5 = {"site": "standby", "epoch": 5}
    moved = [*GOOD_HISTORY, {"from": "suspect", "to": "failing_over", "lease_from": P4, "lease_to": s5}]
    v = verdict(called_off_story(tmp_path), with_moves(moved))
    assert "expected one called-off failover in the watchdog's history, found 0" in v.failures
    assert "the lease went to the standby 2 times; only the first death may move it" in v.failures
    # the laptop's bot never came back after the second death
    v = verdict(called_off_story(tmp_path, BEFORE_AGAIN), with_moves(CALLED_OFF))
    assert "no bot of the laptop after the called-off failover in the ledger" in v.failures
    # one start for two deaths
    s = called_off_story(tmp_path)
    s.ec2_starts_seen = 1
    assert (
        "expected exactly 2 EC2 starts, got 2 (state), 2 (history), 1 (seen in moto)"
        in verdict(s, with_moves(CALLED_OFF)).failures
    )
