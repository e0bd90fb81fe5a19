"""A discrete-time simulator of the whole failover loop, one step per simulated second.

It runs the real engine (decide, apply_outcomes, on_heartbeat, set_mode) against models of what
cannot run here:

- the primary machine, whose condition follows a script: `up`, `dead` (power off), `funnel_out`
  (probe fails, heartbeats arrive), `heartbeat_out` (probe passes, heartbeats lost) or
  `partitioned` (alive, but neither reaches AWS);
- two site agents that follow the agent rules of docs/protocol.md: heartbeat every
  `heartbeat_interval_s`, ignore answers with a lower epoch than seen, run the workload only while
  holding a fresh lease measured from the heartbeat's *send* time, stop it (self-fence) otherwise,
  taking at most `stop_grace_s` to stop;
- the standby EC2 instance (stopped -> pending -> running and running -> stopping -> stopped take
  some seconds; its agent lives only while it runs, and when the instance is stopped under it the
  workload goes down within `workload_stop_s`; chosen start attempts fail; someone else may stop it);
- the watchdog's two handlers: the heartbeat handler records a SiteRecord and calls on_heartbeat,
  the tick handler probes, calls decide, performs the actions, then apply_outcomes.

Each tick and each handler call is atomic here (no overlapping invocations). Everything is
recorded so tests can check the invariants afterwards; `violations` lists every second at which
both sites were active at once (holding a fresh lease, or with a workload not fully stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hfo_watchdog.core.engine import apply_outcomes, decide, on_heartbeat, set_mode
from hfo_watchdog.core.model import (
    ActionKind,
    ControlState,
    Decision,
    Ec2Outcome,
    InstanceState,
    Mode,
    Notification,
    Observations,
    Policy,
    ProbeFailure,
    ProbeResult,
    Site,
    SiteRecord,
)
from hfo_watchdog.core.steady import steady_gap_s, steady_since_after

CONDITIONS = ("up", "dead", "funnel_out", "heartbeat_out", "partitioned")
_PROBE_REACHES = frozenset({"up", "heartbeat_out"})
_HEARTBEAT_REACHES = frozenset({"up", "funnel_out"})


@dataclass(frozen=True)
class Timing:
    """How long the simulated world takes (seconds)."""

    tick_s: int = 60
    ec2_boot_s: int = 40  # pending -> running
    ec2_stop_s: int = 20  # stopping -> stopped
    agent_boot_s: int = 20  # machine up -> agent heartbeats, health service answers, site ready
    workload_start_s: int = 5
    workload_stop_s: int = 5  # the agent rule: at most stop_grace_s


@dataclass(frozen=True)
class Segment:
    condition: str
    seconds: int


@dataclass(frozen=True)
class Command:
    """An operator's `set_mode` at second `at` (a drill lasts `drill_s`)."""

    at: int
    mode: Mode
    drill_s: int = 0


@dataclass(frozen=True)
class Answer:
    site: str
    epoch: int
    ttl_s: float
    sent_at: int  # when the agent sent the heartbeat this answers (its own clock)


