"""Our design, second by second: the REAL decision engine (decide, apply_outcomes, on_heartbeat)
driven by a trace, with site agents that follow docs/protocol.md's lease rules.

- The tick handler runs every `tick_s` (at a phase of the caller's choosing): it probes (good when
  the trace's probe path is up), calls decide, performs START/STOP on the instance model, then
  apply_outcomes.
- The heartbeat handler records a SiteRecord (steady_since restarts after a gap of more than three
  heartbeat intervals, as the store does) and calls on_heartbeat; the answer carries the lease as
  committed afterwards.
- Each agent heartbeats every `heartbeat_interval_s`, ignores answers with a lower epoch, holds a
  fresh lease while less than `ttl_s` has passed on ITS monotonic clock since it sent the heartbeat
  that got the answer, starts the bot only then (bot start = pod start + gateway connect) and stops
  it otherwise (bot stop). The laptop's heartbeats arrive only while its network and AWS path are
  up, and its bot answers on Discord only while its network is up.
- A laptop that dies loses its agent and bot at once and comes back with a fresh agent (no lease).
  A laptop that sleeps is frozen: on waking, its agent and bot carry on where they were, and its
  monotonic clock (Python's time.monotonic, CLOCK_MONOTONIC on Linux, as hfo_site uses) did not
  count the sleep, so a lease that was fresh when the lid closed is still fresh for what was left.
  `agent_clock="boottime"` models an agent on CLOCK_BOOTTIME instead, which counts the sleep.
- The standby's agent starts `agent_ready_s` after the instance reaches `running` and is gone as
  soon as the instance starts stopping; the operating system stops its bot within the bot stop.

The world runs WARMUP_S seconds before the trace starts, all up, so that every run starts
settled (the laptop holds the lease and runs the bot). Times handed to the engine are the trace's
seconds plus WARMUP_S; everything recorded is in the trace's seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfo_watchdog.core.engine import apply_outcomes, decide, on_heartbeat
from hfo_watchdog.core.model import (
    ActionKind,
    ControlState,
    Decision,
    InstanceState,
    Observations,
    Phase,
    Policy,
    ProbeFailure,
    ProbeResult,
    Site,
    SiteRecord,
)
from hfo_watchdog.core.steady import steady_gap_s, steady_since_after

from failover.boot import BootModel
from failover.traces import Trace
from failover.world import EC2_CODE, LEASE_CODE, Instance, Run, Transition

PHASE_CODES = tuple(Phase)
PHASE_CODE = {p: i for i, p in enumerate(PHASE_CODES)}
PROBE_SIGNALS = ("unknown", "alive", "failing", "down")
HEARTBEAT_SIGNALS = ("unknown", "alive", "down")
WARMUP_S = 600
AGENT_CLOCKS = ("monotonic", "boottime")
_SERVING = frozenset({"running", "stopping"})  # a stopping bot may still answer until it has exited
_NEVER = 1 << 62


@dataclass(frozen=True)
class OurPolicy:
    name: str
    policy: Policy
    tick_s: int = 60


@dataclass
class Answer:
    site: str
    epoch: int
    ttl_s: float
    sent_mono: int  # the agent's monotonic clock when it SENT the heartbeat this answers


@dataclass
class Agent:
    """One site's agent and its bot. All its timing is on its own monotonic clock, which stands
    still while the machine sleeps."""

    site: Site
    boot: BootModel
    interval: int
    counts_sleep: bool = False  # CLOCK_BOOTTIME (True) or CLOCK_MONOTONIC (False, as built)
    up: bool = False
    asleep: bool = False
    slept: int = 0
    ready_at: int = 0  # when it sends its first heartbeat (watchdog clock, set at power-on)
    next_heartbeat: int = 0  # monotonic
    epoch_seen: int = 0
    answer: Answer | None = None
    workload: str = "stopped"
    workload_since: int = 0  # monotonic

    def mono(self, t: int) -> int:
        return t if self.counts_sleep else t - self.slept

    def power_on(self, t: int, ready_after: int) -> None:
        self.up, self.asleep, self.slept = True, False, 0
        self.ready_at = t + ready_after
        self.next_heartbeat = self.ready_at
        self.epoch_seen, self.answer = 0, None
        self.workload, self.workload_since = "stopped", t

    def power_off(self) -> None:
        self.up, self.asleep, self.answer = False, False, None
        self.workload = "stopped"

    def ready(self, t: int) -> bool:
        return self.up and not self.asleep and t >= self.ready_at

    def holds_fresh_lease(self, t: int) -> bool:
        a = self.answer
        return self.up and a is not None and a.site == self.site.value and self.mono(t) - a.sent_mono < a.ttl_s

    def heartbeat_due(self, t: int) -> bool:
        return self.ready(t) and self.mono(t) >= self.next_heartbeat

    def receive(self, answer: Answer) -> None:
        if answer.epoch < self.epoch_seen:
            return  # an older epoch: ignored
        self.epoch_seen, self.answer = answer.epoch, answer

    def step(self, t: int) -> None:
        """Run or stop the bot by the lease rule (nothing moves while asleep or down)."""
        if not self.up or self.asleep:
            return
        now = self.mono(t)
        run = self.holds_fresh_lease(t)
        if not run and self.workload in ("starting", "running"):
            self.workload, self.workload_since = "stopping", now  # self-fencing
        if self.workload == "stopping" and now - self.workload_since >= self.boot.bot_stop_s:
            self.workload, self.workload_since = "stopped", now
        if run and self.workload == "stopped":
            self.workload, self.workload_since = "starting", now
        if self.workload == "starting" and now - self.workload_since >= self.boot.bot_start_s:
            self.workload, self.workload_since = "running", now

    def serving(self) -> bool:
        return self.up and not self.asleep and self.workload in _SERVING


class OurSim:
    """One run of our design on one trace. `tick_phase`: the second (0 to tick_s - 1) of each
    tick interval at which the schedule fires; `hb_phase`: the same for the laptop's heartbeats;
    `agent_clock`: the clock the laptop's agent measures its lease on."""

    def __init__(
        self,
        policy: OurPolicy,
        boot: BootModel,
        trace: Trace,
        *,
        tick_phase: int = 0,
        hb_phase: int = 0,
        agent_clock: str = "monotonic",
    ):
        interval = int(policy.policy.heartbeat_interval_s)
        if agent_clock not in AGENT_CLOCKS:
            raise ValueError(f"agent_clock {agent_clock!r} must be one of: {', '.join(AGENT_CLOCKS)}")
        if not 0 <= tick_phase < policy.tick_s:
            raise ValueError(f"tick_phase {tick_phase} is out of range: 0-{policy.tick_s - 1} s")
        if not 0 <= hb_phase < interval:
            raise ValueError(f"hb_phase {hb_phase} is out of range: 0-{interval - 1} s")
        self.p = policy
        self.policy = policy.policy
        self.boot = boot
        self.trace = trace
        self.tick_phase = tick_phase
        self.state = ControlState()
        self.records: dict[Site, SiteRecord] = {}
        self.ec2 = Instance(boot)
        self.primary = Agent(Site.PRIMARY, boot, interval, counts_sleep=agent_clock == "boottime")
        self.standby = Agent(Site.STANDBY, boot, interval)
        self.primary.power_on(0, 0)
        n = trace.duration
        self.run = Run.empty(policy.name, trace)
        self.run.lease, self.run.epoch, self.run.phase = bytearray(n), [0] * n, bytearray(n)
        self.run.probe_signal, self.run.heartbeat_signal = bytearray(n), bytearray(n)
        self._probe_sig = 0
        self._hb_sig = 0
        # The laptop heartbeats at once, then on its own phase: the first tick already hears it.
        self.primary.receive(self._heartbeat(self.primary, 0))
        self.primary.next_heartbeat = hb_phase or interval

    # ------------------------------------------------------------------ the world

    def simulate(self) -> Run:
        for s in range(WARMUP_S + self.trace.duration):
            self.step(s)
        end = WARMUP_S + self.trace.duration
        run = self.run
        run.running_s = self.ec2.running_s(end)
        run.billed_s = self.ec2.billed_s(end)
        run.ec2_starts = [s - WARMUP_S for s in self.ec2.starts]
        run.ec2_stops = [s - WARMUP_S for s in self.ec2.stops]
        return run

    def _truth(self, channel: bytes, s: int) -> bool:
        i = s - WARMUP_S
        return i < 0 or bool(channel[i])

    def step(self, s: int) -> None:
        """Advance the world to second `s` (watchdog clock: trace second + WARMUP_S)."""
        tr, pa = self.trace, self.primary
        i = s - WARMUP_S
        if self._truth(tr.laptop, s):
            if not pa.up:
                pa.power_on(s, 0)  # back with its stack up (the trace's "up"): a fresh agent
            elif pa.asleep:
                pa.asleep = False  # waking: frozen state resumes; the clock skipped the sleep
        elif pa.up and not pa.asleep:
            if i >= 0 and tr.asleep[i]:
                pa.asleep = True
            else:
                pa.power_off()
        if pa.asleep:
            pa.slept += 1
        changed = self.ec2.step(s)
        if changed == "running":
            self.standby.power_on(s, self.boot.agent_ready_s)
        if self.ec2.state == InstanceState.STOPPING:
            self._shut_down_standby()
        elif changed == "stopped":
            self.standby.power_off()
        hb_path = self._truth(tr.net, s) and self._truth(tr.aws, s)
        for agent, reaches in ((pa, hb_path), (self.standby, True)):
            if agent.heartbeat_due(s):
                agent.next_heartbeat += agent.interval
                if reaches:
                    agent.receive(self._heartbeat(agent, s))
            agent.step(s)
        if (s - self.tick_phase) % self.p.tick_s == 0:
            self._tick(s)
        if i >= 0:
            self._sample(s, i)

    def _shut_down_standby(self) -> None:
        """The instance is stopping: its agent is gone with the OS (no lease, no heartbeats), and
        the bot, told to stop by the shutdown, exits within the bot stop (Agent.step)."""
        sb = self.standby
        if sb.up:
            sb.answer = None
            sb.next_heartbeat = _NEVER

    def _sample(self, s: int, i: int) -> None:
        r = self.run
        assert r.lease is not None and r.epoch is not None and r.phase is not None
        assert r.probe_signal is not None and r.heartbeat_signal is not None
        r.laptop_bot[i] = self.primary.serving() and self.trace.net[i]
        r.standby_bot[i] = self.standby.serving()
        r.ec2[i] = EC2_CODE[self.ec2.state]
        lease = self.state.lease
        r.lease[i] = LEASE_CODE[lease.site.value]
        r.epoch[i] = lease.epoch
        r.phase[i] = PHASE_CODE[self.state.phase]
        r.probe_signal[i] = self._probe_sig
        r.heartbeat_signal[i] = self._hb_sig
        if self._acting(self.primary, s) and self._acting(self.standby, s):
            r.lease_overlap_s += 1

    @staticmethod
    def _acting(agent: Agent, s: int) -> bool:
        """Holding a fresh lease while awake (a sleeping agent's lease is frozen, not used)."""
        return not agent.asleep and agent.holds_fresh_lease(s)

    # ------------------------------------------------------------------ the watchdog's handlers

    def _heartbeat(self, agent: Agent, s: int) -> Answer:
        prev = self.records.get(agent.site)
        steady = steady_since_after(prev, s, steady_gap_s(self.policy))
        record = SiteRecord(
            site=agent.site,
            sent_at=s,
            received_at=s,
            workload=agent.workload,
            epoch_seen=agent.epoch_seen,
            ready=agent.ready(s),
            steady_since=steady,
            count=(prev.count if prev else 0) + 1,
        )
        self.records[agent.site] = record
        if agent.site == Site.PRIMARY and s >= WARMUP_S:
            self.run.heartbeats.append(s - WARMUP_S)
        other = self.records.get(Site.STANDBY if agent.site == Site.PRIMARY else Site.PRIMARY)
        decision = on_heartbeat(self.state, record, other, s, self.policy)
        if decision is not None:
            self._commit(s, decision)
            self._perform(s, decision)
        lease = self.state.lease
        return Answer(site=lease.site.value, epoch=lease.epoch, ttl_s=self.policy.lease_ttl_s, sent_mono=agent.mono(s))

    def _tick(self, s: int) -> None:
        online = self.primary.ready(s) and self._truth(self.trace.net, s)
        if online and self._truth(self.trace.funnel, s):
            probe = ProbeResult(ok=True, at=s, http_status=200)
        elif online:
            probe = ProbeResult(ok=False, at=s, failure=ProbeFailure.HTTP_STATUS, http_status=502)
        else:
            probe = ProbeResult(ok=False, at=s, failure=ProbeFailure.CONNECT_TIMEOUT)
        if s >= WARMUP_S:
            self.run.probes.append((s - WARMUP_S, probe.ok))
        obs = Observations(
            now=s,
            probe=probe,
            primary=self.records.get(Site.PRIMARY),
            standby=self.records.get(Site.STANDBY),
            instance=self.ec2.state,
        )
        decision = decide(self.state, obs, self.policy)
        self._probe_sig = PROBE_SIGNALS.index(decision.probe_signal)
        self._hb_sig = HEARTBEAT_SIGNALS.index(decision.heartbeat_signal)
        self._commit(s, decision)
        self._perform(s, decision)

    def _perform(self, s: int, decision: Decision) -> None:
        outcomes = []
        for action in decision.actions:
            if action.kind == ActionKind.START_STANDBY:
                outcomes.append((action, self.ec2.start(s)))
            elif action.kind == ActionKind.STOP_STANDBY:
                outcomes.append((action, self.ec2.stop(s)))
        if outcomes:
            self._commit(s, apply_outcomes(self.state, outcomes, s, self.policy))

    def _commit(self, s: int, decision: Decision) -> None:
        before = self.state
        if decision.state.version != before.version + 1:
            raise AssertionError(f"at {s} s: version {decision.state.version} after {before.version}")
        self.state = decision.state
        tr = decision.transition
        if tr is None or s < WARMUP_S:
            return
        t = s - WARMUP_S
        reason = tr.reasons[0] if tr.reasons else ""
        self.run.transitions.append(
            Transition(t, tr.from_phase.value, tr.to_phase.value, tr.to_lease.site.value, tr.to_lease.epoch, reason)
        )
        if is_failover(tr.from_phase, tr.to_phase):
            self.run.failovers.append(t)


def is_failover(from_phase: Phase, to_phase: Phase) -> bool:
    """The emergency moves of auto mode (the benchmark never changes the mode): the primary is
    DOWN and the lease leaves it, or it went down again during a handback."""
    if from_phase in (Phase.HEALTHY, Phase.SUSPECT):
        return to_phase == Phase.FAILING_OVER
    return from_phase == Phase.HANDING_BACK and to_phase == Phase.ON_STANDBY


def simulate(
    policy: OurPolicy,
    boot: BootModel,
    trace: Trace,
    *,
    tick_phase: int = 0,
    hb_phase: int = 0,
    agent_clock: str = "monotonic",
) -> Run:
    return OurSim(policy, boot, trace, tick_phase=tick_phase, hb_phase=hb_phase, agent_clock=agent_clock).simulate()
