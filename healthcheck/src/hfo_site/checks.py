"""Background checks of the workload, run on a fixed interval into a cache.

Requests never trigger a check: they read ``CheckRunner.results``. So the number of calls to the
bot's readiness endpoint and to the Kubernetes API is set by HFO_CHECK_INTERVAL_S alone,
whatever the request rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import aiohttp

from hfo_site.backends.base import WorkloadError
from hfo_site.config import WorkloadRef
from hfo_site.k8s import WorkloadApi
from hfo_site.metrics import HealthMetrics
from hfo_site.verdict import FAIL, PASS, CheckResult

log = logging.getLogger("hfo_site.checks")


class Check(Protocol):
    name: str  # for metrics and logs
    keys: tuple[str, ...]  # the IETF check names this check reports

    async def run(self) -> dict[str, CheckResult]: ...


class ReadyUrlCheck:
    """GET the bot's readiness endpoint; 2xx passes. Redirects are not followed."""

    def __init__(self, url: str, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.url = url
        self.name = "workload_ready"
        self.keys = ("workload:ready",)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def run(self) -> dict[str, CheckResult]:
        now = time.time()
        try:
            async with self._session.get(self.url, allow_redirects=False, timeout=self._timeout) as resp:
                await resp.content.read(1024)
                ok = 200 <= resp.status < 300
                return {
                    "workload:ready": CheckResult(
                        PASS if ok else FAIL, now, resp.status, "" if ok else f"GET {self.url} answered {resp.status}"
                    )
                }
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return {"workload:ready": CheckResult(FAIL, now, None, f"GET {self.url} failed: {type(exc).__name__}")}


class KubernetesReplicasCheck:
    """Each named workload has all of its desired replicas ready (and at least one)."""

    def __init__(self, api: WorkloadApi, workloads: Sequence[WorkloadRef]) -> None:
        self._api = api
        self._workloads = tuple(workloads)
        self.name = "kubernetes_replicas"
        self.keys = tuple(f"{ref}:readyReplicas" for ref in self._workloads)

    def _run_sync(self) -> dict[str, CheckResult]:
        out: dict[str, CheckResult] = {}
        for ref in self._workloads:
            now = time.time()
            key = f"{ref}:readyReplicas"
            try:
                view = self._api.read(ref)
            except WorkloadError as exc:
                out[key] = CheckResult(FAIL, now, None, str(exc))
                continue
            ok = view.spec_replicas > 0 and view.ready_replicas >= view.spec_replicas
            out[key] = CheckResult(
                PASS if ok else FAIL,
                now,
                view.ready_replicas,
                "" if ok else f"{view.ready_replicas} of {view.spec_replicas} replicas ready",
            )
        return out

    async def run(self) -> dict[str, CheckResult]:
        return await asyncio.to_thread(self._run_sync)


class CheckRunner:
    def __init__(
        self,
        checks: Sequence[Check],
        interval_s: float,
        timeout_s: float,
        metrics: HealthMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = tuple(checks)
        self._interval = interval_s
        self._timeout = timeout_s
        self._metrics = metrics
        self._clock = clock
        self.results: dict[str, CheckResult] | None = None  # None until the first round finished
        self.rounds = 0
        self._running: set[int] = set()
        self.before_round: Callable[[], None] | None = None

    async def _one(self, index: int, check: Check) -> dict[str, CheckResult]:
        name = check.name
        if index in self._running:
            # A worker thread from the previous round is still blocked; never stack calls up.
            now = time.time()
            return {key: CheckResult(FAIL, now, None, "previous check still running") for key in check.keys}
        self._running.add(index)
        started = self._clock()
        task = asyncio.ensure_future(check.run())
        task.add_done_callback(lambda t: self._finished(index, t))
        try:
            out = await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError:
            now = time.time()
            out = {key: CheckResult(FAIL, now, None, f"timed out after {self._timeout:g}s") for key in check.keys}
        except Exception as exc:
            log.exception("check crashed", extra={"check": name})
            now = time.time()
            out = {key: CheckResult(FAIL, now, None, f"check crashed: {type(exc).__name__}") for key in check.keys}
        self._metrics.check_seconds.labels(name).observe(self._clock() - started)
        for key, result in out.items():
            self._metrics.checks.labels(key, result.status).inc()
        return out

    def _finished(self, index: int, task: asyncio.Future[dict[str, CheckResult]]) -> None:
        self._running.discard(index)
        if not task.cancelled():
            task.exception()  # retrieved, so a check that failed after its timeout is not reported as lost

    async def run_round(self) -> None:
        if self.before_round is not None:
            self.before_round()
        parts = await asyncio.gather(*(self._one(i, c) for i, c in enumerate(self._checks)))
        merged: dict[str, CheckResult] = {}
        for part in parts:
            merged.update(part)
        self.results = merged
        self.rounds += 1
        self._metrics.check_rounds.inc()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds at a fixed rate (no drift) until ``stop`` is set."""
        next_at = self._clock()
        while not stop.is_set():
            await self.run_round()
            next_at += self._interval
            now = self._clock()
            if next_at < now:  # a round overran: skip the missed slots, never burst to catch up
                next_at = now + self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - now)
