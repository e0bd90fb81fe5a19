"""Loopback networking helpers with bounded waits. The free port comes from the drill's harness
(hfo_drill.net), which the benchmarks use too: one helper, one home."""

from __future__ import annotations

import time
from collections.abc import Callable

from hfo_drill.net import free_port

__all__ = ["free_port", "wait_until"]


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (never loops forever)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
