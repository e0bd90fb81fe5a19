"""When a site's run of heartbeats counts as unbroken (the recovery window's "steady for S
seconds"). One rule, used by the store and by every simulation of it."""

from __future__ import annotations

from hfo_watchdog.core.model import Policy, SiteRecord

STEADY_GAP_INTERVALS = 3  # missing up to two heartbeats in a row does not break the run


def steady_gap_s(policy: Policy) -> float:
    """The longest silence between two heartbeats that still counts as one unbroken run."""
    return STEADY_GAP_INTERVALS * policy.heartbeat_interval_s


def steady_since_after(previous: SiteRecord | None, received_at: float, gap_s: float) -> float:
    """`steady_since` of a heartbeat received at `received_at`, after the site's `previous` one."""
    if previous is None or received_at - previous.received_at > gap_s:
        return received_at
    return previous.steady_since
