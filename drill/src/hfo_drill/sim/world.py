"""The failover simulator: the shipped watchdog and agent rule in a simulated world, event by event.

What runs for real (imported, unchanged):

- the watchdog's tick, `hfo_watchdog.tick.run_tick(TickDeps)`, every `tick_s` at the run's phase;
- the watchdog's heartbeat endpoint, `hfo_watchdog.heartbeat.handle(event, HeartbeatDeps)`: each
  heartbeat is a signed Function URL event (hfo_protocol's builder and HMAC), checked for size,
  signature, skew and replay exactly as in Lambda, and its lease answer is signed;
- both over `hfo_watchdog.store.DynamoStateStore` on `FakeDynamoDB` (dynamo.py): the store's
  conditional writes and transactions run, and lose, as on DynamoDB;
- each agent's lease rule, `hfo_site.lease.LeaseTracker`, fed as `hfo_site.agent.Agent` feeds it:
  every verified answer whose nonce matches goes to `observe(answer, sent_at)` with the lease
  clock read when the heartbeat was sent. The lease clock is the agent's CLOCK_BOOTTIME: it keeps
  counting while the laptop sleeps.

What is modelled (see docs/benchmarks.md#the-simulator):

- the laptop (up, asleep or dead, with its internet, its Funnel path and its path to AWS) and the
  standby instance (a `ports.StandbyInstance` with the boot model of model.BootModel);
- the agents' loops (agent.py: heartbeat every effective interval, jittered down by up to 10 %, at
  once after a start or stop; reconcile on every answer, at the instant the lease runs out, and
  within a second of waking) and their bots (pod start, Discord connect, stop);
- the probe (`ports.Prober`): it passes when the laptop is up, awake and online and its Funnel
  path is up; `renew()` hands the lease renewal to the laptop's agent when the probe path is up.

The seed tutorial's design runs in the same world (same laptop, instance, boot draws and bots),
with its own controller (`SeedController`).
"""

from __future__ import annotations

import base64
import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.heartbeat import (
    Heartbeat,
    LeaseAnswer,
    build_heartbeat,
    parse_lease_answer,
    sign_heartbeat,
    verify_lease_answer,
)
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import SIGNATURE_HEADER
from hfo_site.agent import FAILED_RETRY_S, RECHECK_S, REPORT_INTERVAL_S, WAKE_HOLD_S, WakeHold
from hfo_site.lease import LeaseTracker, Outcome
from hfo_watchdog import heartbeat as heartbeat_handler
from hfo_watchdog.commit import Effects
from hfo_watchdog.core import engine
from hfo_watchdog.core.model import (
    ControlState,
    Ec2Outcome,
    InstanceState,
    Mode,
    Notification,
    Policy,
    ProbeFailure,
    ProbeResult,
    Renewal,
    RenewOutcome,
    Site,
)
from hfo_watchdog.core.steady import steady_gap_s
from hfo_watchdog.store import DynamoStateStore, HeartbeatReplay, HistoryEntry, StoreUnavailable
from hfo_watchdog.tick import TickDeps, TickReport, run_tick

from hfo_drill.sim.dynamo import FakeDynamoDB
from hfo_drill.sim.model import BootModel, Trace
from hfo_drill.sim.spans import Span

T0 = 1_800_000_000.0  # the watchdog's wall clock at simulated second 0
TABLE = "hfo-sim"
_KEYRING = Keyring("sim", {"sim": b"simulated-shared-secret-0123456789abcdef"})


@dataclass(frozen=True)
class Setup:
    """How one run is configured: the watchdog's settings, the bots' behaviour, the schedule.

    `policy`, `tick_s` and `max_skew_s` come from hfo_watchdog.config.Settings (the benchmark
    builds them from the shipped defaults plus overrides). `lease_aware_bot`: the bot asks its
    site's agent before it (re)connects to Discord after a freeze or a network loss."""

    policy: Policy
    tick_s: float = 60.0
    max_skew_s: float = 30.0
    lease_aware_bot: bool = False
    heartbeat_retries: int = 2  # hfo_site's HFO_HEARTBEAT_RETRIES default
    # True: every heartbeat is a signed Function URL event through heartbeat.handle (signature,
    # schema, skew, replay, signed answer). False: the same handler past its stateless checks,
    # which the replay guard, the store and the engine still run (twice as fast; tests/sim
    # checks that both give every agent the same answers).
    signed: bool = True
    # How long the tick's EC2 read (DescribeInstances) takes, between its state read and its
    # write: heartbeats due meanwhile are handled inside that window, so the store's conditional
    # writes can lose their races for real (hfo_watchdog.commit: `lost_race`). 0: atomic ticks.
    tick_describe_s: float = 0.3


@dataclass(frozen=True)
class Command:
    """An operator's `hfo mode` at trace second `at` (a drill lasts `drill_s`), through the CLI's
    own conditional write (hfo_watchdog.cli.change_mode)."""

    at: float
    mode: Mode
    drill_s: float = 0.0


