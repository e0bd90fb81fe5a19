"""The two Lambda entry points: `tick` (EventBridge schedule) and `heartbeat` (Function URL).

Thin on purpose: parse, log, delegate to tick.run_tick / heartbeat.handle. Importing this module
loads only the Powertools Logger and Metrics; settings, secrets, boto3 clients and adapters (the
hfo_watchdog.runtime.Runtime) are built on the first invocation of a container (its cold start)
and reused while it stays warm.

`entry_points(container)` makes the same pair of handlers on another container: the drill, the
benchmarks and the tests run the real handlers on a Runtime they build themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hfo_watchdog.observability import logger, publishing_metrics, traced
from hfo_watchdog.runtime import Container

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

Handler = Callable[[Mapping[str, Any], "LambdaContext"], dict[str, Any]]


@dataclass(frozen=True)
class EntryPoints:
    tick: Handler
    heartbeat: Handler


def entry_points(container: Container) -> EntryPoints:
    """The tick and heartbeat handlers, running on `container`'s Runtime."""

    @publishing_metrics
    @logger.inject_lambda_context(clear_state=True)
    @traced
    def tick(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """EventBridge Scheduler target: one tick. Returns the tick's report (visible in the console)."""
        from hfo_watchdog.store import StoreError
        from hfo_watchdog.tick import run_tick

        rt = container.runtime()
        logger.append_keys(event_source=str(event.get("source") or event.get("detail-type") or "schedule"))
        try:
            return run_tick(rt.tick_deps()).to_dict()
        except StoreError as exc:
            # Nothing was decided or done; the invocation fails (Lambda's Errors metric counts it)
            # and the next tick starts over from the stored state.
            logger.error("store_unavailable", extra={"why": str(exc)})
            raise

    @logger.inject_lambda_context(clear_state=True)
    @traced
    def heartbeat(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Function URL target: one heartbeat in, one lease answer (or a refusal) out."""
        from hfo_watchdog.config import SecretError
        from hfo_watchdog.heartbeat import handle, refusal

        try:
            deps = container.runtime().heartbeat_deps()
        except SecretError as exc:
            # Without the keyring no heartbeat can be checked: refuse like any unavailable
            # dependency, so the agent retries (and keeps fencing by its lease TTL meanwhile).
            logger.error("keyring_unavailable", extra={"why": str(exc)})
            return refusal("unavailable", "the watchdog cannot read its keyring now; retry")
        return handle(event, deps)

    return EntryPoints(tick, heartbeat)


# What Lambda calls (terraform/modules/watchdog: hfo_watchdog.handlers.tick / .heartbeat): the
# container's Runtime, configured from the function's environment.
_LAMBDA = entry_points(Container())
tick = _LAMBDA.tick
heartbeat = _LAMBDA.heartbeat
