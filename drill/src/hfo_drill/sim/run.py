"""One simulated run of one design on one trace, and the figures it gives.

Definitions (docs/benchmarks.md repeats them):

- downtime: seconds of the trace during which no site's bot answers on Discord (the laptop's own
  outage counts: the user has no bot either way);
- two bots: seconds during which both sites' bots answer (each command answered twice);
- lease overlap: seconds during which both sites' agents hold a fresh lease (LeaseTracker.holds
  on each agent's lease clock) - invariant 1, ours only;
- failover decision: ours, a committed transition that moves the lease to the standby (from the
  primary, or from `none` during a handback); the seed, its EC2 start. False when the laptop was
  fine then (up, awake and online);
- decision: seconds from the trace's first incident to the first decision at or after it; bot
  back: seconds from the first incident to the end of the first downtime that starts at or after it;
- EC2 starts by purpose (the engine's, as its Effects logged it: failover or pre-warm), seconds
  `running`, and billed seconds (per second, at least `minimum_billed_s` per start that ran).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hfo_drill.sim.model import BootModel, Trace
from hfo_drill.sim.spans import complement, intersect, length, union
from hfo_drill.sim.world import T0, Command, OurController, Recorder, SeedController, Setup, World

WARMUP_S = 600.0
DESIGNS = ("ours", "seed")


@dataclass(frozen=True)
class Phases:
    """The schedule's luck, drawn per run: the second our ticks fire within their interval, the
    laptop's heartbeat phase, the second the seed's probe fires."""

    tick: float
    heartbeat: float
    seed_tick: float

    @classmethod
    def draw(cls, rng: random.Random) -> Phases:
        return cls(tick=rng.random(), heartbeat=rng.random(), seed_tick=rng.random())


@dataclass(frozen=True)
class Result:
    trace: Trace
    design: str
    downtime_s: float
    two_bots_s: float
    lease_overlap_s: float
    decision_s: float | None
    back_s: float | None
    failovers: tuple[float, ...]  # trace seconds
    false_failovers: int
    ec2_starts: dict[str, int]
    running_s: float
    billed_s: float
    rec: Recorder = field(repr=False, compare=False)
    warmup_s: float = WARMUP_S
    world: World | None = field(default=None, repr=False, compare=False)

    @property
    def ec2_start_count(self) -> int:
        return sum(self.ec2_starts.values())


def simulate(
    trace: Trace,
    boot: BootModel,
    setup: Setup,
    *,
    design: str = "ours",
    phases: Phases | None = None,
    seed: int | str = 0,
    seed_tick_s: float = 300.0,
    minimum_billed_s: float = 60.0,
    warmup_s: float = WARMUP_S,
    failing_starts: frozenset[int] = frozenset(),
    external_stops: Sequence[float] = (),
    commands: Sequence[Command] = (),
    dynamodb: tuple[Any, str] | None = None,
    instance_missing: bool = False,
) -> Result:
    """Run `design` on `trace`. Everything random (agents' jitter, boot draws, nonces) comes from
    `seed`, so a run repeats exactly; `phases` default to a draw from it. `dynamodb`: (client,
    table) for the state store instead of the in-memory FakeDynamoDB (tests run it on moto)."""
    if design not in DESIGNS:
        raise ValueError(f"design {design!r} must be one of {', '.join(DESIGNS)}")
    rng = random.Random(f"sim:{seed}")
    ph = phases or Phases.draw(random.Random(f"phases:{seed}"))
    world = World(
        trace,
        boot,
        setup,
        rng=rng,
        warmup_s=warmup_s,
        failing_starts=failing_starts,
        external_stops=external_stops,
        commands=commands,
        instance_missing=instance_missing,
    )
    if design == "ours":
        interval = setup.policy.heartbeat_interval_s
        client, table = dynamodb if dynamodb is not None else (None, "hfo-sim")
        world.controller = OurController(
            world, tick_phase=ph.tick * setup.tick_s, first_beat=ph.heartbeat * interval, client=client, table=table
        )
    else:
        world.controller = SeedController(world, tick_s=seed_tick_s, tick_phase=ph.seed_tick * seed_tick_s)
    rec = world.run()
    return _result(world, rec, design, minimum_billed_s)


def _result(world: World, rec: Recorder, design: str, minimum_billed_s: float) -> Result:
    w0, end = world.warmup_s, world.end
    trace = world.trace
    bots = [*rec.bot_spans["primary"], *rec.bot_spans["standby"]]
    down = complement(bots, w0, end)
    two = intersect(rec.bot_spans["primary"], rec.bot_spans["standby"])
    overlap = intersect(rec.hold_spans["primary"], rec.hold_spans["standby"])
    if design == "ours":
        failovers = [
            h.at - T0
            for h in rec.history
            if h.to_lease.site.value == "standby" and h.from_lease.site.value != "standby"
        ]
    else:
        failovers = list(rec.failovers)
    failovers_t = tuple(t - w0 for t in failovers if t >= w0)
    incident = trace.incident_at
    decision = back = None
    if incident is not None:
        decision = next((t - incident for t in failovers_t if t >= incident), None)
        back = next((e - w0 - incident for s, e in down if s - w0 >= incident), None)
    starts: dict[str, int] = {}
    for t, purpose in rec.ec2_starts:
        if t >= w0:
            starts[purpose] = starts.get(purpose, 0) + 1
    running = [(max(s, w0), e) for s, e in rec.running_spans if e > w0]
    return Result(
        trace=trace,
        design=design,
        downtime_s=length(down),
        two_bots_s=length([(max(s, w0), min(e, end)) for s, e in two if e > w0]),
        lease_overlap_s=length([(max(s, w0), min(e, end)) for s, e in overlap if e > w0]),
        decision_s=decision,
        back_s=back,
        failovers=failovers_t,
        false_failovers=sum(1 for t in failovers_t if trace.laptop_fine(t)),
        ec2_starts=starts,
        running_s=length(union(running)),
        billed_s=sum(max(minimum_billed_s, e - s) for s, e in running),
        rec=rec,
        warmup_s=w0,
        world=world,
    )