@dataclass
class Recorder:
    """What a run leaves behind, in simulated seconds (the trace's second s is warmup_s + s)."""

    bot_spans: dict[str, list[Span]] = field(default_factory=lambda: {"primary": [], "standby": []})
    hold_spans: dict[str, list[Span]] = field(default_factory=lambda: {"primary": [], "standby": []})
    ec2_starts: list[tuple[float, str]] = field(default_factory=list)  # (t, purpose)
    ec2_stops: list[float] = field(default_factory=list)
    running_spans: list[Span] = field(default_factory=list)
    probes: list[tuple[float, bool]] = field(default_factory=list)
    heartbeats: list[float] = field(default_factory=list)  # the laptop's, delivered
    renewals: list[tuple[float, bool]] = field(default_factory=list)  # (t, delivered)
    ticks: list[TickReport] = field(default_factory=list)
    notifications: list[tuple[float, Notification]] = field(default_factory=list)
    refusals: list[tuple[float, str, str]] = field(default_factory=list)  # (t, site, code)
    decisions: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # the `decision` log lines
    mode_errors: list[tuple[float, str]] = field(default_factory=list)  # operator commands refused
    lost_races: int = 0
    wake_holds: list[tuple[float, str, str]] = field(default_factory=list)  # (t, site, outcome): agent wake holds
    failovers: list[float] = field(default_factory=list)  # seed: its EC2 starts
    history: list[HistoryEntry] = field(default_factory=list)


class Events:
    """The event queue: callbacks at simulated times, in time order, ties in scheduling order."""

    def __init__(self) -> None:
        self.t = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0

    def at(self, when: float, fn: Callable[[], None]) -> None:
        self._n += 1
        heapq.heappush(self._queue, (max(when, self.t), self._n, fn))

    def run_due(self, until: float) -> None:
        """From inside an event: run the events due before `until` now (time moves on)."""
        q = self._queue
        while q and q[0][0] < until:
            when, _, fn = heapq.heappop(q)
            self.t = when
            fn()
        self.t = max(self.t, until)

    def run_until(self, end: float) -> None:
        q = self._queue
        while q and q[0][0] < end:
            when, _, fn = heapq.heappop(q)
            self.t = when
            fn()
        self.t = end


def answer_for(hb: Heartbeat, state: ControlState, now: float, policy: Policy, server_time: float) -> LeaseAnswer:
    """The lease answer heartbeat.handle gives for `hb` once `state` is what it answers with
    (its fields as handle fills them; tests/sim/test_world.py compares both paths)."""
    interval_of = getattr(engine, "answer_interval", None)
    interval = policy.heartbeat_interval_s if interval_of is None else interval_of(state, Site(hb.site), now, policy)
    return LeaseAnswer(
        nonce=hb.nonce,
        server_time=server_time,
        site=state.lease.site.value,
        epoch=state.lease.epoch,
        ttl_s=int(policy.lease_ttl_s),
        mode=state.mode.value,
        phase=state.phase.value,
        heartbeat_interval_s=max(1, int(interval)),
    )


# ------------------------------------------------------------------------------------ the bots


class Bot:
    """One site's Discord bot: its process (none, starting, running, stopping) and its gateway
    session. It answers while running or stopping (until its process has exited), connected,
    not frozen, and its site online."""

    def __init__(self, world: World, site: str) -> None:
        self.world = world
        self.site = site
        self.process = "none"
        self.connected = False
        self.frozen = False
        self.gen = 0
        self.agent: SimAgent | None = None  # asked before connecting when the bot is lease-aware
        self.waiting_for_lease = False
        self._answering_since: float | None = None
        self._pending: tuple[str, float] | None = None
        self._frozen_remaining: tuple[str, float] | None = None

    # the process

    @property
    def workload(self) -> str:
        return "stopped" if self.process == "none" else self.process

    def start(self) -> None:
        """The pod starts (on the standby, not before the boot's pre-pull has the image)."""
        if self.process != "none":
            return
        self.process = "starting"
        wait = 0.0
        if self.site == "standby":
            wait = max(0.0, self.world.image_ready_at - self.world.events.t)
        self._after(wait + self.world.boot.pod_start_s, "running")

    def stop(self) -> None:
        if self.process in ("starting", "running"):
            self.process = "stopping"
            self._after(self.world.boot.bot_stop_s, "exited")
            self._changed()

    def kill(self) -> None:
        self.gen += 1
        self.process, self.connected, self.waiting_for_lease = "none", False, False
        self._frozen_remaining = None
        self._changed()

    def _after(self, seconds: float, what: str) -> None:
        self.gen += 1
        gen = self.gen
        due = self.world.events.t + seconds
        self._pending = (what, due)
        self.world.events.at(due, lambda: self._fire(gen, what))

    def _fire(self, gen: int, what: str) -> None:
        if gen != self.gen or self.frozen:
            return
        self._pending = None
        if what == "running":
            self.process = "running"
            self._connect()
        elif what == "connected":
            lease_ok = not (self.world.setup.lease_aware_bot and self.agent is not None and not self.agent.holds())
            if self.process in ("running", "stopping") and self.world.online(self.site) and lease_ok:
                self.connected = True
            elif self.process == "running" and not lease_ok:
                self.waiting_for_lease = True
        elif what == "exited":
            self.process, self.connected = "none", False
        self._changed()
        if self.agent is not None:
            self.agent.workload_changed()

    # the gateway session

    def _connect(self) -> None:
        """(Re)connect to Discord: a lease-aware bot asks its agent first."""
        if self.process != "running" or not self.world.online(self.site) or self.frozen:
            return
        if self.world.setup.lease_aware_bot and self.agent is not None and not self.agent.holds():
            self.waiting_for_lease = True
            return
        self.waiting_for_lease = False
        self.gen += 1
        gen = self.gen
        self._pending = ("connected", self.world.events.t + self.world.boot.gateway_connect_s)
        self.world.events.at(self._pending[1], lambda: self._fire(gen, "connected"))

    def lease_news(self) -> None:
        if self.waiting_for_lease:
            self._connect()

    def lease_lost(self) -> None:
        """A lease-aware bot's gate goes stale with its agent's lease: it disconnects at once."""
        if self.world.setup.lease_aware_bot and self.agent is not None and self.connected:
            self.connected = False
            self.waiting_for_lease = self.process == "running"
            self._changed()

    def offline(self) -> None:
        if self.connected:
            self.connected = False
            self._changed()

    def online(self) -> None:
        if self.process == "running" and not self.connected:
            self._connect()

    def freeze(self) -> None:
        self.frozen = True
        pending = self._pending
        self._frozen_remaining = None if pending is None else (pending[0], pending[1] - self.world.events.t)
        self.gen += 1
        self._changed()

    def thaw(self) -> None:
        """Waking: the process resumes where it was. A lease-aware bot drops its session and asks
        its agent before reconnecting; the shipped bot without that check carries on at once."""
        self.frozen = False
        remaining = self._frozen_remaining
        self._frozen_remaining = None
        if remaining is not None and remaining[0] != "connected":
            self._after(max(0.0, remaining[1]), remaining[0])
        if self.world.setup.lease_aware_bot and self.agent is not None:
            self.connected = False
            if self.process == "running":
                self._connect()
        elif self.process == "running" and not self.connected:
            self._connect()
        self._changed()

    def answering(self) -> bool:
        return (
            self.process in ("running", "stopping")
            and self.connected
            and not self.frozen
            and self.world.online(self.site)
        )

    def _changed(self) -> None:
        now = self.world.events.t
        on = self.answering()
        if on and self._answering_since is None:
            self._answering_since = now
        elif not on and self._answering_since is not None:
            self.world.rec.bot_spans[self.site].append((self._answering_since, now))
            self._answering_since = None

    def close(self) -> None:
        if self._answering_since is not None:
            self.world.rec.bot_spans[self.site].append((self._answering_since, self.world.events.t))
            self._answering_since = None


