"""Anomalies and their notifications, each notified once (docs/state-machine.md#anomalies).

A raised anomaly's key goes into `ControlState.open_alerts`; while it stays there it is not
notified again. When its condition clears, the key leaves the set and a `<key>:resolved`
notification says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hfo_watchdog.core.model import Action, ActionKind, Notification, Severity

DEGRADED_PROBE = "degraded:probe"
DEGRADED_HEARTBEAT = "degraded:heartbeat"
START_BLOCKED = "start_blocked_by_cooldown"
START_FAILED = "start_failed"
START_GAVE_UP = "start_gave_up"
STOP_FAILED = "stop_failed"
INSTANCE_MISSING = "instance_missing"
STANDBY_OVERTIME = "standby_overtime"
BOTH_RUNNING = "both_running"
DOWN_NO_FAILOVER = "primary_down_no_failover"


@dataclass(frozen=True)
class Kind:
    severity: Severity
    title: str


KINDS: Mapping[str, Kind] = {
    DEGRADED_PROBE: Kind(Severity.WARNING, "Probe down while the primary's heartbeats arrive (Funnel outage?)"),
    DEGRADED_HEARTBEAT: Kind(Severity.WARNING, "No heartbeat from the primary while its probe passes"),
    START_BLOCKED: Kind(Severity.WARNING, "Standby start held back by the start cooldown"),
    START_FAILED: Kind(Severity.WARNING, "Standby start failed"),
    START_GAVE_UP: Kind(Severity.CRITICAL, "Gave up starting the standby"),
    STOP_FAILED: Kind(Severity.WARNING, "Standby stop failed"),
    INSTANCE_MISSING: Kind(Severity.CRITICAL, "Standby instance terminated or missing"),
    STANDBY_OVERTIME: Kind(Severity.WARNING, "Standby has been running longer than allowed"),
    BOTH_RUNNING: Kind(Severity.CRITICAL, "Both sites report the workload running (split brain)"),
    DOWN_NO_FAILOVER: Kind(Severity.CRITICAL, "Primary down, but the mode forbids a failover"),
}


def _notify(key: str, severity: Severity, title: str, body: str, fields: Mapping[str, str]) -> Action:
    note = Notification(key=key, severity=severity, title=title, body=body, fields=dict(fields))
    return Action(kind=ActionKind.NOTIFY, reason=f"{title}: {body}", notification=note)


def raised(key: str, body: str, fields: Mapping[str, str]) -> Action:
    kind = KINDS[key]
    return _notify(key, kind.severity, kind.title, body, fields)


def resolved(key: str, fields: Mapping[str, str]) -> Action:
    kind = KINDS[key]
    return _notify(f"{key}:resolved", Severity.INFO, f"Resolved: {kind.title}", "the condition has cleared", fields)


def raise_once(
    open_alerts: frozenset[str], key: str, body: str, fields: Mapping[str, str]
) -> tuple[frozenset[str], list[Action]]:
    if key in open_alerts:
        return open_alerts, []
    return open_alerts | {key}, [raised(key, body, fields)]


def resolve(open_alerts: frozenset[str], key: str, fields: Mapping[str, str]) -> tuple[frozenset[str], list[Action]]:
    if key not in open_alerts:
        return open_alerts, []
    return open_alerts - {key}, [resolved(key, fields)]


def reconcile(
    open_alerts: frozenset[str],
    active: Mapping[str, str],
    managed: Iterable[str],
    fields: Mapping[str, str],
) -> tuple[frozenset[str], list[Action]]:
    """Raise every active key not yet open; resolve every open key of `managed` no longer active.
    `active` maps a key to the sentence that explains it. Keys outside `managed` are left alone."""
    actions: list[Action] = []
    result = open_alerts
    for key in sorted(active):
        result, new = raise_once(result, key, active[key], fields)
        actions += new
    for key in sorted(set(managed) & open_alerts):
        if key not in active:
            result, new = resolve(result, key, fields)
            actions += new
    return result, actions