class Agent:
    """One site's agent and workload, following docs/protocol.md#lease-answer."""

    def __init__(self, site: Site, timing: Timing) -> None:
        self.site = site
        self.timing = timing
        self.up_since: int | None = None
        self.epoch_seen = 0
        self.answer: Answer | None = None
        self.workload = "stopped"
        self.workload_since = 0
        self.next_heartbeat = 0
        self.seq = 0

    def boot(self, t: int) -> None:
        self.up_since = t
        self.epoch_seen = 0
        self.answer = None
        self.workload = "stopped"
        self.next_heartbeat = t + self.timing.agent_boot_s

    def power_off(self) -> None:
        self.up_since = None
        self.answer = None
        self.workload = "stopped"

    @property
    def up(self) -> bool:
        return self.up_since is not None

    def ready(self, t: int) -> bool:
        return self.up_since is not None and t >= self.up_since + self.timing.agent_boot_s

    def holds_fresh_lease(self, t: int) -> bool:
        a = self.answer
        return a is not None and a.site == self.site.value and t - a.sent_at < a.ttl_s

    def heartbeat_due(self, t: int) -> bool:
        return self.ready(t) and t >= self.next_heartbeat

    def receive(self, answer: Answer) -> None:
        if answer.epoch < self.epoch_seen:
            return  # an older epoch: ignored
        self.epoch_seen = answer.epoch
        self.answer = answer

    def step_workload(self, t: int) -> None:
        if not self.up:
            return
        run = self.holds_fresh_lease(t)
        if not run and self.workload in ("starting", "running"):
            self.workload, self.workload_since = "stopping", t  # self-fencing
        if self.workload == "stopping" and t - self.workload_since >= self.timing.workload_stop_s:
            self.workload, self.workload_since = "stopped", t
        if run and self.workload == "stopped":
            self.workload, self.workload_since = "starting", t
        if self.workload == "starting" and t - self.workload_since >= self.timing.workload_start_s:
            self.workload, self.workload_since = "running", t

    def active(self, t: int) -> bool:
        """Holding a fresh lease, or with a workload that is not fully stopped."""
        return self.holds_fresh_lease(t) or self.workload != "stopped"


class Ec2:
    """The standby instance. Start attempts whose 0-based index is in `failing` fail with
    insufficient capacity (nothing changes)."""

    def __init__(self, timing: Timing, failing: Iterable[int] = (), state: InstanceState = InstanceState.STOPPED):
        self.timing = timing
        self.state = state
        self.since = 0
        self.failing = frozenset(failing)
        self.attempts = 0
        self.starts: list[int] = []
        self.stops: list[int] = []

    def ensure_running(self, t: int) -> Ec2Outcome:
        if self.state == InstanceState.STOPPED:
            attempt = self.attempts
            self.attempts += 1
            if attempt in self.failing:
                return Ec2Outcome(
                    ok=False,
                    action="none",
                    state=self.state,
                    error="insufficient_capacity",
                    detail="no capacity in any of the instance types",
                )
            self.state, self.since = InstanceState.PENDING, t
            self.starts.append(t)
            return Ec2Outcome(ok=True, action="start_requested", state=self.state, instance_type="t3.small")
        if self.state in (InstanceState.PENDING, InstanceState.RUNNING):
            return Ec2Outcome(ok=True, action="already_running", state=self.state)
        if self.state in (InstanceState.TERMINATED, InstanceState.MISSING):
            return Ec2Outcome(ok=False, action="none", state=self.state, error=self.state.value)
        return Ec2Outcome(ok=True, action="waiting", state=self.state)

    def ensure_stopped(self, t: int) -> Ec2Outcome:
        if self.state in (InstanceState.PENDING, InstanceState.RUNNING):
            self.state, self.since = InstanceState.STOPPING, t
            self.stops.append(t)
            return Ec2Outcome(ok=True, action="stop_requested", state=self.state)
        if self.state == InstanceState.STOPPED:
            return Ec2Outcome(ok=True, action="already_stopped", state=self.state)
        return Ec2Outcome(ok=True, action="waiting", state=self.state)

    def step(self, t: int) -> str | None:
        """Advance; returns 'running' or 'stopped' when the instance just got there."""
        if self.state == InstanceState.PENDING and t - self.since >= self.timing.ec2_boot_s:
            self.state, self.since = InstanceState.RUNNING, t
            return "running"
        if self.state == InstanceState.STOPPING and t - self.since >= self.timing.ec2_stop_s:
            self.state, self.since = InstanceState.STOPPED, t
            return "stopped"
        return None


@dataclass(frozen=True)
class Entry:
    """One committed engine call."""

    t: int
    source: str  # tick | outcomes | heartbeat
    before: ControlState
    decision: Decision
    obs: Observations | None = None


