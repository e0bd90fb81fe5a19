"""The standby instance model: its states, timings, idempotent actions and EC2's billing rule."""

from __future__ import annotations

from failover import boot
from failover.world import Instance
from hfo_watchdog.core.model import InstanceState

BOOT = boot.load()


def test_start_runs_after_the_documented_seconds_and_stop_takes_its_own():
    ec2 = Instance(BOOT)
    assert ec2.start(10).action == "start_requested" and ec2.state == InstanceState.PENDING
    assert ec2.start(11).action == "already_running"  # idempotent, one start counted
    assert [ec2.step(t) for t in range(11, 10 + BOOT.ec2_start_s)] == [None] * (BOOT.ec2_start_s - 1)
    assert ec2.step(10 + BOOT.ec2_start_s) == "running"
    assert ec2.stop(100).action == "stop_requested" and ec2.state == InstanceState.STOPPING
    assert ec2.start(101).action == "waiting"  # EC2 cannot start a stopping instance
    assert ec2.step(100 + BOOT.ec2_stop_s) == "stopped"
    assert ec2.stop(200).action == "already_stopped"
    assert ec2.starts == [10] and ec2.stops == [100]


def test_billing_is_per_second_in_running_with_a_minute_minimum_per_start():
    ec2 = Instance(BOOT)
    up = BOOT.ec2_start_s
    ec2.start(0)
    ec2.step(up)
    ec2.stop(up + 30)  # 30 s running: billed a full minute
    ec2.step(up + 30 + BOOT.ec2_stop_s)
    ec2.start(1000)
    ec2.step(1000 + up)  # still running at the end: 500 s
    assert ec2.running_s(1000 + up + 500) == 530
    assert ec2.billed_s(1000 + up + 500) == 560
