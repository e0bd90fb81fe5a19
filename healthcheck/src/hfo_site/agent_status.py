"""The agent's report to the health service (POST /agent-status on 127.0.0.1:8081).

Both containers of the Pod share one network namespace and one clock, so wall-clock times are
comparable. The health service trusts this report because only processes inside the Pod can
reach the loopback port (docs/site.md#agent-status).

```json
{"v":1,"site":"primary","backend":"kubernetes","workload":"running","ready":true,
 "lease":{"site":"primary","epoch":7,"held":true,"expires_at":"2026-11-23T15:01:00.000Z"},
 "last_heartbeat_ok":"2026-11-23T15:00:00.123Z","reported_at":"2026-11-23T15:00:00.200Z",
 "detail":"..."}
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.heartbeat import LEASE_SITES, SITES, WORKLOAD_STATES
from hfo_protocol.timefmt import format_ts, parse_ts

MAX_STATUS_BYTES = 4096
MAX_DETAIL_CHARS = 512
PATH = "/agent-status"


@dataclass(frozen=True)
class AgentStatus:
    site: str
    backend: str
    workload: str  # one of WORKLOAD_STATES
    ready: bool  # the site could run the workload now
    lease_site: str | None  # primary | standby | none, None before the first lease answer
    lease_epoch: int | None
    lease_held: bool  # this site holds a fresh lease (agent's monotonic clock)
    lease_expires_at: float | None  # wall clock, when held
    last_heartbeat_ok: float | None  # wall clock of the last accepted heartbeat answer
    reported_at: float
    detail: str = ""


def build_status(status: AgentStatus) -> bytes:
    doc: dict[str, Any] = {
        "v": 1,
        "site": status.site,
        "backend": status.backend,
        "workload": status.workload,
        "ready": status.ready,
        "lease": {
            "site": status.lease_site,
            "epoch": status.lease_epoch,
            "held": status.lease_held,
            "expires_at": None if status.lease_expires_at is None else format_ts(status.lease_expires_at),
        },
        "last_heartbeat_ok": None if status.last_heartbeat_ok is None else format_ts(status.last_heartbeat_ok),
        "reported_at": format_ts(status.reported_at),
        "detail": status.detail[:MAX_DETAIL_CHARS],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _bad(message: str) -> ProtocolError:
    return ProtocolError("malformed", message)


def _optional_ts(value: object, field: str) -> float | None:
    return None if value is None else parse_ts(value, field)


def parse_status(body: bytes) -> AgentStatus:
    """Validate a report. Raises ProtocolError('malformed' | 'too_large')."""
    if len(body) > MAX_STATUS_BYTES:
        raise ProtocolError("too_large", f"status is {len(body)} bytes; at most {MAX_STATUS_BYTES}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("status is not JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise _bad("status must be a JSON object with v=1")
    site = doc.get("site")
    if site not in SITES:
        raise _bad(f"site must be one of {SITES}")
    workload = doc.get("workload")
    if workload not in WORKLOAD_STATES:
        raise _bad(f"workload must be one of {WORKLOAD_STATES}")
    backend = doc.get("backend")
    if not isinstance(backend, str) or len(backend) > 32:
        raise _bad("backend must be a short string")
    ready = doc.get("ready")
    if not isinstance(ready, bool):
        raise _bad("ready must be true or false")
    lease = doc.get("lease")
    if not isinstance(lease, dict):
        raise _bad("lease must be an object")
    lease_site = lease.get("site")
    if lease_site is not None and lease_site not in LEASE_SITES:
        raise _bad(f"lease.site must be one of {LEASE_SITES} or null")
    epoch = lease.get("epoch")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0):
        raise _bad("lease.epoch must be a non-negative integer or null")
    held = lease.get("held")
    if not isinstance(held, bool):
        raise _bad("lease.held must be true or false")
    detail = doc.get("detail", "")
    if not isinstance(detail, str) or len(detail) > MAX_DETAIL_CHARS:
        raise _bad(f"detail must be a string of at most {MAX_DETAIL_CHARS} characters")
    return AgentStatus(
        site=site,
        backend=backend,
        workload=workload,
        ready=ready,
        lease_site=lease_site,
        lease_epoch=epoch,
        lease_held=held,
        lease_expires_at=_optional_ts(lease.get("expires_at"), "lease.expires_at"),
        last_heartbeat_ok=_optional_ts(doc.get("last_heartbeat_ok"), "last_heartbeat_ok"),
        reported_at=parse_ts(doc.get("reported_at"), "reported_at"),
        detail=detail,
    )