# ------------------------------------------------------------------------------------ the agents


class SimAgent:
    """One site agent process (hfo_site.agent.Agent's loops; its lease rule is the real
    LeaseTracker). Dies with its machine; frozen while its laptop sleeps."""

    def __init__(self, world: World, site: str, bot: Bot) -> None:
        self.world = world
        self.site = site
        self.bot = bot
        self.tracker = LeaseTracker(site)
        self.boot_id = base64.urlsafe_b64encode(world.rng.randbytes(16)).decode().rstrip("=")
        self.seq = 0
        self.alive = True
        self.frozen = False
        self.gen = 0
        self.server_interval: float | None = None
        self._next_beat = 0.0
        self._frozen_at = 0.0
        self._hold: Span | None = None
        self._expiry_at: float | None = None
        self.pending: list[tuple[str, int, float, float]] = []  # grants the health service holds for it
        self._then: float | None = None  # the delay after the next beat, once (the run's phase)
        self._woke_at: float | None = None  # thawed, and no loop has seen the suspend yet
        self.wake_hold: WakeHold | None = None
        bot.agent = self

    # the lease clock: CLOCK_BOOTTIME (counts a suspend); any origin will do
    def mono(self) -> float:
        return self.world.events.t

    def holds(self) -> bool:
        return self.alive and self.tracker.holds(self.mono())

    def effective_interval(self) -> float:
        interval = self.world.setup.policy.heartbeat_interval_s
        if self.server_interval is not None:
            interval = min(interval, self.server_interval)
        view = self.tracker.view
        if view is not None:
            interval = min(interval, view.ttl_s / 3)
        return interval

    # the heartbeat loop

    def start(self, first_beat_in: float = 0.0, then: float | None = None) -> None:
        self._then = then
        self._schedule_beat(first_beat_in)

    def _schedule_beat(self, delay: float) -> None:
        self.gen += 1
        gen = self.gen
        self._next_beat = self.world.events.t + delay
        self.world.events.at(self._next_beat, lambda: self._beat(gen))

    def _beat(self, gen: int) -> None:
        if gen != self.gen or not self.alive or self.frozen:
            return
        if self.check_suspend():  # hfo_site.agent.heartbeat_loop looks before each round
            self.reconcile()  # its _changed wakes the reconcile loop while this round is out
        started = self.world.events.t
        answer: LeaseAnswer | None = None
        sent = 0.0
        for _attempt in range(1 + self.world.setup.heartbeat_retries):
            if not self.world.heartbeat_path(self.site):
                continue  # a network failure: retried at once (the real pauses are a fraction of a second)
            answer, sent = self.world.controller.deliver_heartbeat(self)
            break
        if answer is not None:
            self._observe(answer, sent)
        self._end_wake_round(started)
        if self._then is not None:
            delay, self._then = self._then, None
        else:
            interval = self.effective_interval()
            if answer is None:
                interval = min(interval, FAILED_RETRY_S)  # hfo_site.agent: a failed round is retried sooner
            delay = interval * self.world.rng.uniform(0.9, 1.0) - (self.world.events.t - started)
        self._schedule_beat(max(0.0, delay))

    def _observe(self, answer: LeaseAnswer, sent_at_mono: float) -> None:
        outcome = self.tracker.observe(answer, sent_at_mono)
        if outcome is Outcome.LOWER_EPOCH:
            return
        self.server_interval = float(answer.heartbeat_interval_s)
        self.lease_news()

    def lease_news(self) -> None:
        """The tracker changed: record the hold, reconcile, and tell a waiting bot."""
        self._record_hold()
        self.reconcile()
        self.bot.lease_news()

    def _record_hold(self) -> None:
        """Keep the span during which the tracker holds a fresh lease (recorder.hold_spans)."""
        now = self.world.events.t
        hold = self._hold
        if hold is not None and hold[1] <= now:
            self.world.rec.hold_spans[self.site].append(hold)
            hold = None
        deadline = self.tracker.expires_at() if self.alive else None
        if deadline is not None and deadline > now:
            hold = (now if hold is None else hold[0], deadline)
        elif hold is not None:
            self.world.rec.hold_spans[self.site].append((hold[0], now))
            hold = None
        self._hold = hold

    def _end_hold(self) -> None:
        now = self.world.events.t
        if self._hold is not None:
            self.world.rec.hold_spans[self.site].append((self._hold[0], min(self._hold[1], now)))
        self._hold = None

    # the reconcile loop

    def reconcile(self) -> None:
        if not self.alive or self.frozen:
            return
        self.check_suspend()  # hfo_site.agent.reconcile_loop looks before each reconcile_once
        bot = self.bot
        hold = self.wake_hold
        if hold is not None:  # hfo_site.agent.Agent.reconcile_once, its wake-hold branch
            if self.holds():
                self._end_wake_hold("renewed")
            elif self.tracker.expires_at() is None:
                self._end_wake_hold("elsewhere")
            elif self.mono() >= hold.until:
                self._end_wake_hold("ran_out")
            else:
                bot.lease_lost()  # the bot's own gate hears "holds: false" (GET /v1/lease) meanwhile
                return
        if self.holds():
            if bot.process == "none":
                bot.start()
                self._schedule_beat(0.0)  # hfo_site.agent: a start or stop asks for a heartbeat at once
            deadline = self.tracker.expires_at()
            if deadline is not None and deadline != self._expiry_at:
                self._expiry_at = deadline
                self.world.events.at(deadline, self._expiry)
        else:
            bot.lease_lost()
            if bot.process in ("starting", "running"):
                bot.stop()
                self._schedule_beat(0.0)

    def _expiry(self) -> None:
        if self.alive and not self.frozen and self.world.events.t >= (self._expiry_at or 0.0):
            self._record_hold()
            self.reconcile()

    def workload_changed(self) -> None:
        """The bot's process changed; the agent sees it at its next observation (heartbeat)."""
        return None

    def pass_on(self, site: str, epoch: int, ends_at: float, ttl_s: float) -> None:
        """The health service holds a grant for this agent (hfo_site.renewals.PendingGrants): the
        agent's next status report, within REPORT_INTERVAL_S, takes it to LeaseTracker.grant,
        ending at the report's send time + the remaining time, i.e. at `ends_at` on this clock."""
        self.pending.append((site, epoch, ends_at, ttl_s))
        delay = self.world.rng.uniform(0.0, REPORT_INTERVAL_S)
        self.world.events.at(self.world.events.t + delay, self._report)

    def _report(self) -> None:
        if not self.alive or self.frozen:
            return  # a frozen agent reports after waking (_wake_check)
        self.check_suspend()  # hfo_site.agent.report_loop looks before each report
        now = self.mono()
        pending, self.pending = self.pending, []
        changed = False
        for site, epoch, ends_at, ttl_s in pending:
            if ends_at > now:  # the health service keeps a grant until it runs out
                before = self.tracker.expires_at()
                self.tracker.grant(site, epoch, ends_at, ttl_s)
                changed = changed or self.tracker.expires_at() != before
        if changed:
            self.lease_news()

    # life

    def kill(self) -> None:
        self.alive = False
        self.gen += 1
        self._end_hold()

    def freeze(self) -> None:
        self.frozen = True
        self._frozen_at = self.world.events.t
        self.gen += 1

    def thaw(self) -> None:
        self.frozen = False
        now = self.world.events.t
        self._woke_at = now
        # The heartbeat loop's timer runs on time.monotonic, which stood still: it would fire late,
        # but the reconcile loop notices the suspend within RECHECK_S and asks for a round at once.
        self._schedule_beat(max(0.0, self._next_beat - self._frozen_at))
        gen = self.gen
        self.world.events.at(now + self.world.rng.uniform(0.0, RECHECK_S), lambda: self._wake_check(gen))

    def _wake_check(self, gen: int) -> None:
        """hfo_site.agent.reconcile_loop's (or report_loop's) check_suspend within RECHECK_S of
        waking, unless the heartbeat loop saw the suspend first: reconcile, report, heartbeat at once."""
        if self.alive and not self.frozen and gen == self.gen and self.check_suspend():
            self._record_hold()
            self.reconcile()
            self._report()
            self._schedule_beat(0.0)

    def check_suspend(self) -> bool:
        """hfo_site.agent.Agent.check_suspend, once per suspend, by whichever loop runs first after
        waking. A hold still open from an earlier wake ends. When the bot runs (the agent's intent)
        under a lease of this site that lapsed during the suspend (after the freeze: the real agent
        compares with its last check before it, and fences at the deadline while awake), less than
        one TTL ago, the stop waits for the wake round, at most WAKE_HOLD_S from waking."""
        woke = self._woke_at
        if woke is None:
            return False
        self._woke_at = None
        if self.wake_hold is not None:
            self._end_wake_hold("suspended")
        now = self.mono()
        ends, view = self.tracker.expires_at(), self.tracker.view
        if (
            self.bot.process in ("starting", "running")
            and ends is not None
            and view is not None
            and self._frozen_at < ends <= now < ends + view.ttl_s
        ):
            hold = WakeHold(since=now, until=woke + WAKE_HOLD_S)
            self.wake_hold = hold
            self.world.events.at(hold.until, lambda: self._hold_over(hold))  # reconcile_loop wakes then
        self._schedule_beat(0.0)  # check_suspend sets _beat_now
        return True

    def _end_wake_hold(self, outcome: str) -> None:
        """hfo_site.agent.Agent._end_wake_hold (counted in hfo_agent_wake_holds_total)."""
        self.wake_hold = None
        self.world.rec.wake_holds.append((self.world.events.t, self.site, outcome))

    def _end_wake_round(self, started: float) -> None:
        """hfo_site.agent.Agent._end_wake_round: the first round sent after the suspend was seen
        ends the hold unless it left the lease held (reconcile ends it as renewed, no stop)."""
        hold = self.wake_hold
        if hold is None or started < hold.since or self.holds():
            return
        self._end_wake_hold("elsewhere" if self.tracker.expires_at() is None else "failed")
        self.reconcile()

    def _hold_over(self, hold: WakeHold) -> None:
        if self.wake_hold is hold and self.alive and not self.frozen:
            self.reconcile()