@dataclass
class Sim:
    policy: Policy
    timing: Timing = field(default_factory=Timing)
    segments: Sequence[Segment] = ()
    commands: Sequence[Command] = ()
    failing_starts: Iterable[int] = ()
    instance: InstanceState = InstanceState.STOPPED
    external_stops: Iterable[int] = ()  # seconds at which someone else stops the instance (console, spot)

    def __post_init__(self) -> None:
        self.t = 0
        self.state = ControlState()
        self.records: dict[Site, SiteRecord] = {}
        self.primary = Agent(Site.PRIMARY, self.timing)
        self.standby = Agent(Site.STANDBY, self.timing)
        self.ec2 = Ec2(self.timing, self.failing_starts, self.instance)
        # The primary has been up a while when the story starts.
        self.primary.boot(-self.timing.agent_boot_s)
        self.condition = "up"
        self.log: list[Entry] = []
        self.notifications: list[tuple[int, Notification]] = []
        self.violations: list[int] = []
        self.probes: list[tuple[int, bool]] = []
        self.primary_heartbeats: list[int] = []  # delivered
        self.both_stopped_s = 0  # seconds with no workload running anywhere
        self.timeline: list[tuple[int, str, str]] = []  # (t, primary workload, standby workload) changes
        self.mode_errors: list[tuple[int, str]] = []
        self._bounds = _segment_bounds(self.segments)
        self._external_stops = frozenset(self.external_stops)

    # ---------------------------------------------------------------- the world

    def condition_at(self, t: int) -> str:
        for end, cond in self._bounds:
            if t < end:
                return cond
        return "up"

    def run(self, seconds: int) -> Sim:
        end = self.t + seconds
        while self.t < end:
            self.step()
        return self

    def step(self) -> None:
        t = self.t
        for cmd in self.commands:
            if cmd.at == t:
                self._command(cmd)
        cond = self.condition_at(t)
        if cond == "dead" and self.primary.up:
            self.primary.power_off()
        elif cond != "dead" and not self.primary.up:
            self.primary.boot(t)
        self.condition = cond
        if t in self._external_stops and self.ec2.state in (InstanceState.PENDING, InstanceState.RUNNING):
            self.ec2.state, self.ec2.since = InstanceState.STOPPING, t
        changed = self.ec2.step(t)
        if changed == "running":
            self.standby.boot(t)
        elif changed == "stopped":
            self.standby.power_off()
        if self.ec2.state == InstanceState.STOPPING:
            self._shut_down_standby(t)
        for agent, reaches in ((self.primary, cond in _HEARTBEAT_REACHES), (self.standby, True)):
            if agent.heartbeat_due(t):
                agent.next_heartbeat = t + int(self.policy.heartbeat_interval_s)
                if reaches:
                    agent.receive(self._heartbeat(agent, t))
            agent.step_workload(t)
        if t % self.timing.tick_s == 0:
            self._tick(t, cond)
        self._sample(t)
        self.t = t + 1

    def _shut_down_standby(self, t: int) -> None:
        """The instance is stopping: the agent is gone at once, and the operating system takes the
        workload down within `workload_stop_s` (its shutdown honours the same grace as the agent
        rule), or when the instance is stopped, whichever comes first."""
        sb = self.standby
        if sb.up:
            sb.up_since = None
            sb.answer = None
            if sb.workload in ("starting", "running"):
                sb.workload, sb.workload_since = "stopping", t
        if sb.workload == "stopping" and t - sb.workload_since >= self.timing.workload_stop_s:
            sb.workload, sb.workload_since = "stopped", t

    def _sample(self, t: int) -> None:
        if self.primary.active(t) and self.standby.active(t):
            self.violations.append(t)
        pw, sw = self.primary.workload, self.standby.workload
        if pw != "running" and sw != "running":
            self.both_stopped_s += 1
        if not self.timeline or self.timeline[-1][1:] != (pw, sw):
            self.timeline.append((t, pw, sw))

    # ---------------------------------------------------------------- the watchdog's handlers

    def _heartbeat(self, agent: Agent, t: int) -> Answer:
        agent.seq += 1
        prev = self.records.get(agent.site)
        steady = steady_since_after(prev, t, steady_gap_s(self.policy))
        record = SiteRecord(
            site=agent.site,
            sent_at=t,
            received_at=t,
            workload=agent.workload,
            epoch_seen=agent.epoch_seen,
            ready=agent.ready(t),
            steady_since=steady,
            count=(prev.count if prev else 0) + 1,
        )
        self.records[agent.site] = record
        if agent.site == Site.PRIMARY:
            self.primary_heartbeats.append(t)
        other = self.records.get(Site.STANDBY if agent.site == Site.PRIMARY else Site.PRIMARY)
        before = self.state
        decision = on_heartbeat(before, record, other, t, self.policy)
        if decision is not None:
            self._commit(t, "heartbeat", before, decision)
            self._perform(t, decision)
        lease = self.state.lease
        return Answer(site=lease.site.value, epoch=lease.epoch, ttl_s=self.policy.lease_ttl_s, sent_at=t)

    def _tick(self, t: int, cond: str) -> None:
        probe = self._probe(t, cond)
        self.probes.append((t, probe.ok))
        obs = Observations(
            now=t,
            probe=probe,
            primary=self.records.get(Site.PRIMARY),
            standby=self.records.get(Site.STANDBY),
            instance=self.ec2.state,
        )
        before = self.state
        decision = decide(before, obs, self.policy)
        self._commit(t, "tick", before, decision, obs)
        self._perform(t, decision)

    def _probe(self, t: int, cond: str) -> ProbeResult:
        if cond in _PROBE_REACHES and self.primary.ready(t):
            return ProbeResult(ok=True, at=t, http_status=200)
        failure = ProbeFailure.HTTP_STATUS if cond == "funnel_out" else ProbeFailure.CONNECT_TIMEOUT
        return ProbeResult(ok=False, at=t, failure=failure)

    def _perform(self, t: int, decision: Decision) -> None:
        outcomes = []
        for action in decision.actions:
            if action.kind == ActionKind.START_STANDBY:
                outcomes.append((action, self.ec2.ensure_running(t)))
            elif action.kind == ActionKind.STOP_STANDBY:
                outcomes.append((action, self.ec2.ensure_stopped(t)))
            elif action.notification is not None:
                self.notifications.append((t, action.notification))
        if outcomes:
            before = self.state
            after = apply_outcomes(before, outcomes, t, self.policy)
            self._commit(t, "outcomes", before, after)
            for action in after.actions:
                if action.notification is not None:
                    self.notifications.append((t, action.notification))

    def _commit(self, t: int, source: str, before: ControlState, decision: Decision, obs: Observations | None = None):
        if decision.state.version != before.version + 1:
            raise AssertionError(f"{source} at {t}: version {decision.state.version} after {before.version}")
        self.state = decision.state
        self.log.append(Entry(t=t, source=source, before=before, decision=decision, obs=obs))

    def _command(self, cmd: Command) -> None:
        until = float(self.t + cmd.drill_s) if cmd.mode == Mode.DRILL else None
        try:
            self.state = set_mode(self.state, cmd.mode, float(self.t), until)
        except ValueError as exc:
            self.mode_errors.append((self.t, str(exc)))

    # ---------------------------------------------------------------- views for tests

    @property
    def transitions(self) -> list[tuple[int, str, str, str, int]]:
        """(t, from phase, to phase, lease site, epoch) of every committed transition."""
        out = []
        for e in self.log:
            tr = e.decision.transition
            if tr is not None:
                out.append((e.t, tr.from_phase.value, tr.to_phase.value, tr.to_lease.site.value, tr.to_lease.epoch))
        return out

    @property
    def phases(self) -> list[str]:
        """The phases visited, in order (consecutive repeats folded)."""
        seq = [self.log[0].before.phase.value] if self.log else []
        for _, _, to, _, _ in self.transitions:
            if to != seq[-1]:
                seq.append(to)
        return seq

    def alerts_raised(self, key: str) -> list[int]:
        return [t for t, n in self.notifications if n.key == key]


def _segment_bounds(segments: Sequence[Segment]) -> list[tuple[int, str]]:
    out, t = [], 0
    for seg in segments:
        if seg.condition not in CONDITIONS:
            raise ValueError(f"unknown primary condition {seg.condition!r}; one of {CONDITIONS}")
        t += seg.seconds
        out.append((t, seg.condition))
    return out
