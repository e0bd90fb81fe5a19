"""The seed tutorial's design (seeds/003), second by second, for comparison.

- A scheduled Lambda probes the laptop's health check through Funnel every `tick_s` (5 min).
- One failed probe while the instance is stopped: start it. One good probe while it is pending or
  running: stop it. Nothing else (no heartbeat, no lease, no cooldown). A probe while the
  instance is stopping does nothing (EC2 refuses to start a stopping instance).
- The laptop's bot runs whenever the laptop is up (the seed has nothing that would stop it); it
  answers while the laptop's network is up.
- The standby's bot is in Git with one replica: K3s restarts it by itself once the node is up,
  `seed_bot_ready_s` after the instance reaches `running`, and it stays up until the shutdown
  stops it (bot stop after the instance starts stopping).
"""

from __future__ import annotations

from dataclasses import dataclass

from hfo_watchdog.core.model import InstanceState

from failover.boot import BootModel
from failover.traces import Trace
from failover.world import EC2_CODE, Instance, Run


@dataclass(frozen=True)
class SeedPolicy:
    name: str = "seed"
    tick_s: int = 300


def simulate(policy: SeedPolicy, boot: BootModel, trace: Trace, *, tick_phase: int = 0) -> Run:
    if not 0 <= tick_phase < policy.tick_s:
        raise ValueError(f"tick_phase {tick_phase} is out of range: 0-{policy.tick_s - 1} s")
    run = Run.empty(policy.name, trace)
    ec2 = Instance(boot)
    bot_from: int | None = None  # the standby's bot answers from this second while the instance runs
    bot_until = -1  # after a stop, a bot that was up answers until this second
    for t in range(trace.duration):
        if ec2.step(t) == "running":
            bot_from = t + boot.seed_bot_ready_s
        if (t - tick_phase) % policy.tick_s == 0:
            ok = trace.probe_path(t)
            run.probes.append((t, ok))
            if not ok and ec2.state == InstanceState.STOPPED:
                ec2.start(t)
                run.failovers.append(t)
            elif ok and ec2.state in (InstanceState.PENDING, InstanceState.RUNNING):
                ec2.stop(t)
                if t > 0 and run.standby_bot[t - 1]:
                    bot_until = t + boot.bot_stop_s
                bot_from = None
        run.laptop_bot[t] = trace.laptop_fine(t)
        run.standby_bot[t] = (bot_from is not None and t >= bot_from) or t < bot_until
        run.ec2[t] = EC2_CODE[ec2.state]
    run.running_s = ec2.running_s(trace.duration)
    run.billed_s = ec2.billed_s(trace.duration)
    run.ec2_starts, run.ec2_stops = list(ec2.starts), list(ec2.stops)
    return run