# ------------------------------------------------------------------------------------ EC2


class SimInstance:
    """The standby instance as `ports.StandbyInstance`: stopped -> pending -> running ->
    stopping -> stopped, on the boot model's times. Starts and stops are idempotent, as in
    hfo_watchdog.ec2 (a start while stopping waits)."""

    def __init__(self, world: World, failing_starts: frozenset[int] = frozenset(), missing: bool = False) -> None:
        self.world = world
        self._state = InstanceState.MISSING if missing else InstanceState.STOPPED
        self.gen = 0
        self.attempts = 0
        self.failing_starts = failing_starts  # 0-based start attempts that find no capacity

    def state(self) -> InstanceState:
        """DescribeInstances. Inside a tick it takes `tick_describe_s`: whatever is due meanwhile
        (heartbeats above all) happens between the tick's read of the state and its write."""
        window = self.world.setup.tick_describe_s
        if self.world.in_tick and window > 0:
            self.world.in_tick = False
            try:
                self.world.events.run_due(self.world.events.t + window)
            finally:
                self.world.in_tick = True
        return self._state

    def ensure_running(self) -> Ec2Outcome:
        if self._state == InstanceState.MISSING:
            return Ec2Outcome(False, "none", self._state, error="missing", detail="no such instance (simulated)")
        if self._state == InstanceState.STOPPED:
            attempt, self.attempts = self.attempts, self.attempts + 1
            if attempt in self.failing_starts:
                return Ec2Outcome(
                    False, "none", self._state, "sim", error="insufficient_capacity", detail="no capacity (simulated)"
                )
            self._set(InstanceState.PENDING)
            self.world.rec.ec2_starts.append((self.world.events.t, self.world.start_purpose()))
            self._after(self.world.boot.ec2_start_s, InstanceState.RUNNING)
            return Ec2Outcome(True, "start_requested", self._state, "sim")
        if self._state in (InstanceState.PENDING, InstanceState.RUNNING):
            return Ec2Outcome(True, "already_running", self._state, "sim")
        return Ec2Outcome(True, "waiting", self._state, "sim", detail="instance is stopping")

    def stopped_by_someone_else(self) -> None:
        """The console, a script or EC2 itself stops the instance."""
        if self._state in (InstanceState.PENDING, InstanceState.RUNNING):
            self.ensure_stopped()

    def ensure_stopped(self) -> Ec2Outcome:
        if self._state == InstanceState.MISSING:
            return Ec2Outcome(False, "none", self._state, error="missing", detail="no such instance (simulated)")
        if self._state in (InstanceState.PENDING, InstanceState.RUNNING):
            self.world.rec.ec2_stops.append(self.world.events.t)
            self._set(InstanceState.STOPPING)
            self._after(self.world.boot.ec2_stop_s, InstanceState.STOPPED)
            return Ec2Outcome(True, "stop_requested", self._state, "sim")
        if self._state == InstanceState.STOPPED:
            return Ec2Outcome(True, "already_stopped", self._state, "sim")
        return Ec2Outcome(True, "waiting", self._state, "sim")

    def _after(self, seconds: float, to: InstanceState) -> None:
        self.gen += 1
        gen = self.gen
        self.world.events.at(self.world.events.t + seconds, lambda: self._reach(gen, to))

    def _reach(self, gen: int, to: InstanceState) -> None:
        if gen == self.gen:
            self._set(to)

    def _set(self, to: InstanceState) -> None:
        before, self._state = self._state, to
        now = self.world.events.t
        if to == InstanceState.RUNNING:
            self._running_since = now
            self.world.standby_booted()
        if before == InstanceState.RUNNING:
            self.world.rec.running_spans.append((self._running_since, now))
        if to == InstanceState.STOPPING:
            self.world.standby_shutdown()

    def close(self) -> None:
        if self._state == InstanceState.RUNNING:
            self.world.rec.running_spans.append((self._running_since, self.world.events.t))


