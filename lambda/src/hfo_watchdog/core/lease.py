"""The lease safety rule (invariant 1, docs/state-machine.md#the-lease-rule).

An agent runs its workload only while its site holds a *fresh* lease: the last lease answer it
accepted names its site and was given to a heartbeat it sent less than `lease_ttl_s` ago. Every
lease answer goes to an accepted heartbeat, so a site's agent can hold a fresh lease at most until

    (its last accepted heartbeat's received_at) + lease_ttl_s         while the lease names it,
    min(that received_at, lease.changed_at) + lease_ttl_s              once the lease names another,

and its workload has stopped `stop_grace_s` after that. The primary's lease may also be renewed over
the probe path (docs/protocol.md#renewal): the watchdog writes `renewed_until` BEFORE it sends such a
renewal, and the primary's agent never holds a renewed lease past it, so the primary's bound is the
later of the two. The engine grants the lease to a site only when the other site is *fenced*: past
its bound, or it acknowledged the current epoch with its workload stopped, or (the standby) its
instance is seen stopped, terminated or missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hfo_watchdog.core.model import InstanceState, Lease, LeaseSite, Policy, Site, SiteRecord
from hfo_watchdog.core.signals import secs

# An instance in one of these states runs no agent, and a later boot starts an agent that holds
# nothing until it heartbeats and hears the lease of that moment. `stopping` and `shutting-down`
# are not enough: the operating system may still be running the workload for a while.
FENCING_INSTANCE_STATES = frozenset({InstanceState.STOPPED, InstanceState.TERMINATED, InstanceState.MISSING})


def other(site: Site) -> Site:
    return Site.STANDBY if site == Site.PRIMARY else Site.PRIMARY


def names(lease: Lease, site: Site) -> bool:
    return lease.site.value == site.value


def moved(lease: Lease, to: LeaseSite, now: float) -> Lease:
    """The next lease: another holder (or none), a strictly higher epoch."""
    return Lease(site=to, epoch=lease.epoch + 1, changed_at=now)


def acknowledged(record: SiteRecord | None, lease: Lease) -> bool:
    """The site heard the current epoch (which does not name it) and reports its workload stopped.
    Its agent ignores lower epochs, so it cannot run again unless this watchdog grants it."""
    return (
        record is not None
        and not names(lease, record.site)
        and record.received_at >= lease.changed_at
        and record.epoch_seen >= lease.epoch
        and record.workload == "stopped"
    )


def fence_deadline(
    site: Site, lease: Lease, record: SiteRecord | None, policy: Policy, renewed_until: float | None = None
) -> float | None:
    """The latest time at which `site` may still run the workload on a lease this watchdog gave;
    None when it never got any (no heartbeat accepted and, for the primary, no renewal sent)."""
    deadlines = []
    if record is not None:
        last = record.received_at if names(lease, site) else min(record.received_at, lease.changed_at)
        deadlines.append(last + policy.lease_ttl_s + policy.stop_grace_s)
    if site == Site.PRIMARY and renewed_until is not None:
        deadlines.append(renewed_until + policy.stop_grace_s)
    return max(deadlines) if deadlines else None


@dataclass(frozen=True)
class Fencing:
    fenced: bool
    reason: str


def fencing(
    site: Site,
    lease: Lease,
    record: SiteRecord | None,
    instance: InstanceState,
    now: float,
    policy: Policy,
    renewed_until: float | None = None,
) -> Fencing:
    """Whether `site` is certainly not running the workload (nor able to, without a new grant).
    An acknowledgement of the current epoch outranks an earlier renewal: the agent ignores every
    grant of a lower epoch once it has heard a higher one."""
    if acknowledged(record, lease):
        return Fencing(True, f"{site} acknowledged epoch {lease.epoch} with its workload stopped")
    if site == Site.STANDBY and instance in FENCING_INSTANCE_STATES:
        return Fencing(True, f"the standby instance is {instance}")
    deadline = fence_deadline(site, lease, record, policy, renewed_until)
    if deadline is None:
        return Fencing(True, f"{site} never had a heartbeat accepted, so it never received a lease")
    window = f"lease_ttl_s {secs(policy.lease_ttl_s)} + stop_grace_s {secs(policy.stop_grace_s)}"
    if site == Site.PRIMARY and renewed_until is not None and renewed_until + policy.stop_grace_s >= deadline:
        window = f"a renewal over the probe path until {secs(max(0.0, renewed_until - now))} from now + stop_grace_s"
    if now >= deadline:
        return Fencing(True, f"{site} cannot hold a fresh lease any more ({window} passed {secs(now - deadline)} ago)")
    return Fencing(False, f"{site} may still hold a fresh lease for {secs(deadline - now)} ({window})")


def may_grant(
    target: Site,
    lease: Lease,
    records: Mapping[Site, SiteRecord | None],
    instance: InstanceState,
    now: float,
    policy: Policy,
    renewed_until: float | None = None,
) -> Fencing:
    """Whether the lease may be given to `target` now: the other site must be fenced."""
    rival = other(target)
    return fencing(rival, lease, records.get(rival), instance, now, policy, renewed_until)
