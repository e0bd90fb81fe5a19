"""The kubernetes backend with shard-aware scaling (issue 14; docs/kubernetes.md#shard-aware-scaling).

It wraps ``KubernetesBackend``: stopping is unchanged (0 replicas), but a start first writes the shard
plan (``SHARD_COUNT``, ``SHARDS_PER_POD``) into a ConfigMap the agent owns and the bot pods read at
container start, then scales the sharded StatefulSet to ``ceil(shards / per_pod)``. A start never
waits for Discord: it takes the last answer seen, else the plan the ConfigMap records (the last one
applied, so it survives an agent restart), always within the configured bounds.

``run`` asks Discord on its schedule (hfo_site.shards.Recommender) on both sites, so a standby has a
fresh count at failover. When the decision changes while this site runs the bot under a lease, the
agent reshards: ConfigMap first (a refused write leaves the bot running as it was), then a full stop
and a start at the new size. Every shard identifies again with the new count; a rolling restart would
mix two shard counts (guilds routed to two shards, answered twice) for the length of the roll, a stop
and start costs a gap of seconds instead, as a failback does. Only this agent writes the replica count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from hfo_site.backends.base import ConflictError, Observation, WorkloadError
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.config import ShardSettings
from hfo_site.k8s import ConfigMapApi
from hfo_site.metrics import AgentMetrics
from hfo_site.shards import Decision, Pending, Recommender, ShardPlan, ShardPolicy, decide, plan_from_env

log = logging.getLogger("hfo_site.shards")

CONFLICT_RETRIES = 5
# A process's first start waits this long at most for the first answer of the refresh loop (it runs from
# the agent's start, beside the first heartbeat round), so that it does not start at the ConfigMap's old
# count and reshard a second later. Never longer: a failover must not wait for Discord.
FIRST_ANSWER_WAIT_S = 2.0
MAX_SLEEP_S = 60.0  # the refresh loop looks at least this often (a lease gained, a stop requested)


def policy_from(settings: ShardSettings) -> ShardPolicy:
    return ShardPolicy(
        per_pod=settings.per_pod,
        min_replicas=settings.min_replicas,
        max_replicas=settings.max_replicas,
        grow_after_s=settings.grow_after_s,
        shrink_after_s=settings.shrink_after_s,
    )


class ShardedBackend:
    name = "kubernetes"

    def __init__(
        self,
        inner: KubernetesBackend,
        configmap: ConfigMapApi,
        settings: ShardSettings,
        recommender: Recommender,
        clock: Callable[[], float] = time.monotonic,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.configmap = configmap
        self.workload = settings.workload
        self.policy = policy_from(settings)
        self.recommender = recommender
        self._clock = clock
        self.plan: ShardPlan | None = None  # the plan the running (or last started) bot was given
        self.pending: Pending | None = None
        self.reshards = 0
        self.last_reason = ""
        self._want: bool | None = None
        self._lock = asyncio.Lock()
        self._capped_warned: int | None = None
        self._may_run: Callable[[], bool] | None = None  # the agent's lease check, once run() follows it
        self.first_poll = asyncio.Event()  # the refresh loop has asked Discord once (answered or not)

    # -- the ConfigMap -------------------------------------------------------------------------
    def _read_plan_sync(self) -> ShardPlan | None:
        data, _ = self.configmap.read()
        return plan_from_env(data, self.policy)

    def _write_plan_sync(self, plan: ShardPlan) -> bool:
        """Make the ConfigMap say ``plan``; True when it was written (False: it already did)."""
        wanted = plan.env()
        for _attempt in range(CONFLICT_RETRIES):
            data, version = self.configmap.read()
            if all(data.get(key) == value for key, value in wanted.items()):
                return False
            try:
                self.configmap.patch_data(wanted, version)
            except ConflictError:
                continue
            log.info("shard settings written", extra={"configmap": self.configmap.name, **wanted})
            return True
        raise WorkloadError(
            f"ConfigMap {self.configmap.name!r}: writing the shard settings conflicted {CONFLICT_RETRIES} times", 409
        )

    # -- the backend interface -----------------------------------------------------------------
    async def _plan_for_start(self) -> ShardPlan:
        """The freshest count, without asking Discord now: a failover must not wait for it (only the
        first start of a process waits, at most FIRST_ANSWER_WAIT_S, for the loop's first answer)."""
        if self.recommender.last_good is None and not self.first_poll.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.first_poll.wait(), FIRST_ANSWER_WAIT_S)
        answer = self.recommender.last_good
        current = self.plan
        if current is None and answer is None:
            current = await asyncio.to_thread(self._read_plan_sync)
        # Not running: no reshard to pay for, so no hysteresis (a start identifies every shard anyway).
        decision = decide(self.policy, None if answer else current, None, answer, self._clock(), running=False)
        assert decision.plan is not None
        return decision.plan

    async def _adopted_plan(self) -> ShardPlan | None:
        """When this process starts a bot that already runs (an agent restarted after a crash, without its
        fence on exit), the plan its pods run, which the ConfigMap records: scaling them to a new count
        would mix two totals. A different count then comes as a reshard, with its hysteresis and budget."""
        if self.plan is not None:
            return None
        if await asyncio.to_thread(self.inner.replicas_now, self.workload) == 0:
            return None
        adopted = await asyncio.to_thread(self._read_plan_sync)
        if adopted is not None:
            log.info("the bot already runs: keeping its shard count", extra={"plan": adopted.describe()})
        return adopted

    def follow_lease(self, may_run: Callable[[], bool]) -> None:
        """Re-check the lease after waiting for the lock: a start requested while a reshard held it (up to
        the stop grace) must not scale up once the lease has run out meanwhile."""
        self._may_run = may_run

    async def start(self) -> None:
        async with self._lock:
            if self._may_run is not None and not self._may_run():
                log.warning("start not done: the lease ran out while a reshard held the workload")
                return
            self._want = True
            plan = await self._adopted_plan() or await self._plan_for_start()
            await asyncio.to_thread(self._write_plan_sync, plan)
            self.inner.set_size(self.workload, plan.replicas)
            self.plan, self.pending = plan, None
            self._plan_gauges()
            self._warn_if_budget_short(plan)
            await self.inner.start()

    async def stop(self) -> None:
        async with self._lock:
            self._want = False
            await self.inner.stop()

    async def observe(self) -> Observation:
        observation = await self.inner.observe()
        if self.plan is None:
            return observation
        return Observation(observation.state, observation.ready, f"{observation.detail}; {self.plan.describe()}")

    async def close(self) -> None:
        await self.inner.close()

    # -- the refresh loop ----------------------------------------------------------------------
    async def refresh_once(self, may_run: Callable[[], bool]) -> Decision:
        """Ask Discord if due, decide, and reshard a bot this site runs under its lease."""
        asked = self.recommender.requests
        answer = await self.recommender.poll()
        self.first_poll.set()
        if self.recommender.requests != asked:
            self._poll_metrics()
            self._warn_if_capped()
        async with self._lock:
            running = self._want is True and may_run()
            decision = decide(self.policy, self.plan, self.pending, answer, self._clock(), running)
            self.pending = decision.pending
            if decision.reason != self.last_reason:
                self.last_reason = decision.reason
                log.info(
                    "shard decision",
                    extra={
                        "reason": decision.reason,
                        "recommended": answer.shards if answer else None,
                        "plan": decision.plan.describe() if decision.plan else None,
                        "running": running,
                    },
                )
            if not decision.changed or decision.plan is None:
                return decision
            if not running:  # the next start takes the freshest count; nothing runs to reshard
                self.pending = None
                return decision
            try:
                await self._reshard(decision.plan, may_run)
            except WorkloadError:
                if self.metrics is not None:
                    self.metrics.reshards.labels("error").inc()
                raise
            return decision

    def _warn_if_budget_short(self, plan: ShardPlan) -> None:
        """A start is never held back (the bot must run), but one that needs more session starts than Discord
        said are left risks what Discord does at the limit (all sessions ended, the token reset): say so."""
        answer = self.recommender.last_good
        if answer is not None and answer.session_start_limit.remaining < plan.shard_count:
            limit = answer.session_start_limit
            log.error(
                "starting more shards than Discord's session start budget has left; at the limit Discord ends "
                "every session and resets the token",
                extra={"shards": plan.shard_count, "remaining": limit.remaining, "reset_in_s": limit.reset_after_s},
            )

    def _warn_if_capped(self) -> None:
        """Fewer shards than Discord recommends works only while no shard holds 2,500 guilds (then Discord
        refuses the IDENTIFY with close code 4011): say so once per recommendation."""
        answer = self.recommender.last_good
        if answer is None or self.recommender.last_error is not None:
            return
        allowed = self.policy.bound(answer.shards)
        if allowed < answer.shards and answer.shards != self._capped_warned:
            self._capped_warned = answer.shards
            log.warning(
                "Discord recommends more shards than HFO_SHARDS_MAX_REPLICAS x HFO_SHARDS_PER_POD allow; running fewer",
                extra={"recommended": answer.shards, "running": allowed},
            )

    def _poll_metrics(self) -> None:
        if self.metrics is None:
            return
        error = self.recommender.last_error
        self.metrics.discord_requests.labels(error.kind if error is not None else "ok").inc()
        answer = self.recommender.last_good
        if error is None and answer is not None:
            self.metrics.shards_recommended.set(answer.shards)
            self.metrics.session_starts_remaining.set(answer.session_start_limit.remaining)

    def _plan_gauges(self) -> None:
        if self.metrics is not None and self.plan is not None:
            self.metrics.shard_count.set(self.plan.shard_count)
            self.metrics.shard_pods.set(self.plan.replicas)

    async def _reshard(self, plan: ShardPlan, may_run: Callable[[], bool]) -> None:
        before = self.plan
        log.warning(
            "resharding: every shard identifies again with the new count (a stop and a start)",
            extra={"from": before.describe() if before else None, "to": plan.describe()},
        )
        # ConfigMap first: if it cannot be written, the bot keeps running as it was.
        await asyncio.to_thread(self._write_plan_sync, plan)
        self.plan = plan
        self._plan_gauges()
        await self.inner.stop()
        self.inner.set_size(self.workload, plan.replicas)
        if not may_run():  # the lease went away meanwhile: stay stopped, the agent's next stop agrees
            self._want = False
            log.warning("lease lost during the reshard: the bot stays stopped")
            return
        await self.inner.start()
        self.reshards += 1
        if self.metrics is not None:
            self.metrics.reshards.labels("ok").inc()

    async def run(self, stop: asyncio.Event, may_run: Callable[[], bool]) -> None:
        """Until ``stop``: refresh when due. Errors are logged; the loop never ends on them."""
        self.follow_lease(may_run)
        while not stop.is_set():
            try:
                await self.refresh_once(may_run)
            except WorkloadError as exc:
                log.error("reshard failed", extra={"error": str(exc)})
            except Exception:  # a bug here must not end shard refreshes silently: logged, retried next round
                log.exception("shard refresh failed unexpectedly")
            wait = min(MAX_SLEEP_S, max(0.05, self.recommender.next_at - self._clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