# ------------------------------------------------------------------------------------ the world


class World:
    """One run: a trace, a boot model, a setup, a controller (ours or the seed's)."""

    def __init__(
        self,
        trace: Trace,
        boot: BootModel,
        setup: Setup,
        *,
        rng: random.Random,
        warmup_s: float = 600.0,
        failing_starts: frozenset[int] = frozenset(),
        external_stops: Sequence[float] = (),
        commands: Sequence[Command] = (),
        instance_missing: bool = False,
    ) -> None:
        self.trace = trace
        self.boot = boot
        self.setup = setup
        self.rng = rng
        self.boot_rng = random.Random(rng.random())  # the instance's boot draws, alike for every design
        self.warmup_s = warmup_s
        self.events = Events()
        self.rec = Recorder()
        self.laptop = "up"  # up | asleep | dead
        self.down = {"net": False, "funnel": False, "aws": False}
        self.laptop_bot = Bot(self, "primary")
        self.standby_bot = Bot(self, "standby")
        self.instance = SimInstance(self, failing_starts, instance_missing)
        self.controller: Controller = NoController()
        self.image_ready_at = 0.0
        self.in_tick = False
        self.commands = tuple(commands)
        self._schedule_trace()
        for t in external_stops:
            self.events.at(warmup_s + t, self.instance.stopped_by_someone_else)

    @property
    def end(self) -> float:
        return self.warmup_s + self.trace.duration

    def wall(self) -> float:
        return T0 + self.events.t

    # the trace

    def _schedule_trace(self) -> None:
        w = self.warmup_s
        for channel in ("laptop", "net", "funnel", "aws"):
            for start, end, asleep in self.trace.down_spans(channel):
                self.events.at(w + start, lambda c=channel, a=asleep: self._channel(c, False, a))  # type: ignore[misc]
                self.events.at(w + end, lambda c=channel, a=asleep: self._channel(c, True, a))  # type: ignore[misc]

    def _channel(self, channel: str, up: bool, asleep: bool) -> None:
        if channel == "laptop":
            if up:
                self._laptop_back()
            else:
                self._laptop_gone(asleep)
            return
        was_online = self.online("primary")
        self.down[channel] = not up
        if channel == "net":
            if was_online and not self.online("primary"):
                self.laptop_bot.offline()
            elif not was_online and self.online("primary"):
                self.laptop_bot.online()
            self.laptop_bot._changed()

    def _laptop_gone(self, asleep: bool) -> None:
        if asleep:
            self.laptop = "asleep"
            self.laptop_bot.freeze()
            self.controller.laptop_frozen()
        else:
            self.laptop = "dead"
            self.laptop_bot.kill()
            self.controller.laptop_died()

    def _laptop_back(self) -> None:
        if self.laptop == "asleep":
            self.laptop = "up"
            self.controller.laptop_thawed()
            self.laptop_bot.thaw()
        else:
            self.laptop = "up"
            self.controller.laptop_booted()

    def online(self, site: str) -> bool:
        if site == "standby":
            return True
        return self.laptop == "up" and not self.down["net"]

    def heartbeat_path(self, site: str) -> bool:
        if site == "standby":
            return self.instance.state() == InstanceState.RUNNING
        return self.laptop == "up" and not self.down["net"] and not self.down["aws"]

    def probe_path(self) -> bool:
        return self.laptop == "up" and not self.down["net"] and not self.down["funnel"]

    # the standby's machine

    def standby_booted(self) -> None:
        """`running`: K3s comes up, then the agent's pod (and, for the seed, the bot's pod)."""
        b = self.boot
        k3s = self.events.t + b.os_boot_s + b.k3s_ready(self.boot_rng)
        pulled = k3s + (b.image_pull_s if b.image_changed else 0.0)
        self.image_ready_at = pulled
        self.controller.standby_node_ready_at(k3s, pulled)

    def standby_shutdown(self) -> None:
        """StopInstances: the OS shuts down; the agent is gone at once, the bot exits within its stop."""
        self.controller.standby_shutdown()
        self.standby_bot.stop()

    def start_purpose(self) -> str:
        return self.controller.start_purpose()

    # the run

    def run(self) -> Recorder:
        self.controller.begin()
        for cmd in self.commands:
            self.events.at(self.warmup_s + cmd.at, lambda c=cmd: self.controller.command(c))  # type: ignore[misc]
        self.events.run_until(self.end)
        self.laptop_bot.close()
        self.standby_bot.close()
        self.instance.close()
        self.controller.finish()
        return self.rec


