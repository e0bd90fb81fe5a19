"""The ``kubernetes`` backend: scale named Deployments/StatefulSets between 0 and their desired size.

- Scaling goes through the scale subresource (``deployments/scale``, ``statefulsets/scale``).
- Before scaling down, the current size is remembered in the annotation
  ``hfo.dev/desired-replicas`` on the object itself, so a start restores it, whoever set it.
- Every write carries the resourceVersion it read; a 409 Conflict re-reads and retries (at most
  ``conflict_retries`` times). 404 and 403 become errors that say what to fix.
- Stopping returns once the pods are gone: ``status.replicas`` is 0 and, where the cluster reports
  it, ``status.terminatingReplicas`` is 0 too; where it does not, the stop grace is waited out
  after the scale-down (a terminating pod may still be running its shutdown).

The official client is blocking: every call runs in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from hfo_site.backends.base import ConflictError, Observation, WorkloadError
from hfo_site.config import DESIRED_REPLICAS_ANNOTATION, WorkloadRef
from hfo_site.k8s import WorkloadApi, WorkloadView

log = logging.getLogger("hfo_site.kubernetes")

MAX_DESIRED = 1000


class KubernetesBackend:
    name = "kubernetes"

    def __init__(
        self,
        api: WorkloadApi,
        workloads: Sequence[WorkloadRef],
        grace_s: float,
        poll_s: float = 0.5,
        conflict_retries: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._workloads = tuple(workloads)
        self._grace = grace_s
        self._poll = poll_s
        self._retries = conflict_retries
        self._clock = clock
        self._want: bool | None = None  # None: this process has not acted yet
        self._scaled_down_at: float | None = None
        self._lock = asyncio.Lock()
        self._api_lock = asyncio.Lock()
        self._sizes: dict[WorkloadRef, int] = {}  # set_size: sizes decided by the agent itself

    def set_size(self, ref: WorkloadRef, replicas: int | None) -> None:
        """The size a start scales ``ref`` to, decided by the agent (shard-aware scaling), or None to
        follow the annotation again. Such a workload's size is never recorded in the annotation."""
        if replicas is None:
            self._sizes.pop(ref, None)
        elif not 1 <= replicas <= MAX_DESIRED:
            raise WorkloadError(f"{ref}: a size of {replicas} is outside 1-{MAX_DESIRED}")
        else:
            self._sizes[ref] = replicas

    async def _in_thread(self, fn: Callable[[], object]) -> object:
        async with self._api_lock:
            return await asyncio.to_thread(fn)

    # -- reads ---------------------------------------------------------------------------------
    def _read_all(self) -> list[WorkloadView]:
        return [self._api.read(ref) for ref in self._workloads]

    def _state(self, views: Sequence[WorkloadView]) -> tuple[str, str]:
        summary = ", ".join(f"{v.ref} {v.ready_replicas}/{v.spec_replicas} ready" for v in views)
        if all(v.spec_replicas == 0 for v in views):
            left = sum(v.status_replicas + (v.terminating_replicas or 0) for v in views)
            if left:
                return "stopping", f"{left} pods still present; {summary}"
            unreported = any(v.terminating_replicas is None for v in views)
            if unreported and self._scaled_down_at is not None and self._clock() - self._scaled_down_at < self._grace:
                return "stopping", f"waiting out the stop grace for terminating pods; {summary}"
            return "stopped", summary
        if all(v.spec_replicas > 0 and v.ready_replicas >= v.spec_replicas for v in views):
            return "running", summary
        return ("stopping" if self._want is False else "starting"), summary

    async def observe(self) -> Observation:
        try:
            views = await self._in_thread(self._read_all)
        except WorkloadError as exc:
            return Observation("unknown", False, str(exc))
        state, detail = self._state(views)  # type: ignore[arg-type]
        return Observation(state, True, detail)

    # -- writes --------------------------------------------------------------------------------
    def replicas_now(self, ref: WorkloadRef) -> int:
        """spec.replicas of ``ref`` (scale subresource), read now. Blocking: call it in a thread."""
        return self._api.read_scale(ref)[0]

    def _desired(self, view: WorkloadView) -> int:
        if view.ref in self._sizes:
            return self._sizes[view.ref]
        raw = view.annotations.get(DESIRED_REPLICAS_ANNOTATION)
        if raw is not None:
            try:
                number = int(raw)
            except ValueError:
                number = 0
            if not 1 <= number <= MAX_DESIRED:
                raise WorkloadError(
                    f"{view.ref}: annotation {DESIRED_REPLICAS_ANNOTATION}={raw!r} must be an integer "
                    f"between 1 and {MAX_DESIRED}"
                )
            return number
        if view.spec_replicas > 0:
            return view.spec_replicas
        log.warning(
            "no desired size recorded; scaling to 1",
            extra={"workload": str(view.ref), "annotation": DESIRED_REPLICAS_ANNOTATION},
        )
        return 1

    def _scale(self, ref: WorkloadRef, replicas: int) -> None:
        for _attempt in range(self._retries):
            current, version = self._api.read_scale(ref)
            if current == replicas:
                return
            try:
                self._api.patch_scale(ref, replicas, version)
            except ConflictError:
                log.info("scale conflicted with another writer; re-reading", extra={"workload": str(ref)})
                continue
            log.info("scaled", extra={"workload": str(ref), "from": current, "to": replicas})
            return
        raise WorkloadError(f"{ref}: scaling to {replicas} conflicted {self._retries} times in a row (409)", 409)

    def _remember(self, ref: WorkloadRef) -> None:
        if ref in self._sizes:  # the agent decides this size; Git's annotation is left alone
            return
        for _attempt in range(self._retries):
            view = self._api.read(ref)
            if view.spec_replicas == 0 or view.annotations.get(DESIRED_REPLICAS_ANNOTATION) == str(view.spec_replicas):
                return
            try:
                self._api.patch_annotation(
                    ref, DESIRED_REPLICAS_ANNOTATION, str(view.spec_replicas), view.resource_version
                )
            except ConflictError:
                continue
            return
        raise WorkloadError(f"{ref}: recording the desired size conflicted {self._retries} times in a row (409)", 409)

    def _start_sync(self) -> None:
        for ref in self._workloads:
            self._scale(ref, self._desired(self._api.read(ref)))

    def _stop_sync(self) -> bool:
        """Scale everything to 0; True if anything was scaled down."""
        changed = False
        for ref in self._workloads:
            self._remember(ref)
            current, _ = self._api.read_scale(ref)
            if current:
                self._scale(ref, 0)
                changed = True
        return changed

    async def start(self) -> None:
        async with self._lock:
            self._want = True
            self._scaled_down_at = None
            await self._in_thread(self._start_sync)

    async def stop(self) -> None:
        async with self._lock:
            self._want = False
            changed = await self._in_thread(self._stop_sync)
            if changed:
                self._scaled_down_at = self._clock()
            deadline = self._clock() + self._grace + 2 * self._poll
            while True:
                observation = await self.observe()
                if observation.state == "stopped":
                    return
                if self._clock() >= deadline:
                    log.warning("pods still present after the stop grace", extra={"detail": observation.detail})
                    return
                await asyncio.sleep(self._poll)

    async def close(self) -> None:
        return None
