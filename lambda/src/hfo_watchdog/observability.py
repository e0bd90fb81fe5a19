"""Logging, metrics and (opt-in) tracing, created once per container at import.

- Logger: Powertools structured JSON on stdout (CloudWatch Logs), level from POWERTOOLS_LOG_LEVEL.
- Metrics: CloudWatch Embedded Metric Format, flushed at the end of each tick. Every custom metric
  costs money each month, so there are exactly three (docs/watchdog.md says why each).
- Tracer: only when HFO_TRACING is true; importing the X-Ray SDK costs ~350 ms of cold start.

This module reads the environment itself because it runs at import, before the settings are
parsed; config.Settings validates the same variables at cold start.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

P = ParamSpec("P")
R = TypeVar("R")

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "hfo-watchdog"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "HybridFailover"
TRACING = os.environ.get("HFO_TRACING", "false").strip().lower() in ("true", "1", "yes")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class Metric(StrEnum):
    """The deliberate set of custom metrics; each one is a line on the monthly bill."""

    PROBE_FAILED = "ProbeFailed"  # 0/1 per tick: Funnel/laptop flakiness trend, even below the down window
    STANDBY_RUNNING = "StandbyRunning"  # 0/1 per tick: standby hours (cost) and "on standby" alarms
    ACTION_FAILED = "ActionFailed"  # count per tick: EC2 start/stop or alert delivery failed


def put_metric(name: Metric, value: float) -> None:
    metrics.add_metric(name=name.value, unit=MetricUnit.Count, value=value)


def publishing_metrics(handler: Callable[P, R]) -> Callable[P, R]:
    """Flush the invocation's metrics (one EMF document on stdout) when the handler returns or
    raises. An invocation that failed before measuring anything publishes nothing (and does not
    warn about it, unlike Powertools' own decorator)."""

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
                metrics.clear_metrics()  # also when POWERTOOLS_METRICS_DISABLED kept them

    return wrapper


if TRACING:
    from aws_lambda_powertools import Tracer

    _tracer = Tracer(service=SERVICE)
    tracer: Tracer | None = _tracer

    def traced(handler: Callable[P, R]) -> Callable[P, R]:
        wrapped: Callable[P, R] = _tracer.capture_lambda_handler(handler)
        return wrapped

else:
    tracer = None

    def traced(handler: Callable[P, R]) -> Callable[P, R]:
        return handler