class Controller:
    """The design under test: who decides and who runs the bots."""

    def begin(self) -> None: ...
    def finish(self) -> None: ...
    def laptop_died(self) -> None: ...
    def laptop_booted(self) -> None: ...
    def laptop_frozen(self) -> None: ...
    def laptop_thawed(self) -> None: ...
    def standby_node_ready_at(self, k3s_ready: float, image_ready: float) -> None: ...
    def standby_shutdown(self) -> None: ...

    def start_purpose(self) -> str:
        return "failover"

    def deliver_heartbeat(self, agent: SimAgent) -> tuple[LeaseAnswer | None, float]:
        raise AssertionError("this design has no heartbeats")

    def command(self, cmd: Command) -> None:
        raise AssertionError("this design has no operator commands")


class NoController(Controller):
    pass


# ------------------------------------------------------------------------------------ ours


class _SimLog:
    """The slice of a logger the watchdog uses; keeps what the simulator reads back."""

    def __init__(self, world: World) -> None:
        self.world = world

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        return None

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg == "ec2_action":
            # Effects logs each EC2 action after the port's call: the start just recorded gets
            # the purpose the engine gave its action (failover or pre-warm).
            extra = kwargs.get("extra") or {}
            starts = self.world.rec.ec2_starts
            if extra.get("result") == "start_requested" and starts:
                purpose = extra.get("purpose")
                starts[-1] = (starts[-1][0], purpose if isinstance(purpose, str) else "failover")
        elif msg == "decision":
            self.world.rec.decisions.append((self.world.events.t, dict(kwargs.get("extra") or {})))

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg == "lost_race":
            self.world.rec.lost_races += 1
        elif msg == "heartbeat_refused":
            extra = kwargs.get("extra") or {}
            self.world.rec.refusals.append((self.world.events.t, str(extra.get("site")), str(extra.get("error"))))

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        return None


