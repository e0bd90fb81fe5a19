"""The health service's side of lease renewals over the probe path (docs/protocol.md#renewal).

- ``AnsweredNonces``: every probe nonce the service answered with ``pass``, with the time t_ans on
  its lease clock (``hfo_site.lease.lease_clock``) when it answered, kept for ``NONCE_MEMORY_S``
  and at most ``MAX_NONCES`` of them (the oldest forgotten first). A renewal may name each one at
  most once.
- ``PendingGrants``: the grants the agent has to learn, "site holds epoch E until t_ans + ttl_s"
  on the same clock, handed to the agent in the answer to each of its status reports as the time
  *remaining* at that moment, until they run out.

Pure logic: callers pass the lease clock's time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

NONCE_MEMORY_S = 300.0  # the watchdog renews within one tick (seconds) of its probe; 5 minutes is ample
MAX_NONCES = 1024  # at the default rate limit, more than 3 minutes of passes to distinct nonces
MAX_GRANT_EPOCHS = 4  # one live epoch in practice; a few in case of a quick succession


@dataclass
class _Answered:
    at: float  # t_ans, the lease clock when the pass was answered (the first time, if asked twice)
    used: bool = False


class AnsweredNonces:
    def __init__(self, memory_s: float = NONCE_MEMORY_S, max_count: int = MAX_NONCES) -> None:
        self.memory_s = memory_s
        self.max_count = max_count
        self._seen: OrderedDict[str, _Answered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_old(self, now: float) -> None:
        while self._seen:
            nonce, entry = next(iter(self._seen.items()))
            if now - entry.at <= self.memory_s and len(self._seen) <= self.max_count:
                break
            del self._seen[nonce]

    def answered(self, nonce: str, now: float) -> None:
        """The service answered ``nonce`` with pass at ``now``. A nonce asked again keeps its first
        time: the earlier t_ans gives the earlier (safer) end."""
        if nonce not in self._seen:
            self._seen[nonce] = _Answered(now)
        self._forget_old(now)

    def lookup(self, nonce: str, now: float) -> tuple[str, float | None]:
        """("ok", t_ans) | ("unknown_nonce", None) | ("nonce_used", None). Changes nothing."""
        self._forget_old(now)
        entry = self._seen.get(nonce)
        if entry is None:
            return "unknown_nonce", None
        if entry.used:
            return "nonce_used", None
        return "ok", entry.at

    def use(self, nonce: str) -> None:
        self._seen[nonce].used = True


@dataclass(frozen=True)
class Grant:
    site: str
    epoch: int
    ends_at: float  # on the health service's lease clock
    ttl_s: float


class PendingGrants:
    """At most one grant per (site, epoch), the latest end; the highest MAX_GRANT_EPOCHS epochs."""

    def __init__(self) -> None:
        self._grants: dict[tuple[str, int], Grant] = {}

    def add(self, grant: Grant) -> None:
        key = (grant.site, grant.epoch)
        current = self._grants.get(key)
        if current is None or grant.ends_at > current.ends_at:
            self._grants[key] = grant
        for old in sorted(self._grants, key=lambda k: k[1])[:-MAX_GRANT_EPOCHS]:
            del self._grants[old]

    def live(self, now: float) -> list[Grant]:
        """The grants with time left at ``now``; the rest are dropped."""
        for key in [k for k, g in self._grants.items() if g.ends_at <= now]:
            del self._grants[key]
        return sorted(self._grants.values(), key=lambda g: (g.epoch, g.site))
