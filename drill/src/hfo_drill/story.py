"""The drill's story, told to the real system on one machine, and its verdict.

    steady state -> the laptop dies (every process of it SIGKILLed) -> pre-warm (its heartbeats
    stop and the probe fails: EC2 starts in moto, the standby's agent boots, no lease yet) ->
    failover (the lease goes to the warm standby once the laptop is fenced; its agent runs the
    bot) -> the laptop comes back -> handback (EC2 stopped) -> a Funnel-only outage that must NOT
    fail over -> Funnel back -> the laptop dies again and comes back while the standby still boots
    (a slow boot: an image pull): the failover is called off, the lease never leaves the laptop,
    the pre-warmed standby stops

Every step has a bounded wait. The story drives the tick handler on the accelerated schedule,
prints one timeline line per tick, keeps the standby's agent in step with the instance in moto,
and checks as it goes: never two bots at once (from the ledger), no heartbeat refused (from the
Function URL's answers). At the end it measures, from the ledger, the downtime and the overlap,
and counts the EC2 starts three ways (the watchdog's state, the recorded history, and the
instance's state changes the drill saw in moto).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from hfo_watchdog.core.alerts import DEGRADED_PROBE, KINDS
from hfo_watchdog.core.model import ControlState

from hfo_drill.aws_setup import AwsSide, instance_state
from hfo_drill.function_url import FunctionUrlServer
from hfo_drill.funnel import FunnelProxy
from hfo_drill.inbox import AlertInbox
from hfo_drill.ledger import Gap, LedgerTail, Move, Summary, summarize
from hfo_drill.sites import Site

DEGRADED_TITLE = KINDS[DEGRADED_PROBE].title
_GAP_NAMES: dict[tuple[str | None, str | None], str] = {
    ("primary", "standby"): "failover",
    ("standby", "primary"): "handback",
    ("primary", "primary"): "called off",
}
# The second death's standby boot is this much slower (an image pull), so the laptop is back
# before the standby could take the lease: the failover is called off (docs/demo.md).
SLOW_BOOT_S = 30.0


class StoryFailed(Exception):
    pass


@dataclass(frozen=True)
class Timings:
    """The accelerated policy the story plays against (from the function's environment)."""

    tick_s: float
    down_probes: int
    down_heartbeat_s: float
    lease_ttl_s: float
    start_cooldown_s: float
    bot_period_s: float
    boot_delay_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, bot_period_s: float, boot_delay_s: float) -> Timings:
        return cls(
            tick_s=float(env["HFO_TICK_INTERVAL_S"]),
            down_probes=int(env["HFO_DOWN_PROBES"]),
            down_heartbeat_s=float(env["HFO_DOWN_HEARTBEAT_S"]),
            lease_ttl_s=float(env["HFO_LEASE_TTL_S"]),
            start_cooldown_s=float(env["HFO_START_COOLDOWN_S"]),
            bot_period_s=bot_period_s,
            boot_delay_s=boot_delay_s,
        )

    @property
    def funnel_outage_s(self) -> float:
        """Longer than a failover needs with both signals down: the heartbeat window plus the
        failed probes, plus margin."""
        return self.down_heartbeat_s + self.down_probes * self.tick_s + 5