class _SimNotifier:
    def __init__(self, world: World) -> None:
        self.world = world

    def notify(self, notification: Notification) -> bool:
        self.world.rec.notifications.append((self.world.events.t, notification))
        return True


class SimProber:
    """`ports.Prober`: the probe follows the trace (it passes when the laptop is up, awake and
    online, its Funnel path is up and its agent runs); `renew` reaches the laptop's agent over
    the probe path, for the probe that carried the renewal's nonce, anchored at the time the
    health service answered that probe (on the agent's lease clock)."""

    def __init__(self, world: World, ours: OurController) -> None:
        self.world = world
        self.ours = ours
        self.answered: dict[str, float] = {}  # nonce -> the laptop's lease clock when it answered

    def probe(self) -> ProbeResult:
        w = self.world
        at = w.wall()
        nonce = base64.urlsafe_b64encode(w.rng.randbytes(24)).decode()
        agent = self.ours.laptop_agent
        ok = w.probe_path() and agent is not None
        w.rec.probes.append((w.events.t, ok))
        self.answered.clear()  # a renewal names this tick's probe
        if ok and agent is not None:
            self.answered[nonce] = agent.mono()
            return ProbeResult(ok=True, at=at, http_status=200, latency_ms=0.0, nonce=nonce)
        if w.laptop == "up" and not w.down["net"]:
            return ProbeResult(ok=False, at=at, failure=ProbeFailure.HTTP_STATUS, http_status=502, nonce=nonce)
        return ProbeResult(ok=False, at=at, failure=ProbeFailure.CONNECT_TIMEOUT, detail="simulated", nonce=nonce)

    def renew(self, renewal: Renewal) -> RenewOutcome:
        """POST /healthz over the probe path: the health service checks the renewal as
        hfo_site.health_app does (a nonce it answered with pass, not expired, not an epoch below
        the agent's) and keeps a grant ending at its answer's time + ttl_s for its agent."""
        w = self.world
        agent = self.ours.laptop_agent
        answered = self.answered.pop(renewal.nonce, None)
        now = None if agent is None else agent.mono()
        if not w.probe_path() or agent is None or now is None:
            outcome = RenewOutcome(ok=False, error="timeout", detail="the probe path is down")
        elif answered is None:
            outcome = RenewOutcome(ok=False, error="refused", detail="nonce_unknown")
        elif now >= answered + renewal.ttl_s:
            outcome = RenewOutcome(ok=False, error="refused", detail="expired")
        elif renewal.epoch < agent.tracker.highest_epoch:
            outcome = RenewOutcome(ok=False, error="refused", detail="old_epoch")
        else:
            agent.pass_on("primary", renewal.epoch, answered + renewal.ttl_s, renewal.ttl_s)
            outcome = RenewOutcome(ok=True)
        w.rec.renewals.append((w.events.t, outcome.ok))
        return outcome


