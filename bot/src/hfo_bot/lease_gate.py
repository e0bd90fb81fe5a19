"""The asyncio side of the lease (docs/kubernetes.md#lease-aware-bot): one gate that the gateway consults before
it connects, before every IDENTIFY and RESUME, before it handles a received event, and that renews the lease in the
background while the bot runs.

- ``confirm(why)`` asks the agent now (one request at a time; concurrent callers share it).
- ``wait_connectable(why, stop)`` retries with a bounded backoff until the site holds a lease fresh for more
  than the margin (or ``stop`` is set): no crash loop, one log line per new reason.
- ``admit()`` is the fast check on every received event: a grant in date and no pause since the last
  confirmation. After a pause (a suspend, SIGSTOP, a stalled loop) it asks the agent first.
- ``run()`` ticks the pause detector and renews the grant before it goes stale; ``lost`` is set whenever a
  grant is refused or goes stale, and the gateway disconnects on it.

With no URL the gate is open: the bot behaves as it did before leases existed (and says so once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from hfo_bot.lease import (
    LEASE_URL_ENV,
    UNAWARE,
    LeaseAnswer,
    LeaseBook,
    LeaseRefused,
    LeaseStatus,
    Pause,
    PauseDetector,
    fetch_lease,
    lease_clock,
)

log = logging.getLogger("hfo_bot.lease")

TICK_S = 0.25  # how often the pause detector runs
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0

Fetch = Callable[[str, str, float], LeaseAnswer]


class LeaseUnavailable(ConnectionError):
    """Raised where a connection or a send is refused for want of a lease. A ConnectionError, so discord.py
    treats it like a network failure (and the gateway closes the client on ``lost``)."""


class LeaseGate:
    def __init__(
        self,
        url: str | None,
        own_site: str,
        *,
        margin_s: float = 2.0,
        timeout_s: float = 2.0,
        check_every_s: float = 5.0,
        pause_s: float = 1.0,
        fetch: Fetch = fetch_lease,
        clock: Callable[[], float] = lease_clock,
    ) -> None:
        self.url = url
        self.own_site = own_site
        self.timeout_s = timeout_s
        self.check_every_s = check_every_s
        self.book = LeaseBook(own_site, margin_s, clock)
        self.detector = PauseDetector(TICK_S, pause_s, clock)
        self._fetch = fetch
        self._clock = clock
        self.lost = asyncio.Event()
        self._granted = asyncio.Event()  # set by every granting answer (wakes a waiting connect at once)
        self._pause_pending: Pause | None = None
        self._inflight: asyncio.Future[bool] | None = None
        self._next_renewal = 0.0
        self._logged_reason = ""
        self.held_back = 0  # received events that had to wait for a confirmation
        self.dropped = 0  # received events never handled because the lease was not confirmed
        self.sessions = {"IDENTIFY": 0, "RESUME": 0}  # sent, each after a fresh confirmation

    @property
    def aware(self) -> bool:
        return self.url is not None

    def status(self) -> LeaseStatus:
        if not self.aware:
            return UNAWARE
        status = self.book.status()
        if self._pause_pending is not None and status.holds:
            return replace(status, reason=f"{status.reason}; re-checking after a pause")
        return status

    def describe(self) -> str:
        if not self.aware:
            return f"not lease-aware: {LEASE_URL_ENV} is not set, the bot connects without asking its agent"
        return (
            f"lease-aware: asks {self.url} before connecting (margin {self.book.margin_s:g}s, "
            f"timeout {self.timeout_s:g}s, pause threshold {self.detector.threshold_s:g}s)"
        )

    # -- asking the agent ----------------------------------------------------------------------------------------
    async def confirm(self, why: str) -> bool:
        """Ask the agent now; True when the site holds a grant in date. Joins a request already under way."""
        if not self.aware:
            return True
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._ask(why))
        return await asyncio.shield(self._inflight)

    async def _ask(self, why: str) -> bool:
        """One request. True only when this answer grants the lease: an error never confirms anything (a grant
        still in date is kept until it goes stale, so a blip does not drop a healthy connection)."""
        assert self.url is not None
        held_before = self.book.holds()
        pause_before = self._pause_pending
        asked_at = self._clock()
        granted = False
        try:
            answer = await asyncio.to_thread(self._fetch, self.url, self.own_site, self.timeout_s)
        except LeaseRefused as exc:
            self.book.fail(exc.reason)
        else:
            granted = self.book.record(answer, asked_at) is not None
        self.book.expire()
        self._next_renewal = self._renewal_due(asked_at)
        if granted:
            self._granted.set()
            if self._pause_pending is pause_before:  # a pause that began during the request needs another
                self._pause_pending = None
            if not held_before or self._logged_reason:
                log.info("%s (%s): fresh for %.1fs", self.book.reason, why, self.book.remaining())
            self._logged_reason = ""
        elif not self.book.holds():
            self._note_lost(why)
        elif self.book.reason != self._logged_reason:
            log.warning("lease not renewed (%s): %s", why, self.book.reason)
            self._logged_reason = self.book.reason
        return granted

    def _renewal_due(self, asked_at: float) -> float:
        """Renew after ``check_every_s``, and at the latest half-way to the margin before the grant goes stale."""
        grant = self.book.grant
        if grant is None:
            return asked_at + min(self.check_every_s, BACKOFF_MAX_S)
        latest = asked_at + max(0.2, (grant.valid_until - self.book.margin_s - asked_at) / 2)
        return min(asked_at + self.check_every_s, latest)

    def _note_lost(self, why: str) -> None:
        self.lost.set()
        reason = self.book.reason
        if reason != self._logged_reason:
            log.warning("no lease (%s): %s", why, reason)
            self._logged_reason = reason

    async def may_connect(self, why: str) -> bool:
        """A fresh confirmation, with more than the margin left: the rule before every IDENTIFY and RESUME."""
        if not self.aware:
            return True
        self._detect(self.detector.check())
        if not await self.confirm(why):
            return False
        self._detect(self.detector.check())  # the process may have been frozen while the request was out
        if self._pause_pending is not None and not await self.confirm(f"{why}, after a pause"):
            return False
        if self._pause_pending is not None:
            return False
        if not self.book.may_connect():
            reason = self.book.connect_refusal()
            if reason != self._logged_reason:
                log.warning("not connecting (%s): %s", why, reason)
                self._logged_reason = reason
            return False
        return True

    async def wait_connectable(self, why: str, stop: asyncio.Event) -> bool:
        """Retry ``may_connect`` with a bounded backoff until it holds (True) or ``stop`` is set (False). A grant
        seen by the background renewal meanwhile ends the wait early."""
        delay = BACKOFF_FIRST_S
        while not stop.is_set():
            self._granted.clear()
            if await self.may_connect(why):
                return True
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._granted.wait())]
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            delay = min(delay * 2, BACKOFF_MAX_S)
        return False

    # -- events ------------------------------------------------------------------------------------------------
    def admits_now(self) -> bool:
        """No pause since the last confirmation and a grant in date: an event may be handled at once."""
        if not self.aware:
            return True
        self._detect(self.detector.check())
        return self._pause_pending is None and self.book.holds()

    async def admit(self) -> bool:
        """May a received event be handled? After a pause, or without a grant in date, ask the agent first."""
        if self.admits_now():
            return True
        self.held_back += 1
        why = "after a pause" if self._pause_pending is not None else "lease not in date"
        return await self.confirm(why)

    def _detect(self, pause: Pause | None) -> None:
        if pause is None or self._pause_pending is not None:
            return
        self._pause_pending = pause
        self.book.pauses += 1
        log.warning("pause detected: %s; holding events until the agent confirms the lease", pause.describe())

    # -- background --------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Tick the pause detector, renew the grant in time, and set ``lost`` when it goes stale."""
        if not self.aware:
            log.info("%s", self.describe())
            await asyncio.Event().wait()
        log.info("%s", self.describe())
        self.detector.tick()  # the time since construction (imports, login setup) is not a pause
        while True:
            self._detect(self.detector.tick())
            if self.book.expire():
                self._note_lost("renewal")
            now = self._clock()
            due = self._pause_pending is not None or now >= self._next_renewal
            if due and (self._inflight is None or self._inflight.done()):
                why = "after a pause" if self._pause_pending is not None else "renewal"
                self._inflight = asyncio.ensure_future(self._ask(why))
            await asyncio.sleep(TICK_S)
