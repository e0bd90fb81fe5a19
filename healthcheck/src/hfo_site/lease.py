"""The agent's knowledge of the lease, and the one rule that decides whether the workload may run.

docs/protocol.md#lease-answer: a site holds a fresh lease while ``lease.site`` is its own site and
less than ``lease.ttl_s`` seconds have passed, on the agent's lease clock (``lease_clock``), since it *sent*
the heartbeat whose answer granted it. Answers with an epoch lower than the highest seen are
ignored. Two answers with the same epoch but different sites cannot both be true (every change
of site bumps the epoch), so such an epoch is distrusted: no lease is held until a higher one.
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


@dataclass(frozen=True)
class LeaseView:
    site: str  # primary | standby | none
    epoch: int
    ttl_s: float
    granted_at: float  # monotonic SEND time of the heartbeat whose answer confirmed this view
    conflicted: bool = False


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
            self.view = LeaseView(answer.site, answer.epoch, answer.ttl_s, granted)
            return Outcome.ACCEPTED
        self.highest_epoch = answer.epoch
        self.view = LeaseView(answer.site, answer.epoch, answer.ttl_s, sent_at_mono)
        return Outcome.ACCEPTED

    def expires_at(self) -> float | None:
        """Monotonic deadline of the lease held by this site, or None when it holds none."""
        view = self.view
        if view is None or view.conflicted or view.site != self.own_site:
            return None
        return view.granted_at + view.ttl_s

    def holds(self, now_mono: float) -> bool:
        deadline = self.expires_at()
        return deadline is not None and now_mono < deadline

    def remaining(self, now_mono: float) -> float:
        deadline = self.expires_at()
        return 0.0 if deadline is None else max(0.0, deadline - now_mono)
