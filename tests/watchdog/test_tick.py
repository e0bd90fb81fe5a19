"""The tick orchestration against the moto server (DynamoDB, EC2, SNS) with the real engine, EC2
adapter and SNS notifier; the probe is scripted (FakeProber) and the clock is moved by hand.
Fakes stand in only where moto cannot act the part: EC2 without capacity, a notifier that raises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from hfo_drill.aws_setup import create_standby_instance, instance_state
from hfo_drill.inbox import AlertInbox
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.core.model import (
    ControlState,
    Ec2Outcome,
    InstanceState,
    LeaseSite,
    Phase,
    Policy,
    ProbeFailure,
    Severity,
    SiteRecord,
    Transition,
)
from hfo_watchdog.ec2 import Ec2StandbyInstance, ec2_client
from hfo_watchdog.notify import SnsNotifier
from hfo_watchdog.store import DynamoStateStore
from hfo_watchdog.tick import TickDeps, TickReport, run_tick
from testsupport.watchdog import (
    TABLE,
    JsonLog,
    create_table,
    heartbeat,
    sns_client,
)
from watchdog.fakes import BrokenNotifier, FakeClock, FakeProber, FakeStandby

pytestmark = pytest.mark.moto

POLICY = Policy(
    down_probes=2,
    down_heartbeat_s=30,
    recovery_probes=2,
    recovery_steady_s=20,
    lease_ttl_s=15,
    stop_grace_s=5,
    heartbeat_interval_s=5,
    start_cooldown_s=300,
    min_state_s=0,
    standby_max_runtime_s=3600,
)


@dataclass
class World:
    clock: FakeClock
    store: DynamoStateStore
    instance_id: str
    prober: FakeProber
    notifier: Any
    log: JsonLog = field(default_factory=JsonLog)
    metrics: list[tuple[str, float]] = field(default_factory=list)
    standby: Any = None
    inbox: Any = None

    def deps(self, **overrides: Any) -> TickDeps:
        fields: dict[str, Any] = {
            "store": self.store,
            "prober": self.prober,
            "standby": self.standby,
            "notifier": self.notifier,
            "policy": POLICY,
            "log": self.log,
            "metric": lambda name, value: self.metrics.append((name, value)),
            "clock": self.clock,
        }
        fields.update(overrides)
        return TickDeps(**fields)

    def tick(self, **overrides: Any) -> TickReport:
        return run_tick(self.deps(**overrides))

    def beat(self, site: str = "primary", **fields: Any) -> SiteRecord:
        now = self.clock.now
        return self.store.record_heartbeat(heartbeat(site, now, **fields), now)

    def ec2(self) -> str:
        return instance_state(self.instance_id)

    def control(self) -> ControlState:
        return self.store.load_control()


@pytest.fixture
def world(aws: MotoServer) -> Iterator[World]:
    client = create_table()
    instance_id = create_standby_instance()
    clock = FakeClock()
    w = World(
        clock=clock,
        store=DynamoStateStore(client, TABLE, clock=clock),
        instance_id=instance_id,
        prober=FakeProber(clock),
        notifier=None,
    )
    w.inbox = AlertInbox.on_new_topic()
    w.notifier = SnsNotifier(sns_client(2), w.inbox.topic_arn)
    w.standby = Ec2StandbyInstance(ec2_client(2), instance_id, ())
    yield w


def healthy_start(w: World) -> TickReport:
    w.beat()
    return w.tick()


def fail_over(w: World) -> TickReport:
    """Primary healthy, then silent and unreachable until the engine moves the lease; the standby
    heartbeats (stopped, ready) once its instance runs, as its agent does after boot."""
    healthy_start(w)
    w.prober.alive = False
    report = w.tick()
    for _ in range(10):
        w.clock.advance(10)
        if report.instance == "running":
            w.beat("standby", workload="stopped")
        report = w.tick()
        if report.lease_site == "standby":
            return report
    raise AssertionError(f"no failover: {report}")


def test_first_tick_creates_the_state_and_logs_its_reasons(world: World) -> None:
    world.beat()
    report = world.tick()
    assert report.outcome == "saved" and report.version == 1
    assert (report.phase, report.lease_site, report.lease_epoch) == ("healthy", "primary", 1)
    # The primary's heartbeat is on record: this first tick arms the watchdog, and says so once.
    assert report.probe_ok is True and report.instance == "stopped" and report.actions == ("notify:armed",)
    control = world.control()
    assert control.version == 1 and control.last_tick_at == world.clock.now and control.probe_ok_streak == 1
    [decision] = world.log.records("decision")
    assert decision["phase"] == "healthy" and decision["lease"] == "primary#1" and decision["trigger"] == "tick"
    assert decision["reasons"] and all(isinstance(r, str) for r in decision["reasons"])
    assert decision["probe_ok"] is True and decision["instance"] == "stopped"
    assert ("ProbeFailed", 0.0) in world.metrics and ("StandbyRunning", 0.0) in world.metrics
    assert ("ActionFailed", 0.0) in world.metrics


def test_every_tick_writes_one_version_and_history_only_on_transitions(world: World) -> None:
    healthy_start(world)
    world.clock.advance(5)
    world.beat()
    world.tick()
    assert world.control().version == 2
    assert world.store.history(10) == []


def test_failover_starts_the_instance_records_history_and_notifies_once(world: World) -> None:
    report = fail_over(world)
    assert report.lease_site == "standby" and report.lease_epoch == 2
    # The instance was started when the failover began (the lease moved later, to a ready standby).
    assert world.ec2() in ("pending", "running")
    control = world.control()
    # One EC2 start in all: the pre-warm's (heartbeats silent and the probe failing), which the
    # failover then used, or the failover's own when nothing pre-warmed.
    assert control.lease.site == LeaseSite.STANDBY
    assert control.start_count + len(control.prewarm_starts) == 1
    history = world.store.history(10)
    assert history[0].to_lease.site == LeaseSite.STANDBY
    began = [h for h in history if h.to_phase == "failing_over" and h.from_phase != "failing_over"]
    assert len(began) == 1
    assert any("no heartbeat from primary" in r for r in history[0].reasons)
    delivered = world.inbox.messages()
    keys = [m.key for m in delivered]
    assert len(keys) == len(set(keys)), keys
    assert "transition:suspect->failing_over" in keys
    critical = [m for m in delivered if m.severity == Severity.CRITICAL.value]
    # Two critical alerts: the failover begins (the lease still on the primary), the lease moves.
    assert len(critical) == 2 and sum("lease primary -> standby" in m.subject for m in critical) == 1
    [ec2_log] = world.log.records("ec2_action")
    assert ec2_log["result"] == "start_requested" and ec2_log["action"] == "start_standby"
    # The next ticks do not start it again: the cooldown and the instance state both say no.
    world.clock.advance(10)
    again = world.tick()
    assert not any(a.startswith("start_standby:start_requested") for a in again.actions)
    after = world.control()
    assert after.start_count + len(after.prewarm_starts) == 1


def test_a_failing_notifier_never_blocks_the_failover(world: World) -> None:
    world.notifier = BrokenNotifier()
    report = fail_over(world)
    assert report.lease_site == "standby" and world.ec2() in ("pending", "running")
    assert report.action_failures >= 1 and world.notifier.attempts >= 1
    assert world.log.records("notify_raised")
    assert ("ActionFailed", float(report.action_failures)) in world.metrics


def test_a_notifier_reporting_failure_is_logged_and_counted(world: World) -> None:
    gone = world.inbox.topic_arn.replace("hfo-alerts", "deleted-topic")
    world.notifier = SnsNotifier(sns_client(1), gone)  # SNS answers NotFound: delivery fails
    report = fail_over(world)
    assert report.lease_site == "standby" and world.ec2() in ("pending", "running")
    failed = world.log.records("notify_failed")
    assert any(r["key"] == "transition:suspect->failing_over" for r in failed)
    assert report.action_failures >= 1 and ("ActionFailed", float(report.action_failures)) in world.metrics
    assert world.inbox.messages() == []


def test_a_failed_start_is_recorded_and_alerted_through_apply_outcomes(world: World) -> None:
    world.standby = FakeStandby(no_capacity={"t3.small"}, fallback_types=())
    healthy_start(world)
    world.prober.alive = False
    world.tick()
    world.clock.advance(60)  # silent and unreachable for long enough: this tick starts the standby
    report = world.tick()
    assert report.phase == "failing_over" and report.lease_site == "primary"
    control = world.control()
    assert control.start_failures == 1
    assert control.last_start_at is None  # no start was made: the cooldown stamp is given back
    assert any("insufficient_capacity" in r for r in report.reasons)
    assert any(m.severity != Severity.INFO.value and "start" in m.key for m in world.inbox.messages())
    assert world.log.records("ec2_action_failed") and world.log.records("outcomes_recorded")
    # The next tick tries again (no cooldown was consumed), now with capacity.
    world.standby.no_capacity.clear()
    world.clock.advance(10)
    retry = world.tick()
    assert "start_standby:start_requested" in retry.actions
    assert world.control().start_failures == 0


@dataclass
class _PausedStore:
    """The real store; `load` waits at a barrier so that two invocations interleave."""

    inner: DynamoStateStore
    barrier: threading.Barrier

    def load(self) -> tuple[ControlState, SiteRecord | None, SiteRecord | None]:
        loaded = self.inner.load()
        self.barrier.wait(timeout=10)
        return loaded

    def save(self, expected_version: int, state: ControlState, transition: Transition | None, **kw: Any) -> bool:
        return self.inner.save(expected_version, state, transition, **kw)

    @property
    def last_conflict(self) -> str | None:
        return self.inner.last_conflict


@dataclass
class _Counting:
    """The real EC2 adapter, counting what this invocation asked of it."""

    inner: Ec2StandbyInstance
    calls: list[str] = field(default_factory=list)

    def state(self) -> InstanceState:
        return self.inner.state()

    def ensure_running(self) -> Ec2Outcome:
        self.calls.append("ensure_running")
        return self.inner.ensure_running()

    def ensure_stopped(self) -> Ec2Outcome:
        self.calls.append("ensure_stopped")
        return self.inner.ensure_stopped()


def test_race_between_two_ticks_only_the_winner_acts(world: World) -> None:
    # The primary has been silent and unreachable long enough: the next tick fails over.
    healthy_start(world)
    world.prober.alive = False
    world.tick()
    world.clock.advance(60)
    history_before = len(world.store.history(100))
    barrier = threading.Barrier(2)
    invocations = []
    for name in ("a", "b"):
        store = DynamoStateStore(boto3.client("dynamodb"), TABLE, clock=world.clock, writer=f"tick-{name}")
        inbox = AlertInbox.on_new_topic(f"alerts-{name}")  # one topic per invocation: who published what
        invocations.append(
            {
                "name": name,
                "log": JsonLog(),
                "inbox": inbox,
                "notifier": SnsNotifier(sns_client(2), inbox.topic_arn),
                "standby": _Counting(Ec2StandbyInstance(ec2_client(2), world.instance_id, ())),
                "store": _PausedStore(store, barrier),
            }
        )
    reports: dict[str, TickReport] = {}

    def run(inv: dict[str, Any]) -> None:
        reports[inv["name"]] = world.tick(
            store=inv["store"], log=inv["log"], notifier=inv["notifier"], standby=inv["standby"]
        )

    threads = [threading.Thread(target=run, args=(inv,)) for inv in invocations]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    outcomes = sorted(r.outcome for r in reports.values())
    assert outcomes == ["lost_race", "saved"]
    winner = next(i for i in invocations if reports[i["name"]].outcome == "saved")
    loser = next(i for i in invocations if reports[i["name"]].outcome == "lost_race")
    # Both decided to fail over; only the winner started EC2 and sent alerts.
    assert winner["standby"].calls == ["ensure_running"] and loser["standby"].calls == []
    assert winner["inbox"].messages() and loser["inbox"].messages() == []
    [lost] = loser["log"].records("lost_race")
    assert "start_standby" in lost["would_act"]
    assert lost["conflict"].startswith("the control item is no longer at version 2")
    assert lost["reasons"] and lost["expected_version"] == 2
    assert loser["log"].records("decision") == []
    history = world.store.history(100)
    assert len(history) == history_before + 1 and history[0].writer == f"tick-{winner['name']}"
    # The lease waits on the primary until the standby runs and reports ready; one start in all.
    control = world.control()
    assert control.lease.site == LeaseSite.PRIMARY and control.phase == Phase.FAILING_OVER
    assert control.start_count + len(control.prewarm_starts) == 1


def test_probe_failure_alone_is_degraded_not_failover(world: World) -> None:
    healthy_start(world)
    world.prober.alive = False
    world.prober.failure = ProbeFailure.TLS
    for _ in range(5):
        world.clock.advance(5)
        world.beat()
        report = world.tick()
        assert report.lease_site == "primary" and report.probe_failure == "tls"
    assert world.ec2() == "stopped"
    assert ("ProbeFailed", 1.0) in world.metrics
    assert world.control().phase in (Phase.SUSPECT, Phase.HEALTHY)


def test_a_crashing_prober_counts_as_a_failed_probe(world: World) -> None:
    class Crashing:
        def probe(self) -> Any:
            raise RuntimeError("bug")

    world.beat()
    report = world.tick(prober=Crashing())
    assert report.probe_ok is False and report.probe_failure == "error"
    assert world.control().last_probe is not None and world.control().last_probe.failure == ProbeFailure.ERROR


def test_handback_stops_the_instance(world: World) -> None:
    fail_over(world)
    # The standby's agent boots and runs the workload under the new epoch.
    epoch = world.control().lease.epoch
    world.clock.advance(5)
    world.beat("standby", workload="running", epoch_seen=epoch)
    world.tick()
    # The laptop is back: good probes, steady heartbeats for the recovery window.
    world.prober.alive = True
    seen: list[str] = []
    for _ in range(20):
        world.clock.advance(5)
        world.beat("primary", workload="stopped", epoch_seen=world.control().lease.epoch)
        lease = world.control().lease
        standby_workload = "stopped" if lease.site == LeaseSite.NONE else "running"
        world.beat("standby", workload=standby_workload, epoch_seen=lease.epoch)
        report = world.tick()
        seen.append(f"{report.phase}:{report.lease_site}")
        if report.lease_site == "primary" and world.ec2() in ("stopping", "stopped"):
            break
    assert "handing_back:none" in seen
    assert world.control().lease.site == LeaseSite.PRIMARY
    assert world.ec2() in ("stopping", "stopped")
    assert [h.to_lease.site for h in reversed(world.store.history(20))][-2:] == [LeaseSite.NONE, LeaseSite.PRIMARY]


@dataclass
class _HeartbeatInBetween:
    """The real store; between this tick's read and its write, the primary's agent heartbeats
    (through the heartbeat handler's store call) and is answered with the lease as stored."""

    inner: DynamoStateStore
    clock: FakeClock

    def load(self) -> tuple[ControlState, SiteRecord | None, SiteRecord | None]:
        return self.inner.load()

    def save(self, expected_version: int, state: ControlState, transition: Transition | None, **kw: Any) -> bool:
        other = DynamoStateStore(boto3.client("dynamodb"), TABLE, writer="heartbeat")
        other.record_heartbeat(heartbeat("primary", self.clock.now), self.clock.now)
        return self.inner.save(expected_version, state, transition, **kw)

    @property
    def last_conflict(self) -> str | None:
        return self.inner.last_conflict


def test_a_heartbeat_between_read_and_write_cancels_taking_the_lease_away(world: World) -> None:
    healthy_start(world)
    world.prober.alive = False
    world.tick()
    world.clock.advance(60)  # silent and unreachable for long enough: the failover starts the standby
    assert world.tick().lease_site == "primary"
    world.clock.advance(10)
    assert world.tick().instance == "running"
    world.clock.advance(10)
    world.beat("standby", workload="stopped")  # the standby is ready: this tick would move the lease
    report = world.tick(store=_HeartbeatInBetween(world.store, world.clock))
    assert report.outcome == "lost_race"
    [lost] = world.log.records("lost_race")
    assert lost["conflict"] == "a heartbeat from the primary arrived after the state was read"
    assert world.control().lease.site == LeaseSite.PRIMARY and world.control().lease.epoch == 1
    # The next tick sees the heartbeat: the primary is alive, the failover is called off.
    world.clock.advance(1)
    again = world.tick()
    assert again.outcome == "saved" and again.lease_site == "primary" and again.phase != "failing_over"
