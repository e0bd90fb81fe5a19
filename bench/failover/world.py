"""What every policy shares: the standby EC2 instance and the record of one simulated run.

The instance goes stopped -> pending -> running -> stopping -> stopped, taking the boot model's
`ec2_start_s` and `ec2_stop_s`. Billing follows EC2's rule: per second while `running`, at least
`minimum_billed_s` per start that reached `running`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hfo_watchdog.core.model import Ec2Outcome, InstanceState

from failover.boot import BootModel
from failover.traces import Trace

EC2_CODES = (InstanceState.STOPPED, InstanceState.PENDING, InstanceState.RUNNING, InstanceState.STOPPING)
EC2_CODE = {s: i for i, s in enumerate(EC2_CODES)}
LEASE_CODES = ("primary", "none", "standby")
LEASE_CODE = {s: i for i, s in enumerate(LEASE_CODES)}


class Instance:
    """The standby instance, as the EC2 adapter sees it (start/stop are idempotent)."""

    def __init__(self, boot: BootModel) -> None:
        self.boot = boot
        self.state = InstanceState.STOPPED
        self.since = 0
        self.starts: list[int] = []
        self.stops: list[int] = []
        self.running_spans: list[list[int]] = []  # [start, end) of each `running` spell; end -1 while open

    def start(self, t: int) -> Ec2Outcome:
        if self.state == InstanceState.STOPPED:
            self.state, self.since = InstanceState.PENDING, t
            self.starts.append(t)
            return Ec2Outcome(
                ok=True, action="start_requested", state=self.state, instance_type=self.boot.price.instance_type
            )
        if self.state in (InstanceState.PENDING, InstanceState.RUNNING):
            return Ec2Outcome(ok=True, action="already_running", state=self.state)
        return Ec2Outcome(ok=True, action="waiting", state=self.state)  # stopping: start once stopped

    def stop(self, t: int) -> Ec2Outcome:
        if self.state in (InstanceState.PENDING, InstanceState.RUNNING):
            if self.state == InstanceState.RUNNING:
                self.running_spans[-1][1] = t
            self.state, self.since = InstanceState.STOPPING, t
            self.stops.append(t)
            return Ec2Outcome(ok=True, action="stop_requested", state=self.state)
        if self.state == InstanceState.STOPPED:
            return Ec2Outcome(ok=True, action="already_stopped", state=self.state)
        return Ec2Outcome(ok=True, action="waiting", state=self.state)

    def step(self, t: int) -> str | None:
        """Advance to second `t`; 'running' or 'stopped' when the instance just got there."""
        if self.state == InstanceState.PENDING and t - self.since >= self.boot.ec2_start_s:
            self.state, self.since = InstanceState.RUNNING, t
            self.running_spans.append([t, -1])
            return "running"
        if self.state == InstanceState.STOPPING and t - self.since >= self.boot.ec2_stop_s:
            self.state, self.since = InstanceState.STOPPED, t
            return "stopped"
        return None

    def running_s(self, end: int) -> int:
        return sum((e if e >= 0 else end) - s for s, e in self.running_spans)

    def billed_s(self, end: int) -> int:
        floor = self.boot.price.minimum_billed_s
        return sum(max(floor, (e if e >= 0 else end) - s) for s, e in self.running_spans)


@dataclass(frozen=True)
class Transition:
    t: int
    from_phase: str
    to_phase: str
    lease: str
    epoch: int
    reason: str


@dataclass
class Run:
    """Everything one policy did on one trace, second by second, for the metrics and the plot.

    `laptop_bot` / `standby_bot`: 1 while that site's bot answers on Discord (connected, until its
    process has exited). `failovers`: the seconds a failover was decided (ours: the engine moved
    to failing_over in an emergency; the seed: it started EC2)."""

    policy: str
    trace: Trace
    laptop_bot: bytearray
    standby_bot: bytearray
    ec2: bytearray
    running_s: int = 0
    billed_s: int = 0
    ec2_starts: list[int] = field(default_factory=list)
    ec2_stops: list[int] = field(default_factory=list)
    failovers: list[int] = field(default_factory=list)
    probes: list[tuple[int, bool]] = field(default_factory=list)
    heartbeats: list[int] = field(default_factory=list)  # the laptop's, as delivered
    # Ours only (the seed has no lease, no phases and no signals beyond its probe):
    lease: bytearray | None = None
    epoch: list[int] | None = None
    phase: bytearray | None = None
    probe_signal: bytearray | None = None
    heartbeat_signal: bytearray | None = None
    transitions: list[Transition] = field(default_factory=list)
    lease_overlap_s: int = 0  # seconds both sites held a fresh lease (invariant 1; must stay 0)

    @classmethod
    def empty(cls, policy: str, trace: Trace) -> Run:
        n = trace.duration
        return cls(policy=policy, trace=trace, laptop_bot=bytearray(n), standby_bot=bytearray(n), ec2=bytearray(n))
