"""The bot's side of the site lease: ask this site's agent whether the site holds a fresh lease before the bot
identifies to Discord, and again after any pause (docs/kubernetes.md#lease-aware-bot, docs/protocol.md#lease-endpoint).

A suspended laptop thaws its bot and its agent in the same instant; the bot must not reconnect (and answer)
before the agent has learnt that the standby took over. So the bot itself asks.

This module is pure standard library (the drill's stand-in bot reuses it without discord.py):

- ``parse_answer`` checks the agent's answer field by field; anything off is refused with a specific reason.
- ``fetch_lease`` GETs the URL with a hard deadline and a size cap (blocking; the bot runs it in a thread).
- ``LeaseBook`` is the pure rule: what was granted, when it goes stale, whether it may be used now.
- ``PauseDetector`` notices a freeze (suspend, SIGSTOP, a stalled loop) by comparing clocks.

Every time here is on ``lease_clock`` (CLOCK_BOOTTIME on Linux): it keeps counting while the machine
sleeps, so a lease granted before a suspend is seen as stale after it. ``time.monotonic`` stops during a
suspend; the difference between the two is how a suspend is measured.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

LEASE_URL_ENV = "HFO_BOT_LEASE_URL"
SITES = ("primary", "standby")
MAX_ANSWER_BYTES = 4096  # the answer is ~100 bytes; anything larger is not the agent's
MAX_FRESH_FOR_S = 3600.0  # no agent grants an hour ahead; a larger value is malformed

_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def lease_clock() -> float:
    """Seconds on a clock that counts suspend (CLOCK_BOOTTIME); the platform's monotonic clock elsewhere."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


class LeaseRefused(Exception):
    """No usable lease: the agent said no, or its answer could not be trusted. ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LeaseAnswer:
    """One answer of the agent's lease endpoint (docs/protocol.md#lease-endpoint)."""

    site: str
    holds: bool
    epoch: int
    fresh_for_s: float
    workload_should_run: bool


def validate_url(url: str) -> str:
    """The lease URL must be an absolute http(s) URL with a host; raises ValueError naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{LEASE_URL_ENV}={url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{LEASE_URL_ENV}={url!r} has no host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{LEASE_URL_ENV}={url!r} has an invalid port") from None
    return url


def _field(doc: dict[str, object], name: str, kind: type, what: str) -> object:
    if name not in doc:
        raise LeaseRefused(f"malformed answer: no {name!r} field")
    value = doc[name]
    # bool is an int in Python; a boolean is never accepted where a number is meant, and vice versa
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise LeaseRefused(f"malformed answer: {name!r} is {type(value).__name__}, not {what}")
    return value


def parse_answer(body: bytes, own_site: str) -> LeaseAnswer:
    """Check an answer field by field. Raises LeaseRefused with the first thing that is wrong."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise LeaseRefused("malformed answer: not JSON") from None
    if not isinstance(doc, dict):
        raise LeaseRefused("malformed answer: not a JSON object")
    site = _field(doc, "site", str, "a string")
    if site not in SITES:
        raise LeaseRefused(f"malformed answer: site {site!r} is not primary or standby")
    holds = _field(doc, "holds", bool, "a boolean")
    epoch = _field(doc, "epoch", int, "an integer")
    assert isinstance(epoch, int)
    if epoch < 0:
        raise LeaseRefused(f"malformed answer: epoch {epoch} is negative")
    fresh = doc.get("fresh_for_s")
    if isinstance(fresh, bool) or not isinstance(fresh, int | float):
        raise LeaseRefused("malformed answer: 'fresh_for_s' is missing or not a number")
    fresh_s = float(fresh)
    if not math.isfinite(fresh_s) or not 0 <= fresh_s <= MAX_FRESH_FOR_S:
        raise LeaseRefused(f"malformed answer: fresh_for_s {fresh!r} is out of range (0-{MAX_FRESH_FOR_S:g})")
    should_run = _field(doc, "workload_should_run", bool, "a boolean")
    if site != own_site:
        raise LeaseRefused(f"answer is about site {site!r} but this bot runs on {own_site!r} (wrong agent?)")
    return LeaseAnswer(str(site), bool(holds), epoch, fresh_s, bool(should_run))