class Timeline:
    def __init__(self, out: TextIO, t0: float | None = None) -> None:
        self.out = out
        self.t0 = time.monotonic() if t0 is None else t0
        self._last_reasons: tuple[str, ...] = ()

    def rel(self) -> float:
        return time.monotonic() - self.t0

    def _stamp(self) -> str:
        return f"+{self.rel():5.1f}s"

    def say(self, text: str) -> None:
        self.out.write(f"{self._stamp()}  {text}\n")
        self.out.flush()

    def raw(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def header(self) -> None:
        self.raw(
            f"{'time':>7}  {'probe':<22} {'hb primary':>10} {'hb standby':>10}  {'phase':<13} {'lease':<11} "
            f"{'ec2':<9} {'bots':<8} decision\n"
        )

    def tick(self, r: Mapping[str, Any], bots: list[str]) -> None:
        probe = "ok" if r["probe_ok"] else f"FAIL {r['probe_failure']}"

        def age(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}s"

        reasons = tuple(r["reasons"])
        if r["outcome"] != "saved":
            decision = f"{r['outcome']}: {'; '.join(reasons)}"
        elif r["transition"]:
            decision = f"{r['transition']}: {'; '.join(reasons)}"
        elif reasons != self._last_reasons:
            decision = "; ".join(reasons)
        else:
            decision = "."
        self._last_reasons = reasons
        actions = f"  [{', '.join(r['actions'])}]" if r["actions"] else ""
        running = "+".join(bots) if bots else "none"
        self.raw(
            f"{self._stamp()}  {probe:<22} {age(r['primary_age_s']):>10} {age(r['standby_age_s']):>10}  "
            f"{r['phase']:<13} {r['lease_site'] + '#' + str(r['lease_epoch']):<11} {r['instance']:<9} "
            f"{running:<8} {decision}{actions}\n"
        )


@dataclass
class Marks:
    """Wall-clock times (time.time(), the ledger's clock) of the story's events."""

    killed: float | None = None
    back: float | None = None
    dark: float | None = None
    light: float | None = None
    again: float | None = None  # the laptop's second death (the called-off failover)
    again_back: float | None = None
    end: float | None = None


@dataclass
class FunnelCheck:
    seconds: float = 0.0
    ticks: int = 0
    failed_probes: int = 0
    lease: str = ""
    ec2_states: set[str] = field(default_factory=set)
    starts_before: int = 0
    starts_after: int = 0
    degraded_open: bool = False  # degraded:probe among the state's open alerts during the outage
    alert: str | None = None  # the degraded alert as delivered through the SNS topic


@dataclass
class Verdict:
    passed: bool
    failures: list[str]
    downtime_s: float
    failover_gap_s: float | None
    handback_gap_s: float | None
    funnel_gap_s: float
    overlap_s: float
    ec2_starts_state: int
    ec2_prewarm_starts: int
    ec2_starts_history: int
    ec2_starts_seen: int
    bot_runs: dict[str, int]
    heartbeats: dict[str, int]
    funnel: dict[str, Any]
    leases: list[str]
    # The called-off failover: the bot's gap from the second death to the laptop's bot again, and
    # the lease the call-off kept (None when the story did not get there).
    called_off_gap_s: float | None = None
    called_off_lease: str | None = None
    # Per bot instance (several gated bots, docs/demo.md): its failover and handback gaps, its overlap
    # (the instance on both sites at once), its runs per site.
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The counter's moves (state handoff on): per instance and move, the counts and seconds lost.
    rpo: list[dict[str, Any]] = field(default_factory=list)
    fenced_uploads: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Story:
    def __init__(
        self,
        timeline: Timeline,
        tick: Callable[[], dict[str, Any]],
        session: Any,
        aws: AwsSide,
        inbox: AlertInbox,
        store: Any,
        primary: Site,
        standby: Site,
        funnel: FunnelProxy,
        url_server: FunctionUrlServer,
        ledger: LedgerTail,
        timings: Timings,
        instances: tuple[str, ...] = (),
    ) -> None:
        self.timeline = timeline
        self.instances = instances  # the bot instances each site runs; () for one unnamed bot
        # With the state handoff on (each bot keeps a counter, docs/demo.md#the-counter): the sync's
        # interval, whose crash bound the failover's loss is judged by; None when it is off.
        self.state_sync_s: float | None = None
        # instance -> the answer to an upload under the laptop's epoch of before the failover
        self.fenced_uploads: dict[str, str] = {}
        self._tick = tick
        self.session = session
        self.aws = aws
        self.inbox = inbox
        self.store = store
        self.primary = primary
        self.standby = standby
        self.funnel = funnel
        self.url_server = url_server
        self.ledger = ledger
        self.t = timings
        self.report: dict[str, Any] = {}
        self.leases_seen: list[str] = []
        self.reached: list[str] = []
        self.alerts: list[tuple[float, str]] = []
        self.ec2_state = "stopped"
        self.ec2_starts_seen = 0
        self.boot_at: float | None = None
        self.marks = Marks()
        self.funnel_check = FunnelCheck()
        self._in_outage = False
        self.extra_boot_s = 0.0  # added to the next standby boot (the call-off scene's slow boot)

    # -- one tick of the story

    def bots(self) -> list[str]:
        self.ledger.poll()
        return self.ledger.running(time.time(), self.t.bot_period_s)

    def all_on(self, site: str) -> bool:
        """Every bot instance runs on `site` (the one bot, when the sites run no named instances)."""
        if not self.instances:
            return site in self.bots()
        self.ledger.poll()
        running = self.ledger.running_instances(time.time(), self.t.bot_period_s)
        return all((site, name) in running for name in self.instances)

    def step(self) -> dict[str, Any]:
        started = time.monotonic()
        self.report = self._tick()
        self.timeline.tick(self.report, self.bots())
        lease = f"{self.report['lease_site']}#{self.report['lease_epoch']}"
        if not self.leases_seen or self.leases_seen[-1] != lease:
            self.leases_seen.append(lease)
        self._follow_ec2(instance_state(self.aws.instance_id, session=self.session))
        for alert in self.inbox.drain():
            self.alerts.append((time.time(), alert.title))
            self.timeline.say(f"   alert delivered: {alert.title}")
        if self._in_outage:
            self._check_funnel_tick()
        self._check_invariants()
        time.sleep(max(0.0, self.t.tick_s - (time.monotonic() - started)))
        return self.report

    def _follow_ec2(self, state: str) -> None:
        """The standby's agent runs while its instance runs: it boots `boot_delay_s` after the
        instance is running (cloud-init: K3s, Argo CD, the Pod), and goes when it stops."""
        if state in ("pending", "running") and self.ec2_state in ("stopped", "stopping"):
            self.ec2_starts_seen += 1
        self.ec2_state = state
        if state == "running" and not self.standby.up and self.boot_at is None:
            boot = self.t.boot_delay_s + self.extra_boot_s
            self.boot_at = time.monotonic() + boot
            slow = f", {self.extra_boot_s:g} s of it an image pull" if self.extra_boot_s else ""
            self.timeline.say(
                f"== the standby instance is running in moto: it boots ({boot:g} s here{slow}), then its agent starts"
            )
        if self.boot_at is not None and time.monotonic() >= self.boot_at and state == "running":
            self.boot_at = None
            agent = self.standby.start()[0]
            self.timeline.say(f"== standby booted: hfo-site agent pid {agent.pid} (exec backend, bot not started)")
        elif state in ("stopping", "stopped") and (self.standby.up or self.boot_at is not None):
            self.boot_at = None
            pids = self.standby.shutdown(grace_s=self.t.lease_ttl_s)
            self.timeline.say(f"== the standby instance is {state}: its processes shut down (pids {pids})")

    def _check_invariants(self) -> None:
        overlaps = summarize(self.ledger.records, period_s=self.t.bot_period_s).overlaps
        if overlaps:
            o = overlaps[0]
            raise StoryFailed(f"two bots ran at once for {o.seconds:.1f}s (from the ledger, at {o.start:.3f})")
        # A refusal other than a replay means a broken setup (signature, schema, clock). A replay
        # (409) is the protocol working: a retry overtook a slow first attempt, which then lost.
        refused = {s: n for s, n in self.url_server.counters.by_status.items() if 400 <= s < 500 and s != 409}
        if refused:
            raise StoryFailed(f"heartbeats refused by the watchdog: {refused} (status: count)")

    def until(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.step()
            if done():
                self.reached.append(what)
                self.timeline.say(f"** milestone: {what}")
                return
        raise StoryFailed(f"milestone not reached within {timeout_s:.0f}s: {what}")

    # -- the story

    def wait_for_first_bot(self, timeout_s: float) -> None:
        """Before the first tick: the laptop's agent has heartbeated, learned the lease (primary,
        epoch 1, the default of a fresh table) and started its bot. The story starts from there."""
        deadline = time.monotonic() + timeout_s
        while not self.all_on("primary"):
            if time.monotonic() > deadline:
                raise StoryFailed(f"the laptop's bot did not start within {timeout_s:.0f}s")
            time.sleep(0.1)
        self.timeline.say("the laptop's agent holds the lease and its bot runs: the watchdog starts ticking")

    def _healthy_for(self, ticks: int) -> Callable[[], bool]:
        streak = [0]

        def check() -> bool:
            r = self.report
            ok = (
                r["phase"] == "healthy"
                and r["lease_site"] == "primary"
                and bool(r["probe_ok"])
                and "primary" in self.bots()
            )
            streak[0] = streak[0] + 1 if ok else 0
            return streak[0] >= ticks

        return check

    def run(self) -> None:
        def r() -> dict[str, Any]:  # the report of the latest tick, read at call time
            return self.report

        self.until("healthy: the laptop holds the lease, passes the probe and runs the bot", self._healthy_for(3), 60)
        first_epoch = r()["lease_epoch"]

        self.marks.killed = time.time()
        pids = self.primary.kill()
        self.timeline.say(
            f"== the laptop dies: SIGKILL to the process groups of its health service, agent and bot (pids {pids}); "
            "Funnel now answers 502"
        )
        self.until(
            "failover: lease on the standby, instance running in moto",
            lambda: r()["lease_site"] == "standby" and r()["lease_epoch"] > first_epoch and self.ec2_state == "running",
            60,
        )
        standby_epoch = r()["lease_epoch"]
        self.until("on standby: the standby's agent runs the bot", lambda: self.all_on("standby"), 40)
        for _ in range(2):
            self.step()

        self.marks.back = time.time()
        children = self.primary.start()
        self.timeline.say(
            "== the laptop comes back: "
            + ", ".join(f"{c.name} pid {c.pid}" for c in children)
            + " (its agent keeps the bot stopped: the lease names the standby)"
        )
        self.until(
            "handback: lease home on the primary",
            lambda: r()["lease_site"] == "primary" and r()["lease_epoch"] > standby_epoch,
            90,
        )
        self.until("standby instance stopped in moto", lambda: self.ec2_state == "stopped", 30)
        self.until("the laptop runs the bot again", lambda: self.all_on("primary"), 30)
        if self.standby.up:
            raise StoryFailed("the standby's agent still runs although its instance is stopped")

        self.until(
            "steady again, and the start cooldown has passed (an EC2 start would not be held back)",
            lambda: self._healthy_for_now() and self._cooldown_passed(),
            max(60.0, self.t.start_cooldown_s + 30),
        )
        self._funnel_outage()
        self.until("Funnel back: the probe passes again", self._healthy_for(3), 40)
        self._called_off()
        self.marks.end = time.time()

    def _called_off(self) -> None:
        """The laptop dies again and is back before the standby could take the lease: the watchdog
        calls the failover off (docs/state-machine.md#calling-a-failover-off). The lease never
        leaves the laptop (same site, same epoch), its agent starts its bot again, and the
        pre-warmed standby stops once its hold ends."""

        def r() -> dict[str, Any]:
            return self.report

        lease = (r()["lease_site"], r()["lease_epoch"])
        self.extra_boot_s = SLOW_BOOT_S
        pids = self.primary.kill()
        self.marks.again = time.time()  # after the kill: every record of the laptop's bots came before
        self.timeline.say(
            f"== the laptop dies again (pids {pids}); this time the standby's boot is slow (an image pull, "
            f"+{SLOW_BOOT_S:g} s), so the laptop is back before the standby is ready"
        )
        self.until(
            "failing over, the lease still on the laptop: the standby is booting",
            lambda: r()["phase"] == "failing_over" and (r()["lease_site"], r()["lease_epoch"]) == lease,
            60,
        )
        self.marks.again_back = time.time()
        children = self.primary.start()
        self.timeline.say(
            "== the laptop comes back before the standby is ready: "
            + ", ".join(f"{c.name} pid {c.pid}" for c in children)
        )
        self.until(
            f"failover called off: the lease never left the laptop ({lease[0]}#{lease[1]})",
            lambda: r()["phase"] in ("healthy", "suspect") and (r()["lease_site"], r()["lease_epoch"]) == lease,
            30,
        )
        self.until("the laptop runs the bot again, under the same lease", lambda: self.all_on("primary"), 30)
        self.until("the pre-warmed standby is stopped", lambda: self.ec2_state == "stopped" and not self.standby.up, 60)
        self.extra_boot_s = 0.0

    def _healthy_for_now(self) -> bool:
        r = self.report
        return r["phase"] == "healthy" and r["lease_site"] == "primary" and bool(r["probe_ok"])

    def _cooldown_passed(self) -> bool:
        state = self.store.load_control()
        return state.last_start_at is None or time.time() - state.last_start_at > self.t.start_cooldown_s

    def _funnel_outage(self) -> None:
        check = self.funnel_check
        state = self.store.load_control()
        check.starts_before = ec2_starts(state)
        check.lease = f"{state.lease.site.value}#{state.lease.epoch}"
        self.marks.dark = time.time()
        self.funnel.set_dark(True)
        self.timeline.say(
            f"== Funnel goes dark for {self.t.funnel_outage_s:g} s: every connection reset; the laptop and its "
            "heartbeats are fine. This must NOT fail over"
        )
        self._in_outage = True
        deadline = time.monotonic() + self.t.funnel_outage_s
        try:
            while time.monotonic() < deadline:
                self.step()
        finally:
            self._in_outage = False
        self.funnel.set_dark(False)
        self.marks.light = time.time()
        check.seconds = self.marks.light - self.marks.dark
        check.starts_after = ec2_starts(self.store.load_control())
        check.alert = next((text for at, text in self.alerts if at >= self.marks.dark and DEGRADED_TITLE in text), None)
        self.timeline.say(
            f"== Funnel is back after {check.seconds:.0f} s: {check.failed_probes} failed probes, lease stayed "
            f"{check.lease}, EC2 {'/'.join(sorted(check.ec2_states))}, starts {check.starts_before} -> "
            f"{check.starts_after}, degraded alert {'raised' if check.alert else 'NOT raised'}"
        )
        if check.failed_probes < self.t.down_probes:
            raise StoryFailed(f"the Funnel outage failed only {check.failed_probes} probes: not a real test")
        if check.starts_after != check.starts_before:
            raise StoryFailed("the watchdog started EC2 during a Funnel-only outage")
        if not (check.alert and check.degraded_open):
            raise StoryFailed("the Funnel-only outage raised no degraded:probe alert")

    def _check_funnel_tick(self) -> None:
        check = self.funnel_check
        r = self.report
        check.ticks += 1
        if not r["probe_ok"]:
            check.failed_probes += 1
        check.ec2_states.add(self.ec2_state)
        lease = f"{r['lease_site']}#{r['lease_epoch']}"
        if lease != check.lease:
            raise StoryFailed(f"the lease moved during a Funnel-only outage: {check.lease} -> {lease}")
        if self.ec2_state != "stopped" or r["instance"] != "stopped":
            raise StoryFailed(f"EC2 is {self.ec2_state} during a Funnel-only outage")
        if DEGRADED_PROBE in self.store.load_control().open_alerts:
            check.degraded_open = True

    # -- the verdict

    def _moves(self, gaps: tuple[Gap, ...]) -> tuple[Gap | None, Gap | None]:
        """The failover gap (primary -> standby after the kill) and the handback gap (standby -> primary
        after the laptop came back), if the ledger shows them."""
        m = self.marks
        failover = next((g for g in gaps if m.killed is not None and g.end >= m.killed and g.after == "standby"), None)
        handback = next(
            (
                g
                for g in gaps
                if m.back is not None and g.start >= m.back and (g.before, g.after) == ("standby", "primary")
            ),
            None,
        )
        return failover, handback

    def instance_verdicts(self, per_instance: Mapping[str, Summary]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Each bot instance moved across the failover and the handback, and never ran on both sites at once."""
        failures: list[str] = []
        missing = [name for name in self.instances if name not in per_instance]
        if missing:
            failures.append(f"bot instances never ran: {', '.join(missing)}")
        figures: dict[str, dict[str, Any]] = {}
        for name, summary in sorted(per_instance.items()):
            failover, handback = self._moves(summary.gaps)
            label = name or "(unnamed)"
            if failover is None:
                failures.append(f"{label}: no failover in the ledger")
            if handback is None:
                failures.append(f"{label}: no handback in the ledger")
            if summary.overlap_s > 0:
                failures.append(f"{label} ran on both sites at once for {summary.overlap_s:.1f}s")
            figures[name] = {
                "failover_gap_s": None if failover is None else round(failover.seconds, 3),
                "handback_gap_s": None if handback is None else round(handback.seconds, 3),
                "overlap_s": round(summary.overlap_s, 3),
                "runs": dict(summary.starts),
            }
        return figures, failures

    def crash_bound_s(self) -> float:
        """What a crash may lose: the sync's interval, one upload (a second, generously, on a loaded
        machine) and one bot period (the counter is saved before its line is written)."""
        assert self.state_sync_s is not None
        return self.state_sync_s + 1.0 + self.t.bot_period_s

    def rpo_verdicts(self, state_moves: Sequence[Move]) -> tuple[list[dict[str, Any]], list[str]]:
        """RPO 0 where it is promised (a move after an orderly stop: the handback), the crash bound
        on the failover from the killed laptop, and a counter that moved with every instance."""
        failures: list[str] = []
        figures: list[dict[str, Any]] = []
        if self.state_sync_s is None:
            return figures, failures
        bound = self.crash_bound_s()
        for name in self.instances or ("",):
            label = name or "(unnamed)"
            mine = [mv for mv in state_moves if mv.instance == name]
            for kind, sites in (("failover", ("primary", "standby")), ("handback", ("standby", "primary"))):
                if not any((mv.before, mv.after) == sites for mv in mine):
                    failures.append(f"{label}: no counter carried over in the {kind}")
        for name, answer in sorted(self.fenced_uploads.items()):
            if not answer.startswith("refused"):
                failures.append(f"{name}: an upload under the laptop's fenced epoch was {answer}")
        for mv in state_moves:
            label = mv.instance or "(unnamed)"
            kind = _MOVE_NAMES.get((mv.before, mv.after), "restart")
            # A handback is orderly whether or not the standby's bot wrote its stop line: the standby
            # is alive, its agent stops the bot and its sync makes the final upload. (A lease-aware bot
            # that hears of the handover from its gate before the SIGTERM lands stops serving on its
            # own and writes none.) RPO 0 is promised either way.
            planned = mv.planned or kind == "handback"
            if planned and mv.lost:
                failures.append(
                    f"{label}: the {kind} after an orderly stop lost {mv.lost} counts ({mv.lost_s:.1f} s of work)"
                    " where RPO 0 is promised"
                )
            elif not planned and mv.lost_s > bound:
                failures.append(
                    f"{label}: the {kind} after a crash lost {mv.lost_s:.1f} s, over its bound {bound:.1f} s"
                )
            figures.append(
                {
                    "instance": mv.instance,
                    "move": kind,
                    "planned": planned,
                    "last": mv.last,
                    "restored": mv.restored,
                    "lost": mv.lost,
                    "lost_s": round(mv.lost_s, 3),
                    "bound_s": 0.0 if planned else round(bound, 3),
                }
            )
        return figures, failures

    def verdict(
        self,
        history: list[dict[str, Any]],
        summary: Summary,
        per_instance: Mapping[str, Summary] | None = None,
        state_moves: Sequence[Move] = (),
    ) -> Verdict:
        failures: list[str] = []
        m = self.marks
        gaps = summary.gaps
        failover, handback = self._moves(gaps)
        in_funnel = [
            g for g in gaps if m.dark is not None and m.light is not None and g.end > m.dark and g.start < m.light
        ]
        funnel_gap = sum(min(g.end, m.light or g.end) - max(g.start, m.dark or g.start) for g in in_funnel)
        if failover is None:
            failures.append("no failover in the ledger: the standby's bot never followed the primary's")
        if handback is None:
            failures.append("no handback in the ledger: the primary's bot never followed the standby's")
        if summary.overlap_s > 0:
            failures.append(f"two bots ran at once for {summary.overlap_s:.1f}s")
        if funnel_gap > 0:
            failures.append(f"the bot was down {funnel_gap:.1f}s during the Funnel-only outage")
        called_off_gap, called_off_lease = self._call_off_verdict(history, gaps, failures)
        state = self.store.load_control()
        # A failover enters failing_over once; the lease moving to the standby later is a
        # failing_over -> failing_over transition of the same failover, not a second start.
        history_starts = sum(1 for h in history if h["to"] == "failing_over" and h["from"] != "failing_over")
        # The start is the pre-warm's when the watchdog started the standby on suspicion (the
        # failover then finds it running) and the failover's otherwise: one either way, per death
        # of the laptop (the called-off failover's is a pre-warm that was not needed).
        deaths = 1 + (m.again is not None)
        if not ec2_starts(state) == history_starts == self.ec2_starts_seen == deaths:
            expected = "one EC2 start" if deaths == 1 else f"{deaths} EC2 starts"
            failures.append(
                f"expected exactly {expected}, got {ec2_starts(state)} (state), {history_starts} (history), "
                f"{self.ec2_starts_seen} (seen in moto)"
            )
        instance_figures, instance_failures = self.instance_verdicts(per_instance or {})
        failures += instance_failures
        rpo_figures, rpo_failures = self.rpo_verdicts(state_moves)
        failures += rpo_failures
        c = self.url_server.counters
        return Verdict(
            passed=not failures,
            failures=failures,
            downtime_s=round(summary.downtime_s, 3),
            failover_gap_s=None if failover is None else round(failover.seconds, 3),
            handback_gap_s=None if handback is None else round(handback.seconds, 3),
            funnel_gap_s=round(funnel_gap, 3),
            overlap_s=round(summary.overlap_s, 3),
            ec2_starts_state=ec2_starts(state),
            ec2_prewarm_starts=len(state.prewarm_starts),
            ec2_starts_history=history_starts,
            ec2_starts_seen=self.ec2_starts_seen,
            bot_runs=dict(summary.starts),
            heartbeats={str(k): v for k, v in sorted(c.by_status.items())},
            funnel={
                "seconds": round(self.funnel_check.seconds, 1),
                "failed_probes": self.funnel_check.failed_probes,
                "lease": self.funnel_check.lease,
                "ec2": sorted(self.funnel_check.ec2_states),
                "starts_before": self.funnel_check.starts_before,
                "starts_after": self.funnel_check.starts_after,
                "degraded_open": self.funnel_check.degraded_open,
                "alert": self.funnel_check.alert,
            },
            leases=list(self.leases_seen),
            called_off_gap_s=called_off_gap,
            called_off_lease=called_off_lease,
            instances=instance_figures,
            rpo=rpo_figures,
            fenced_uploads=dict(self.fenced_uploads),
        )

    def _call_off_verdict(
        self, history: list[dict[str, Any]], gaps: tuple[Gap, ...], failures: list[str]
    ) -> tuple[float | None, str | None]:
        """After the second death: one failover called off with the lease unchanged, the lease never
        on the standby again, and the laptop's own bot back (a primary -> primary gap in the ledger)."""
        m = self.marks
        if m.again is None:
            return None, None
        transitions = [h for h in history if "to" in h and "from" in h]
        calls = [
            h
            for h in transitions
            if h["from"] == "failing_over" and h["to"] in ("healthy", "suspect") and h["lease_from"] == h["lease_to"]
        ]
        lease = None
        if len(calls) != 1:
            failures.append(f"expected one called-off failover in the watchdog's history, found {len(calls)}")
        else:
            lease = f"{calls[0]['lease_to']['site']}#{calls[0]['lease_to']['epoch']}"
        moves = [h for h in transitions if (h["lease_from"]["site"], h["lease_to"]["site"]) == ("primary", "standby")]
        if len(moves) != 1:
            failures.append(f"the lease went to the standby {len(moves)} times; only the first death may move it")
        gap = next((g for g in gaps if g.end >= m.again and (g.before, g.after) == ("primary", "primary")), None)
        if gap is None:
            failures.append("no bot of the laptop after the called-off failover in the ledger")
        return (None if gap is None else round(gap.seconds, 3)), lease


def ec2_starts(state: ControlState) -> int:
    """The watchdog's EC2 starts: by failovers, and pre-warm starts of the last hour."""
    return state.start_count + len(state.prewarm_starts)


def print_summary(out: TextIO, v: Verdict, summary: Summary, marks: Marks, ledger_path: str) -> None:
    t0 = summary.window[0]

    def rel(at: float) -> str:
        return f"+{at - t0:.1f}s"

    w = out.write
    w("\n== drill summary (figures from the bots' ledger and the watchdog's state)\n")
    runs = ", ".join(f"{n} {site}" for site, n in v.bot_runs.items())
    w(f"ledger        {ledger_path}: {len(summary.runs)} bot runs ({runs}), times from the first bot start\n")
    w(f"downtime      {v.downtime_s:.1f} s with no bot running, in all (an upper bound):\n")
    for g in summary.gaps:
        what = _GAP_NAMES.get((g.before, g.after), "gap")
        w(
            f"              - {g.seconds:5.1f} s  {what}: {g.before}'s last record {rel(g.start)} -> "
            f"{g.after} bot start {rel(g.end)}\n"
        )
    if marks.killed is not None and v.failover_gap_s is not None:
        w(f"              (the laptop was killed at {rel(marks.killed)})\n")
    w(f"              - {v.funnel_gap_s:5.1f} s  during the Funnel-only outage\n")
    w(
        f"overlap       {v.overlap_s:.1f} s with two bots running "
        "(killed bots counted one period past their last record)\n"
    )
    w(
        f"EC2 starts    {v.ec2_starts_state} (the watchdog's starts: {v.ec2_starts_state - v.ec2_prewarm_starts} "
        f"by a failover, {v.ec2_prewarm_starts} pre-warm), {v.ec2_starts_history} "
        f"(failovers in its history), {v.ec2_starts_seen} (stopped -> running seen in moto)\n"
    )
    f = v.funnel
    w(
        f"funnel        {f['seconds']:.0f} s dark, {f['failed_probes']} failed probes: lease stayed {f['lease']}, "
        f"EC2 {'/'.join(f['ec2'])}, starts {f['starts_before']} -> {f['starts_after']}, alert: {f['alert']}\n"
    )
    beats = ", ".join(f"{n} x {s}" for s, n in v.heartbeats.items())
    w(f"heartbeats    through the Function URL: {beats or 'none'}\n")
    w(f"leases        {' -> '.join(v.leases)}\n")
    if v.called_off_gap_s is not None:
        w(
            f"called off    the second death's failover: the lease stayed {v.called_off_lease}, "
            f"the laptop's bot back after {v.called_off_gap_s:.1f} s\n"
        )
    print_instances(out, v)
    print_rpo(out, v)
    out.flush()


_MOVE_NAMES = {("primary", "standby"): "failover", ("standby", "primary"): "handback"}


def print_rpo(out: TextIO, v: Verdict) -> None:
    """One line per instance and move of its counter: what the state handoff carried over."""
    for f in v.rpo:
        how = "orderly stop, RPO 0 promised" if f["planned"] else f"crash, bound {f['bound_s']:.1f} s"
        out.write(
            f"rpo           {f['instance'] or '(unnamed)'} {f['move']}: count {f['last']} -> restored {f['restored']},"
            f" {f['lost']} lost ({f['lost_s']:.1f} s of work; {how})\n"
        )
    for name, answer in v.fenced_uploads.items():
        out.write(f"fenced        {name}: an upload under the laptop's epoch 1 after the failover: {answer}\n")


def print_instances(out: TextIO, v: Verdict) -> None:
    """One line per bot instance: its own failover and handback gaps and overlap."""

    def secs(value: float | None) -> str:
        return "none" if value is None else f"{value:.1f} s"

    for name, f in v.instances.items():
        runs = ", ".join(f"{n} {site}" for site, n in f["runs"].items())
        out.write(
            f"instance      {name or '(unnamed)'}: failover {secs(f['failover_gap_s'])}, handback "
            f"{secs(f['handback_gap_s'])}, on both sites at once {f['overlap_s']:.1f} s ({runs} runs)\n"
        )
