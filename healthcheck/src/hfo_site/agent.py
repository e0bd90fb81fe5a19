"""The site agent: heartbeats in, lease out, and the workload runs only under a fresh lease.

Three loops on one asyncio loop:

- **heartbeat**: every interval (jittered down by up to 10 %), observe the workload, send a
  signed heartbeat, retry transient failures a bounded number of times within the interval,
  feed verified answers to the LeaseTracker, report to the health service. After a round that
  failed for a transient reason (network, timeout, HTTP error, unavailable), the next comes
  within FAILED_RETRY_S; after a suspend (the lease clock moved on while time.monotonic stood
  still), at once.
- **report**: every REPORT_INTERVAL_S, report to the health service; its answer carries the lease
  renewals the watchdog sent over the probe path (docs/protocol.md#renewal), fed to the tracker
  as grants ending at (this report's send time + the remaining time the service measured).
- **reconcile**: whenever something changed, and at the exact monotonic instant the held lease
  runs out, compare "may run" (LeaseTracker.holds) with what runs, and start or stop. One
  exception, the **wake hold**: when a suspend is detected and the lease this site held before it
  lapsed during it, the stop waits for the wake heartbeat round, at most WAKE_HOLD_S (the lease
  is renewed: no stop; the round fails, the answer names another site, or time runs out: stop).
  The workload's own lease gate (GET /v1/lease) says "do not run" meanwhile (docs/protocol.md#wake-hold).

The workload is never started before the first heartbeat round has finished, never on a lease
older than its TTL (measured from the send time), never on an epoch lower than one seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from hfo_protocol.errors import ProtocolError

from hfo_site.agent_status import AgentStatus, RemainingGrant, build_status, parse_status_answer
from hfo_site.backends.base import Observation, WorkloadBackend, WorkloadError
from hfo_site.heartbeat_client import BeatKind, BeatResult, HeartbeatClient
from hfo_site.http_body import read_capped
from hfo_site.lease import LeaseTracker, Outcome, lease_clock
from hfo_site.metrics import AgentMetrics
from hfo_site.state_api import StateAccess

log = logging.getLogger("hfo_site.agent")
RECHECK_S = 1.0  # the reconcile loop's longest sleep (see reconcile_loop)
MAX_REPORT_ANSWER_BYTES = 4096  # 204, or a small list of grants; anything longer is read no further
REPORT_INTERVAL_S = 1.0  # status reports to the health service (at most: never slower than heartbeats)
FAILED_RETRY_S = 2.0  # the next heartbeat round after a failed one, at most this far (or the interval)
SUSPEND_JUMP_S = 2.0  # the lease clock ahead of time.monotonic by more than this: the host was suspended
# After a suspend that outlived the lease, how long the stop waits for the wake heartbeat round
# (docs/protocol.md#wake-hold). Long enough for the round a laptop sends on waking (Wi-Fi
# re-association takes a second or two, then one Lambda round trip, well under a second warm, up
# to about 2 s cold, and a retry); short against the slack the timing rule leaves between the
# watchdog's fence (lease_ttl_s + stop_grace_s = 60 s past the last heartbeat) and a lease that
# lapsed plus the workload's termination grace (30 + 20 s): it uses 5 of those 10 s.
WAKE_HOLD_S = 5.0


@dataclass(frozen=True)
class WakeHold:
    """A stop held back after a suspend, on the lease clock: the wake heartbeat round is the first
    one sent at or after ``since`` (when the suspend was seen); the hold ends at ``until`` (at most
    WAKE_HOLD_S after the wake) whatever happens."""

    since: float
    until: float


class StatusReporter:
    """POSTs the agent's status to the health service. Failures are counted, never fatal."""

    def __init__(self, url: str, session: aiohttp.ClientSession, metrics: AgentMetrics, timeout_s: float = 1.0):
        self.url = url
        self._session = session
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._last_error_log = 0.0

    async def report(self, status: AgentStatus) -> list[RemainingGrant] | None:
        """POST the report; the renewal grants its answer carries ([] for a 204), None on failure."""
        grants: list[RemainingGrant] | None = None
        try:
            async with self._session.post(
                self.url,
                data=build_status(status),
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await read_capped(resp.content, MAX_REPORT_ANSWER_BYTES)
                if resp.status == 204:
                    grants = []
                elif resp.status == 200:
                    grants = parse_status_answer(body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = type(exc).__name__
        except ProtocolError as exc:
            error = f"bad answer ({exc.message})"
        else:
            error = "" if grants is not None else f"http_{resp.status}"
        self._metrics.status_reports.labels("ok" if grants is not None else "error").inc()
        if grants is None and time.monotonic() - self._last_error_log > 60:
            self._last_error_log = time.monotonic()
            log.warning("cannot report to the health service", extra={"url": self.url, "error": error})
        return grants


class Agent:
    def __init__(
        self,
        site: str,
        backend: WorkloadBackend,
        client: HeartbeatClient,
        reporter: StatusReporter | None,
        metrics: AgentMetrics,
        interval_s: float,
        retries: int,
        mono: Callable[[], float] = lease_clock,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        state: StateAccess | None = None,
    ) -> None:
        self.site = site
        self.state = state  # the state handoff's credentials and reports; None: off
        self.backend = backend
        self.client = client
        self.reporter = reporter
        self.metrics = metrics
        self.interval = interval_s
        self.retries = retries
        self.tracker = LeaseTracker(site)
        self._mono = mono
        self._wall = wall
        self._rng = rng or random.Random()
        self.seq = 0
        self.observation = Observation("unknown", False, "not observed yet")
        self.intent: bool | None = None  # what this process last asked the backend for
        self.last_ok_wall: float | None = None
        self.last_ok_mono: float | None = None  # lease clock at the last accepted answer
        self.server_interval: float | None = None
        self.first_round = asyncio.Event()
        self.last_cycle_mono = mono()
        self._changed = asyncio.Event()
        self._beat_now = asyncio.Event()
        self._start_failures = 0
        self._retry_start_at = 0.0
        self._report_lock = asyncio.Lock()
        self._last_clocks = (mono(), time.monotonic())  # (lease clock, time.monotonic) for suspend detection
        self.suspends = 0
        self.wake_hold: WakeHold | None = None

    # -- timing --------------------------------------------------------------------------------
    def effective_interval(self) -> float:
        """Never slower than configured, than the watchdog asks, or than a third of the TTL."""
        interval = self.interval
        if self.server_interval is not None:
            interval = min(interval, self.server_interval)
        view = self.tracker.view
        if view is not None:
            interval = min(interval, view.ttl_s / 3)
        return interval

    # -- status --------------------------------------------------------------------------------
    def status(self) -> AgentStatus:
        now_mono = self._mono()
        view = self.tracker.view
        held = self.tracker.holds(now_mono)
        return AgentStatus(
            site=self.site,
            backend=self.backend.name,
            workload=self.observation.state,
            ready=self.observation.ready,
            lease_site=view.site if view else None,
            lease_epoch=view.epoch if view else None,
            lease_held=held,
            lease_remaining_s=self.tracker.remaining(now_mono) if held else None,
            heartbeat_age_s=None if self.last_ok_mono is None else max(0.0, now_mono - self.last_ok_mono),
            reported_at=self._wall(),
            detail=self.observation.detail,
            state=None if self.state is None or not self.state.enabled else self.state.status_doc(),
        )

    def state_credentials(self) -> tuple[int, dict[str, object]]:
        """GET /v1/state/credentials after the token check: (HTTP status, body document)."""
        if self.state is None or not self.state.enabled:
            return 409, {"error": "state_disabled", "detail": "HFO_STATE_ENABLED is false on this agent"}
        now = self._mono()
        view = self.tracker.view
        if view is None or not self.tracker.holds(now):
            return 409, {"error": "no_lease", "detail": f"{self.site} holds no fresh lease now"}
        creds = self.state.credentials_for(self.site, view.epoch)
        if creds is None:
            return 409, {
                "error": "no_credentials",
                "detail": f"no credentials for epoch {view.epoch} yet: asked for at the next heartbeat",
            }
        return 200, creds.to_doc()

    def lease_document(self) -> dict[str, object]:
        """GET /v1/lease (docs/protocol.md#lease-endpoint), on the lease clock at this instant."""
        now = self._mono()
        holds = self.tracker.holds(now)
        return {
            "site": self.site,
            "holds": holds,
            "epoch": self.tracker.highest_epoch,
            "fresh_for_s": round(self.tracker.remaining(now), 3) if holds else 0.0,
            "workload_should_run": holds,
        }

    def _update_gauges(self) -> None:
        now = self._mono()
        self.metrics.lease_epoch.set(self.tracker.highest_epoch)
        self.metrics.lease_held.set(1 if self.tracker.holds(now) else 0)
        self.metrics.lease_remaining.set(self.tracker.remaining(now))
        self.metrics.set_workload_state(self.observation.state)

    async def _report(self) -> None:
        self._update_gauges()
        if self.reporter is None:
            return
        async with self._report_lock:  # one report at a time: each grant is timed by its own send
            sent_at = self._mono()  # before the report leaves: the grant's end is counted from here
            grants = await self.reporter.report(self.status())
        for grant in grants or ():
            self.apply_grant(grant, sent_at)

    def apply_grant(self, grant: RemainingGrant, sent_at_mono: float) -> None:
        """A renewal the health service passed on: hold until sent_at_mono + remaining_s."""
        before = self.tracker.expires_at()
        outcome = self.tracker.grant(grant.site, grant.epoch, sent_at_mono + grant.remaining_s, grant.ttl_s)
        self.metrics.renewal_grants.labels(outcome.value).inc()
        if outcome is Outcome.CONFLICT:
            log.error(
                "a renewal names a site the lease answer for its epoch did not: holding no lease until a higher epoch",
                extra={"epoch": grant.epoch, "site": grant.site},
            )
        if self.tracker.expires_at() != before:
            log.info(
                "lease renewed over the probe path",
                extra={"epoch": grant.epoch, "remaining_s": round(self.tracker.remaining(self._mono()), 3)},
            )
            self._changed.set()

    def check_suspend(self) -> bool:
        """True (once) when the lease clock moved on by SUSPEND_JUMP_S more than time.monotonic since
        the last call: the host was suspended. A heartbeat round is asked for at once.

        When the workload runs (by this agent's intent) under a lease of this site that was still
        held at the last call and has lapsed since, i.e. during the suspend, less than one TTL ago,
        the stop is held for the wake heartbeat round, at most WAKE_HOLD_S (reconcile_once,
        _end_wake_round). Once per suspend: a new suspend ends any hold still open."""
        lease_now, mono_now = self._mono(), time.monotonic()
        lease_then, mono_then = self._last_clocks
        self._last_clocks = (lease_now, mono_now)
        if (lease_now - lease_then) - (mono_now - mono_then) <= SUSPEND_JUMP_S:
            return False
        self.suspends += 1
        log.warning(
            "the host was suspended: heartbeating at once",
            extra={"suspended_s": round((lease_now - lease_then) - (mono_now - mono_then), 3)},
        )
        if self.wake_hold is not None:
            self._end_wake_hold("suspended", "suspended again during the wake hold")
        ends, view = self.tracker.expires_at(), self.tracker.view
        # Lapsed during this suspend (still held at the last call), and less than one TTL ago: a
        # suspend that outlived its lease by more than that (the watchdog may have moved the lease
        # by then, docs/protocol.md#wake-hold) is fenced at once, as an expiry while awake is.
        if (
            self.intent is True
            and ends is not None
            and view is not None
            and lease_then < ends <= lease_now < ends + view.ttl_s
        ):
            # The host woke at lease_then + the time suspended at the earliest: the hold ends
            # WAKE_HOLD_S after that, never later than WAKE_HOLD_S after the real wake.
            woke_at = lease_now - (mono_now - mono_then)
            self.wake_hold = WakeHold(since=lease_now, until=woke_at + WAKE_HOLD_S)
            log.warning(
                f"woke with a lapsed lease: waiting up to {WAKE_HOLD_S:g} s for the wake heartbeat before stopping",
                extra={"epoch": view.epoch, "lapsed_s": round(lease_now - ends, 3)},
            )
        self._beat_now.set()
        self._changed.set()
        return True

    def _end_wake_hold(self, outcome: str, why: str) -> None:
        """Close the wake hold, counted by outcome: renewed (no stop), failed, elsewhere, ran_out,
        suspended (the last four stop the workload at once)."""
        self.wake_hold = None
        self.metrics.wake_holds.labels(outcome).inc()
        if outcome == "renewed":
            log.info("wake hold over: the lease is held again, the workload was not stopped")
        else:
            log.warning(f"wake hold over: {why}; stopping the workload")
        self._changed.set()

    def _end_wake_round(self, result: BeatResult) -> None:
        """hfo_site's heartbeat loop, after each round: the wake round ends the hold unless it left
        the lease held (then reconcile_once ends it as renewed, without a stop)."""
        hold = self.wake_hold
        if hold is None or result.sent_at_mono < hold.since or self.tracker.holds(self._mono()):
            return
        if self.tracker.expires_at() is None:
            self._end_wake_hold("elsewhere", "the lease names another site")
        elif result.kind is BeatKind.ACCEPTED:
            self._end_wake_hold("failed", "the wake heartbeat renewed nothing")
        else:
            self._end_wake_hold("failed", f"the wake heartbeat failed ({result.kind.value})")

    def report_interval(self) -> float:
        return min(REPORT_INTERVAL_S, self.effective_interval())

    async def report_loop(self, stop: asyncio.Event) -> None:
        """Report every REPORT_INTERVAL_S: the health service's verdict stays fresh between
        heartbeats, and renewal grants reach the tracker within a second."""
        await _wait_any((stop, self.first_round), None)
        while not stop.is_set():
            await _wait_any((stop,), self.report_interval())
            if stop.is_set():
                break
            self.check_suspend()
            await self._report()

    async def _observe(self) -> None:
        self.observation = await self.backend.observe()

    # -- heartbeats ----------------------------------------------------------------------------
    def _record(self, result: BeatResult) -> None:
        self.metrics.heartbeats.labels(
            result.kind.value if not result.code else f"{result.kind.value}:{result.code}"
        ).inc()
        if result.kind is not BeatKind.ACCEPTED or result.answer is None:
            log.warning(
                "heartbeat failed",
                extra={
                    "kind": result.kind.value,
                    "code": result.code,
                    "detail": result.detail,
                    "http": result.http_status,
                },
            )
            return
        answer = result.answer
        self.metrics.heartbeat_seconds.observe(max(0.0, self._mono() - result.sent_at_mono))
        outcome = self.tracker.observe(answer, result.sent_at_mono)
        if outcome is Outcome.LOWER_EPOCH:
            self.metrics.lower_epochs.inc()
            log.warning(
                "lease answer ignored: epoch went backwards",
                extra={"epoch": answer.epoch, "highest_epoch": self.tracker.highest_epoch},
            )
            return
        if outcome is Outcome.CONFLICT:
            log.error(
                "two different lease sites for one epoch: holding no lease until a higher epoch",
                extra={"epoch": answer.epoch, "site": answer.site},
            )
        if self.state is not None:
            self.state.forget_older_than(self.tracker.highest_epoch)
            if answer.state is not None and outcome is not Outcome.CONFLICT and answer.site == self.site:
                self.state.take(answer.state)
        self.last_ok_wall = self._wall()
        self.last_ok_mono = self._mono()
        self.metrics.last_success.set(self.last_ok_wall)
        self.metrics.set_lease_site(answer.site)
        self.server_interval = float(answer.heartbeat_interval_s)
        self._changed.set()

    async def beat(self, stop: asyncio.Event) -> BeatResult:
        """One heartbeat, retried on transient failures within a fraction of the interval."""
        result: BeatResult | None = None
        for attempt in range(1 + self.retries):
            self.seq += 1
            # Only with state handoff on: the state members (an agent without it sends none).
            extra = self.state.heartbeat_fields(self.tracker.highest_epoch) if self.state and self.state.enabled else {}
            result = await self.client.send(
                site=self.site,
                seq=self.seq,
                workload=self.observation.state,
                epoch_seen=self.tracker.highest_epoch,
                ready=self.observation.ready,
                **extra,
            )
            self._record(result)
            if result.kind is BeatKind.ACCEPTED or not result.transient or attempt == self.retries:
                break
            pause = min(self.effective_interval() / 4, 0.25 * 2**attempt) * self._rng.uniform(0.5, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                break
        assert result is not None
        return result

    def clock(self) -> float:
        """The agent's lease clock (keeps counting through a suspend)."""
        return self._mono()

    async def heartbeat_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.check_suspend()  # so that a round sent after a suspend counts as its wake round
            started = self._mono()
            self._beat_now.clear()  # a start or stop from now on asks for the next round at once
            await self._observe()
            result = await self.beat(stop)
            self._end_wake_round(result)
            self.first_round.set()
            self._changed.set()
            await self._report()
            self.last_cycle_mono = self._mono()
            interval = self.effective_interval()
            if result.kind is not BeatKind.ACCEPTED and result.transient:
                # A path that failed may come back any moment: look again soon. A refusal (bad
                # signature, stale clock) will not mend itself and keeps the interval.
                interval = min(interval, FAILED_RETRY_S)
            wait = interval * self._rng.uniform(0.9, 1.0) - (self._mono() - started)
            await _wait_any((stop, self._beat_now), max(0.0, wait))

    # -- the workload --------------------------------------------------------------------------
    async def reconcile_once(self) -> None:
        now = self._mono()
        may_run = self.tracker.holds(now)
        state = self.observation.state
        if self.wake_hold is not None:
            if may_run:
                self._end_wake_hold("renewed", "")
            elif self.tracker.expires_at() is None:  # a lease elsewhere (or a distrusted epoch): never held up
                self._end_wake_hold("elsewhere", "the lease names another site")
            elif now >= self.wake_hold.until:
                self._end_wake_hold("ran_out", f"no wake heartbeat renewed the lease within {WAKE_HOLD_S:g} s")
            else:
                return  # held: neither start nor stop until the wake round's result or the hold's end
        if may_run:
            if self.intent is True and state not in ("stopped", "stopping"):
                return
            if self._start_failures and now < self._retry_start_at:
                return  # a failing start backs off; a stop never waits
            await self._act("start")
        else:
            if self.intent is False and state in ("stopped", "stopping"):
                return
            view = self.tracker.view
            if self.intent is True and view is not None and view.site == self.site:
                self.metrics.self_fences.inc()
                log.warning(
                    "lease expired without a fresh answer: self-fencing",
                    extra={"epoch": view.epoch, "ttl_s": view.ttl_s},
                )
            await self._act("stop")

    async def _act(self, action: str) -> None:
        view = self.tracker.view
        log.info(
            f"workload {action}",
            extra={"lease_site": view.site if view else None, "epoch": view.epoch if view else None},
        )
        try:
            if action == "start":
                await self.backend.start()
                self.intent = True
            else:
                self.intent = False  # even if the stop fails: the next round tries again
                await self.backend.stop()
        except WorkloadError as exc:
            if action == "start":
                self._start_failures += 1
                backoff = min(self.effective_interval() * 2 ** (self._start_failures - 1), 60.0)
                self._retry_start_at = self._mono() + backoff
            self.metrics.workload_actions.labels(action, "error").inc()
            log.error(f"workload {action} failed", extra={"error": str(exc)})
        else:
            if action == "start":
                self._start_failures = 0
            self.metrics.workload_actions.labels(action, "ok").inc()
        await self._observe()
        await self._report()
        self._beat_now.set()  # tell the watchdog at once (a handover waits for "stopped")

    async def reconcile_loop(self, stop: asyncio.Event) -> None:
        await _wait_any((stop, self.first_round), None)
        while not stop.is_set():
            self._changed.clear()
            self.check_suspend()
            await self.reconcile_once()
            # Re-check at least every second: after a suspend the event loop's timers (on
            # time.monotonic, which stood still) fire late, but the lease clock moved on.
            timeout = min(self.effective_interval(), RECHECK_S)
            deadline = self.tracker.expires_at()
            now = self._mono()
            if deadline is not None and deadline > now:
                timeout = min(timeout, deadline - now + 0.001)  # wake exactly when the lease runs out
            if self.wake_hold is not None:
                timeout = min(timeout, max(0.0, self.wake_hold.until - now) + 0.001)  # and when the hold ends
            await _wait_any((stop, self._changed), timeout)

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, fence_on_exit: bool, exit_timeout_s: float) -> None:
        tasks = [
            asyncio.create_task(self.heartbeat_loop(stop), name="heartbeat"),
            asyncio.create_task(self.reconcile_loop(stop), name="reconcile"),
            asyncio.create_task(self.report_loop(stop), name="report"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if fence_on_exit or self.backend.name == "exec":
                log.info("stopping the workload before exit")
                try:
                    await asyncio.wait_for(self.backend.stop(), exit_timeout_s)
                except (WorkloadError, TimeoutError) as exc:
                    log.error("could not stop the workload before exit", extra={"error": str(exc)})
                self.intent = False
                with contextlib.suppress(Exception):
                    await self._observe()
                    await asyncio.wait_for(self._report(), 2.0)
            await self.backend.close()


async def _wait_any(events: tuple[asyncio.Event, ...], timeout: float | None) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