class OurController(Controller):
    """Our design: the shipped watchdog (tick + heartbeat endpoint over the DynamoDB store) and a
    site agent with the real lease rule on each site."""

    def __init__(
        self, world: World, *, tick_phase: float, first_beat: float, client: Any = None, table: str = TABLE
    ) -> None:
        """`client`: a DynamoDB client for `table` (default: a FakeDynamoDB of its own)."""
        self.world = world
        self.tick_phase = tick_phase
        self.first_beat = first_beat
        policy = world.setup.policy
        self.client = FakeDynamoDB(TABLE) if client is None else client
        table = table
        gap = steady_gap_s(policy)
        self.tick_store = DynamoStateStore(self.client, table, steady_gap_s=gap, writer="tick", clock=world.wall)
        self.hb_store = DynamoStateStore(self.client, table, steady_gap_s=gap, writer="heartbeat", clock=world.wall)
        self.log = _SimLog(world)
        self.notifier = _SimNotifier(world)
        self.prober = SimProber(world, self)
        self.laptop_agent: SimAgent | None = None
        self.standby_agent: SimAgent | None = None
        self.tick_deps = TickDeps(
            store=self.tick_store,
            prober=self.prober,
            standby=world.instance,
            notifier=self.notifier,
            policy=policy,
            log=self.log,
            clock=world.wall,
        )
        self.hb_deps = heartbeat_handler.HeartbeatDeps(
            store=self.hb_store,
            keyring=_KEYRING,
            policy=policy,
            max_skew_s=world.setup.max_skew_s,
            effects=lambda: Effects(world.instance, self.notifier, self.log),
            log=self.log,
            clock=world.wall,
        )
        self._purpose = "failover"

    # the schedule

    def begin(self) -> None:
        self.laptop_booted(first_beat=0.0, later=self.first_beat)
        self.world.events.at(self.tick_phase, self._tick)

    def _tick(self) -> None:
        w = self.world
        started = w.events.t
        w.in_tick = True
        try:
            report = run_tick(self.tick_deps)
        finally:
            w.in_tick = False
        w.rec.ticks.append(report)
        w.events.at(started + w.setup.tick_s, self._tick)

    # heartbeats

    def deliver_heartbeat(self, agent: SimAgent) -> tuple[LeaseAnswer | None, float]:
        w = self.world
        agent.seq += 1
        nonce = base64.urlsafe_b64encode(w.rng.randbytes(24)).decode()
        hb = Heartbeat(
            site=agent.site,
            sent_at=w.wall(),
            nonce=nonce,
            seq=agent.seq,
            workload=agent.bot.workload,
            epoch_seen=agent.tracker.highest_epoch,
            ready=True,
            agent="hfo-agent/sim",
            boot=agent.boot_id,
        )
        if agent.site == "primary":
            w.rec.heartbeats.append(w.events.t)
        if not w.setup.signed:
            return self._past_checks(hb), agent.mono()
        body = build_heartbeat(hb)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_heartbeat(_KEYRING, body)}
        sent = agent.mono()
        event = {  # a Function URL event (payload 2.0), as hfo_drill.lambda_runtime builds it, trimmed
            "version": "2.0",
            "headers": headers,
            "requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.7", "userAgent": "hfo-agent/sim"}},
            "body": body.decode("utf-8"),
            "isBase64Encoded": False,
        }
        response = heartbeat_handler.handle(event, self.hb_deps)
        if response["statusCode"] != 200:
            return None, sent
        raw = str(response["body"]).encode("utf-8")
        try:
            verify_lease_answer(_KEYRING, response["headers"].get(SIGNATURE_HEADER.lower()), raw)
            answer = parse_lease_answer(raw)
        except ProtocolError:
            return None, sent
        if answer.nonce != nonce:
            return None, sent
        return answer, sent

    def _past_checks(self, hb: Heartbeat) -> LeaseAnswer | None:
        """heartbeat.handle from the point where its stateless checks have passed: the store's
        replay guard and record, the engine's moves (heartbeat._complete_handover), the answer."""
        deps = self.hb_deps
        now = deps.clock()
        try:
            accepted = deps.store.accept_heartbeat(hb, deps.clock, replay_window_s=2 * deps.max_skew_s)
        except (HeartbeatReplay, StoreUnavailable) as exc:
            self.world.rec.refusals.append((self.world.events.t, hb.site, type(exc).__name__))
            return None
        state = heartbeat_handler._complete_handover(deps, accepted, now)
        return answer_for(hb, state, now, deps.policy, deps.clock())

    # the laptop

    def laptop_booted(self, first_beat: float = 0.0, later: float | None = None) -> None:
        """A fresh agent process: it heartbeats at once (then, at the run's start, on its phase)."""
        w = self.world
        agent = SimAgent(w, "primary", w.laptop_bot)
        self.laptop_agent = agent
        agent.start(first_beat, then=later)

    def laptop_died(self) -> None:
        if self.laptop_agent is not None:
            self.laptop_agent.kill()
        self.laptop_agent = None

    def laptop_frozen(self) -> None:
        if self.laptop_agent is not None:
            self.laptop_agent.freeze()

    def laptop_thawed(self) -> None:
        if self.laptop_agent is not None:
            self.laptop_agent.thaw()

    # the standby

    def standby_node_ready_at(self, k3s_ready: float, image_ready: float) -> None:
        w = self.world
        b = w.boot
        gen = w.instance.gen

        def agent_up() -> None:
            if w.instance.gen != gen or w.instance.state() != InstanceState.RUNNING:
                return
            agent = SimAgent(w, "standby", w.standby_bot)
            self.standby_agent = agent
            agent.start(0.0)

        w.events.at(k3s_ready + b.pod_start_s + b.agent_start_s, agent_up)

    def standby_shutdown(self) -> None:
        if self.standby_agent is not None:
            self.standby_agent.kill()
        self.standby_agent = None

    def command(self, cmd: Command) -> None:
        from hfo_watchdog.cli import CliError, change_mode

        w = self.world
        until = w.wall() + cmd.drill_s if cmd.mode == Mode.DRILL else None
        try:
            change_mode(self.tick_store, cmd.mode, until, clock=w.wall)
        except CliError as exc:
            w.rec.mode_errors.append((w.events.t, str(exc)))

    def finish(self) -> None:
        for agent in (self.laptop_agent, self.standby_agent):
            if agent is not None:
                agent._end_hold()
        self.world.rec.history = list(reversed(self.tick_store.history(limit=1_000_000)))


# ------------------------------------------------------------------------------------ the seed


class SeedController(Controller):
    """The seed tutorial (seeds/003): a probe through Funnel every `tick_s`; one failure while
    the instance is stopped starts it, one success while it is pending or running stops it. No
    heartbeat, no lease: the laptop's bot runs whenever the laptop is up, and the standby's bot
    (one replica in Git) starts when its node is up."""

    def __init__(self, world: World, *, tick_s: float, tick_phase: float) -> None:
        self.world = world
        self.tick_s = tick_s
        self.tick_phase = tick_phase

    def begin(self) -> None:
        self.world.laptop_bot.start()
        self.world.events.at(self.tick_phase, self._tick)

    def _tick(self) -> None:
        w = self.world
        ok = w.probe_path()
        w.rec.probes.append((w.events.t, ok))
        state = w.instance.state()
        if not ok and state == InstanceState.STOPPED:
            w.instance.ensure_running()
            w.rec.failovers.append(w.events.t)
        elif ok and state in (InstanceState.PENDING, InstanceState.RUNNING):
            w.instance.ensure_stopped()
        w.events.at(w.events.t + self.tick_s, self._tick)

    def laptop_booted(self) -> None:
        self.world.laptop_bot.start()  # K3s restarts the bot's pod: pod start, then connect

    def standby_node_ready_at(self, k3s_ready: float, image_ready: float) -> None:
        w = self.world
        gen = w.instance.gen

        def bot_up() -> None:
            if w.instance.gen == gen and w.instance.state() == InstanceState.RUNNING:
                w.standby_bot.start()

        w.events.at(k3s_ready, bot_up)