def fetch_lease(url: str, own_site: str, timeout_s: float, max_bytes: int = MAX_ANSWER_BYTES) -> LeaseAnswer:
    """GET the agent's lease endpoint, within ``timeout_s`` in total. Raises LeaseRefused on any failure."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - validated http(s)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - validated http(s)
            if resp.status != 200:
                raise LeaseRefused(f"agent answered HTTP {resp.status}")
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise LeaseRefused(f"answer too large: {length} bytes (limit {max_bytes})")
            body = b""
            while len(body) <= max_bytes:
                if time.monotonic() > deadline:
                    raise LeaseRefused(f"timed out after {timeout_s:g}s reading the answer")
                chunk = resp.read1(max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            if len(body) > max_bytes:
                raise LeaseRefused(f"answer too large: more than {max_bytes} bytes")
    except LeaseRefused:
        raise
    except urllib.error.HTTPError as exc:
        raise LeaseRefused(f"agent answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise LeaseRefused(f"timed out after {timeout_s:g}s") from None
        raise LeaseRefused(f"agent unreachable: {reason}") from None
    except TimeoutError:
        raise LeaseRefused(f"timed out after {timeout_s:g}s") from None
    except (OSError, ValueError) as exc:  # reset connections, broken HTTP (http.client errors are OSError/ValueError)
        raise LeaseRefused(f"agent unreachable: {type(exc).__name__}: {exc}") from None
    return parse_answer(body, own_site)


@dataclass(frozen=True)
class Grant:
    epoch: int
    asked_at: float  # lease_clock when the request that confirmed it was SENT (conservative)
    valid_until: float  # asked_at + fresh_for_s: stale from then on


@dataclass(frozen=True)
class LeaseStatus:
    """What /readyz and the metrics show."""

    aware: bool
    holds: bool
    epoch: int | None
    fresh_for_s: float  # remaining, 0 when none
    reason: str
    checks: int
    refusals: int
    pauses: int


class LeaseBook:
    """The rule, without I/O: a grant is usable until ``asked_at + fresh_for_s``; a new connection (IDENTIFY,
    RESUME) needs more than ``margin_s`` of it left. An epoch lower than one already granted is refused."""

    def __init__(self, own_site: str, margin_s: float, clock: Callable[[], float] = lease_clock) -> None:
        self.own_site = own_site
        self.margin_s = margin_s
        self.clock = clock
        self.grant: Grant | None = None
        self.highest_epoch = -1
        self.reason = "lease not checked yet"
        self.checks = 0
        self.refusals = 0
        self.pauses = 0

    def record(self, answer: LeaseAnswer, asked_at: float) -> Grant | None:
        """Record an answer to a request sent at ``asked_at``; returns the grant, or None with ``reason`` set."""
        self.checks += 1
        if answer.epoch < self.highest_epoch:
            self.refuse(f"answer has epoch {answer.epoch}, lower than {self.highest_epoch} already seen")
            return None
        if not answer.holds:
            self.refuse(f"site {answer.site} does not hold the lease (epoch {answer.epoch})")
            return None
        if not answer.workload_should_run:
            self.refuse(f"agent says the workload should not run (site {answer.site}, epoch {answer.epoch})")
            return None
        if answer.fresh_for_s <= 0:
            self.refuse(f"site {answer.site} holds a stale lease (epoch {answer.epoch}, fresh for 0s)")
            return None
        self.highest_epoch = answer.epoch
        self.grant = Grant(answer.epoch, asked_at, asked_at + answer.fresh_for_s)
        self.reason = f"site {answer.site} holds the lease (epoch {answer.epoch})"
        return self.grant

    def refuse(self, reason: str) -> None:
        """Forget the grant: the agent said no or could not be asked."""
        self.grant = None
        self.refusals += 1
        self.reason = reason

    def fail(self, reason: str) -> None:
        """The agent could not be asked: count it; a grant still in date stays usable until it goes stale."""
        self.checks += 1
        self.refusals += 1
        if self.grant is None:
            self.reason = reason
        else:
            self.reason = f"{reason}; keeping the grant of epoch {self.grant.epoch} until it goes stale"

    def remaining(self, now: float | None = None) -> float:
        grant = self.grant
        if grant is None:
            return 0.0
        return max(0.0, grant.valid_until - (self.clock() if now is None else now))

    def holds(self, now: float | None = None) -> bool:
        """A grant still in date: events may be handled, the connection may stay up."""
        return self.remaining(now) > 0

    def may_connect(self, now: float | None = None) -> bool:
        """Enough of the grant left to open a session (IDENTIFY/RESUME): more than the margin."""
        return self.remaining(now) > self.margin_s

    def connect_refusal(self, now: float | None = None) -> str:
        """Why a session may not be opened now (the book's reason, or a grant too close to going stale)."""
        if self.grant is None or not self.holds(now):
            return self.reason
        return f"lease fresh for only {self.remaining(now):.2f}s, not more than the {self.margin_s:g}s margin"

    def expire(self, now: float | None = None) -> bool:
        """Drop a grant that went stale; True when one was dropped."""
        if self.grant is not None and not self.holds(now):
            epoch = self.grant.epoch
            self.grant = None
            self.reason = f"lease of epoch {epoch} went stale without renewal"
            return True
        return False

    def status(self) -> LeaseStatus:
        grant = self.grant
        remaining = self.remaining()
        return LeaseStatus(
            aware=True,
            holds=remaining > 0,
            epoch=grant.epoch if grant else None,
            fresh_for_s=remaining,
            reason=self.reason,
            checks=self.checks,
            refusals=self.refusals,
            pauses=self.pauses,
        )


UNAWARE = LeaseStatus(False, False, None, 0.0, f"not lease-aware ({LEASE_URL_ENV} is not set)", 0, 0, 0)


@dataclass(frozen=True)
class Pause:
    stalled_s: float  # how long the process did not run (beyond the expected tick)
    suspended_s: float  # of which the machine was suspended (CLOCK_BOOTTIME minus monotonic)

    def describe(self) -> str:
        if self.suspended_s >= 0.05:
            return f"the machine was suspended for {self.suspended_s:.1f}s (paused {self.stalled_s:.1f}s in all)"
        return f"the process did not run for {self.stalled_s:.1f}s (frozen or stalled)"


class PauseDetector:
    """Notices that the process did not run for a while. ``tick`` is called every ``interval_s``; a call that
    comes more than ``threshold_s`` late (on the suspend-counting clock) is a pause. A suspend also shows as
    CLOCK_BOOTTIME running ahead of ``time.monotonic``; SIGSTOP and a stalled loop only as lateness."""

    def __init__(
        self,
        interval_s: float,
        threshold_s: float,
        clock: Callable[[], float] = lease_clock,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.threshold_s = threshold_s
        self._clock = clock
        self._mono = mono
        self._last = clock()
        self._last_mono = mono()

    def check(self) -> Pause | None:
        """Compare the clocks with the last tick, without resetting (for callers between ticks)."""
        now, mono = self._clock(), self._mono()
        late = now - self._last - self.interval_s
        if late <= self.threshold_s:
            return None
        suspended = max(0.0, (now - self._last) - (mono - self._last_mono))
        return Pause(max(0.0, now - self._last), suspended)

    def tick(self) -> Pause | None:
        """Check, then start a new interval."""
        pause = self.check()
        self._last, self._last_mono = self._clock(), self._mono()
        return pause
