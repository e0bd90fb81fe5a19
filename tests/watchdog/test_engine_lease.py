"""The lease fencing rule (hfo_watchdog.core.lease): when may the lease go to a site?"""

from __future__ import annotations

import pytest
from hfo_watchdog.core.lease import acknowledged, fence_deadline, fencing, may_grant, moved
from hfo_watchdog.core.model import InstanceState, Lease, LeaseSite, Site
from testsupport.engine import POLICY, T0, rec, standby_rec

# lease_ttl_s 60 + stop_grace_s 30 = 90 s
WINDOW = POLICY.lease_ttl_s + POLICY.stop_grace_s


def test_moving_the_lease_raises_the_epoch_and_stamps_the_time():
    lease = Lease(LeaseSite.STANDBY, 7, 10.0)
    assert moved(lease, LeaseSite.NONE, 99.0) == Lease(LeaseSite.NONE, 8, 99.0)


def test_deadline_of_the_named_site_is_its_last_heartbeat_plus_ttl_and_grace():
    lease = Lease(LeaseSite.PRIMARY, 3, T0 - 1000)
    assert fence_deadline(Site.PRIMARY, lease, rec(age=50), POLICY) == T0 - 50 + WINDOW


def test_deadline_of_a_site_no_longer_named_counts_from_the_lease_change_at_the_latest():
    lease = Lease(LeaseSite.NONE, 4, T0 - 20)
    # Heartbeats after the change got `none`: they cannot extend the old lease.
    assert fence_deadline(Site.STANDBY, lease, standby_rec(age=5), POLICY) == T0 - 20 + WINDOW
    # A site silent since before the change: its own last heartbeat bounds it.
    assert fence_deadline(Site.STANDBY, lease, standby_rec(age=300), POLICY) == T0 - 300 + WINDOW


def test_a_site_that_never_heartbeated_never_got_a_lease():
    lease = Lease(LeaseSite.PRIMARY, 1, 0.0)
    assert fence_deadline(Site.PRIMARY, lease, None, POLICY) is None
    assert fencing(Site.PRIMARY, lease, None, InstanceState.RUNNING, T0, POLICY).fenced


def test_primary_silent_longer_than_ttl_and_grace_is_fenced_even_while_named():
    lease = Lease(LeaseSite.PRIMARY, 1, T0 - 5000)
    f = fencing(Site.PRIMARY, lease, rec(age=WINDOW), InstanceState.STOPPED, T0, POLICY)
    assert f.fenced
    assert f.reason == (
        "primary cannot hold a fresh lease any more (lease_ttl_s 60 s + stop_grace_s 30 s passed 0 s ago)"
    )


def test_primary_heard_recently_may_still_hold_its_lease():
    lease = Lease(LeaseSite.PRIMARY, 1, T0 - 5000)
    f = fencing(Site.PRIMARY, lease, rec(age=WINDOW - 10), InstanceState.STOPPED, T0, POLICY)
    assert not f.fenced
    assert f.reason == "primary may still hold a fresh lease for 10 s (lease_ttl_s 60 s + stop_grace_s 30 s)"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (standby_rec(age=1, workload="stopped", epoch=8), True),
        (standby_rec(age=1, workload="stopped", epoch=9), True),
        (standby_rec(age=1, workload="stopped", epoch=7), False),  # has not heard the none epoch
        (standby_rec(age=1, workload="stopping", epoch=8), False),
        (standby_rec(age=1, workload="unknown", epoch=8), False),
        (standby_rec(age=30, workload="stopped", epoch=8), False),  # sent before the change
        (None, False),
    ],
)
def test_acknowledgement_needs_the_current_epoch_and_a_stopped_workload(record, expected):
    lease = Lease(LeaseSite.NONE, 8, T0 - 10)
    assert acknowledged(record, lease) is expected


def test_a_site_still_named_cannot_acknowledge():
    lease = Lease(LeaseSite.STANDBY, 8, T0 - 10)
    assert not acknowledged(standby_rec(age=1, workload="stopped", epoch=8), lease)


@pytest.mark.parametrize(
    ("instance", "fenced"),
    [
        (InstanceState.STOPPED, True),
        (InstanceState.TERMINATED, True),
        (InstanceState.MISSING, True),
        (InstanceState.STOPPING, False),  # the OS may still run the workload
        (InstanceState.SHUTTING_DOWN, False),
        (InstanceState.RUNNING, False),
        (InstanceState.PENDING, False),
        (InstanceState.UNKNOWN, False),
    ],
)
def test_standby_instance_state_fences_it_only_when_it_cannot_run(instance, fenced):
    lease = Lease(LeaseSite.NONE, 8, T0 - 10)
    f = fencing(Site.STANDBY, lease, standby_rec(age=2), instance, T0, POLICY)
    assert f.fenced is fenced
    if fenced:
        assert f.reason == f"the standby instance is {instance}"


def test_instance_state_says_nothing_about_the_primary():
    lease = Lease(LeaseSite.NONE, 8, T0 - 10)
    assert not fencing(Site.PRIMARY, lease, rec(age=2), InstanceState.STOPPED, T0, POLICY).fenced


def test_may_grant_checks_the_other_site():
    lease = Lease(LeaseSite.NONE, 8, T0 - 10)
    records = {Site.PRIMARY: rec(age=2, workload="stopped", epoch=8), Site.STANDBY: standby_rec(age=2)}
    # Primary acknowledged: the standby may have the lease.
    assert may_grant(Site.STANDBY, lease, records, InstanceState.RUNNING, T0, POLICY).fenced
    # The standby has not: the primary may not have it yet.
    g = may_grant(Site.PRIMARY, lease, records, InstanceState.RUNNING, T0, POLICY)
    assert not g.fenced
    assert g.reason.startswith("standby may still hold a fresh lease for 80 s")
