"""The agent's knowledge of the lease, and the one rule that decides whether the workload may run.

docs/protocol.md#lease-answer: a site holds a fresh lease while ``lease.site`` is its own site and
less than ``lease.ttl_s`` seconds have passed, on the agent's lease clock (``lease_clock``), since it *sent*
the heartbeat whose answer granted it. Answers with an epoch lower than the highest seen are
ignored. Two answers with the same epoch but different sites cannot both be true (every change
of site bumps the epoch), so such an epoch is distrusted: no lease is held until a higher one.

docs/protocol.md#renewal: a lease may also be renewed over the probe path. The health service
passes such a renewal on as a *grant* with an end on this clock (``LeaseTracker.grant``); the
held lease of one epoch ends at the latest end any accepted answer or grant of that epoch allowed
(``LeaseView.expires``), never later.
Pure logic, no clock of its own: callers pass monotonic times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from hfo_protocol.heartbeat import LeaseAnswer


def lease_clock() -> float:
    """The agent's clock for lease freshness: monotonic, and still counting while the machine is
    suspended (CLOCK_BOOTTIME on Linux). time.monotonic stops during suspend, so a laptop that
    closed its lid holding a fresh lease would wake up believing it still held it, and resume its
    bot next to the standby's. Elsewhere, the platform's monotonic clock."""
    return time.clock_gettime(_LEASE_CLOCK_ID) if _LEASE_CLOCK_ID is not None else time.monotonic()


_LEASE_CLOCK_ID: int | None = getattr(time, "CLOCK_BOOTTIME", None)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    LOWER_EPOCH = "lower_epoch"  # ignored: the epoch went backwards
    CONFLICT = "conflict"  # same epoch, different site: distrusted
    FOREIGN = "foreign"  # a grant naming another site: recorded like an answer naming it, extends nothing here


@dataclass(frozen=True)
class LeaseView:
    site: str  # primary | standby | none
    epoch: int
    ttl_s: float
    granted_at: float  # monotonic SEND time of the heartbeat whose answer confirmed this view
    conflicted: bool = False
    # The end of this epoch's lease on the lease clock: the latest end any accepted heartbeat answer
    # (send time + ttl_s) or renewal grant of this epoch allowed. None: granted_at + ttl_s.
    expires: float | None = None

    @property
    def ends_at(self) -> float:
        return self.granted_at + self.ttl_s if self.expires is None else self.expires


class LeaseTracker:
    def __init__(self, own_site: str) -> None:
        self.own_site = own_site
        self.view: LeaseView | None = None
        self.highest_epoch = 0

    def observe(self, answer: LeaseAnswer, sent_at_mono: float) -> Outcome:
        """Record a verified answer (signature and nonce already checked by the caller)."""
        if answer.epoch < self.highest_epoch:
            return Outcome.LOWER_EPOCH
        current = self.view
        if current is not None and answer.epoch == current.epoch:
            if current.conflicted or answer.site != current.site:
                self.view = LeaseView(answer.site, answer.epoch, answer.ttl_s, sent_at_mono, conflicted=True)
                return Outcome.CONFLICT
            granted = max(current.granted_at, sent_at_mono)
            ends = max(current.ends_at, sent_at_mono + answer.ttl_s)
            self.view = LeaseView(answer.site, answer.epoch, answer.ttl_s, granted, expires=ends)
            return Outcome.ACCEPTED
        self.highest_epoch = answer.epoch
        ends = sent_at_mono + answer.ttl_s
        self.view = LeaseView(answer.site, answer.epoch, answer.ttl_s, sent_at_mono, expires=ends)
        return Outcome.ACCEPTED

    def grant(self, site: str, epoch: int, ends_at: float, ttl_s: float) -> Outcome:
        """Record a renewal grant passed on by the health service: ``site`` holds ``epoch`` until
        ``ends_at`` on this lease clock (the agent computes it as the time it SENT the status report
        whose answer carried the grant, plus the remaining time the health service measured when
        it received that report). ``ttl_s`` is the renewal's length, for a view this grant creates.

        Lower epochs are ignored. Otherwise a grant is read like a lease answer naming ``site``:
        for the current epoch the end only moves later; a higher epoch replaces the view; the
        same-epoch conflict rule holds (a grant never revives a distrusted epoch). A grant naming
        another site extends nothing here, but is still news: that site holds that epoch.
        (The health service only passes on grants for its own site; the rule does not rely on it.)"""
        if epoch < self.highest_epoch:
            return Outcome.LOWER_EPOCH
        current = self.view
        ours = site == self.own_site
        if current is not None and epoch == current.epoch:
            if current.conflicted or site != current.site:
                self.view = LeaseView(site, epoch, current.ttl_s, current.granted_at, conflicted=True)
                return Outcome.CONFLICT
            if ours:
                ends = max(current.ends_at, ends_at)
                self.view = LeaseView(site, epoch, current.ttl_s, current.granted_at, expires=ends)
            return Outcome.ACCEPTED if ours else Outcome.FOREIGN
        self.highest_epoch = epoch
        self.view = LeaseView(site, epoch, ttl_s, ends_at - ttl_s, expires=ends_at)
        return Outcome.ACCEPTED if ours else Outcome.FOREIGN
        self.highest_epoch = epoch
        self.view = LeaseView(site, epoch, ttl_s, ends_at - ttl_s, expires=ends_at)
        return Outcome.ACCEPTED

    def expires_at(self) -> float | None:
        """Monotonic deadline of the lease held by this site, or None when it holds none."""
        view = self.view
        if view is None or view.conflicted or view.site != self.own_site:
            return None
        return view.ends_at

    def holds(self, now_mono: float) -> bool:
        deadline = self.expires_at()
        return deadline is not None and now_mono < deadline

    def remaining(self, now_mono: float) -> float:
        deadline = self.expires_at()
        return 0.0 if deadline is None else max(0.0, deadline - now_mono)
