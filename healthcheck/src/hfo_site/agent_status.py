"""The agent's report to the health service (POST /agent-status on 127.0.0.1:8081).

Both containers of the Pod share one network namespace and one clock. The health service trusts
this report because only processes inside the Pod can reach the loopback port
(docs/site.md#agent-status). What the verdict depends on is carried as *durations* measured on
the agent's lease clock (monotonic, counting through a suspend), never as wall-clock times: a
step of the wall clock cannot make a report look fresher than it is. ``reported_at`` is the one
wall-clock time; the health service uses it to refuse reports from the future and to add the
time a report spent in transit to its ages (docs/site.md#agent-status).

```json
{"v":2,"site":"primary","backend":"kubernetes","workload":"running","ready":true,
 "lease":{"site":"primary","epoch":7,"held":true,"remaining_s":58.75},
 "heartbeat_age_s":1.25,"reported_at":"2026-11-23T15:00:00.200Z","detail":"..."}
```
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.heartbeat import LEASE_SITES, SITES, WORKLOAD_STATES
from hfo_protocol.jsondoc import bounded_int, is_version, loads_object
from hfo_protocol.timefmt import format_ts, parse_ts

VERSION = 2  # 2: durations instead of the wall-clock last_heartbeat_ok and lease.expires_at of 1
MAX_STATUS_BYTES = 4096
MAX_DETAIL_CHARS = 512
MAX_DURATION_S = 86_400.0 * 365  # a year: larger is nonsense, not a long lease
PATH = "/agent-status"


@dataclass(frozen=True)
class AgentStatus:
    site: str
    backend: str
    workload: str  # one of WORKLOAD_STATES
    ready: bool  # the site could run the workload now
    lease_site: str | None  # primary | standby | none, None before the first lease answer
    lease_epoch: int | None
    lease_held: bool  # this site holds a fresh lease (agent's lease clock)
    lease_remaining_s: float | None  # time left on that lease when the report was made; when held
    heartbeat_age_s: float | None  # time since the last accepted heartbeat answer came; None before one
    reported_at: float  # wall clock, when the report was made
    detail: str = ""
    # The state handoff (hfo_site.state_api.StateAccess.status_doc): credentials held (epoch and
    # expiry only) and the last event per workload. None when state handoff is off.
    state: dict[str, Any] | None = None


def build_status(status: AgentStatus) -> bytes:
    doc: dict[str, Any] = {
        "v": VERSION,
        "site": status.site,
        "backend": status.backend,
        "workload": status.workload,
        "ready": status.ready,
        "lease": {
            "site": status.lease_site,
            "epoch": status.lease_epoch,
            "held": status.lease_held,
            "remaining_s": None if status.lease_remaining_s is None else round(status.lease_remaining_s, 3),
        },
        "heartbeat_age_s": None if status.heartbeat_age_s is None else round(status.heartbeat_age_s, 3),
        "reported_at": format_ts(status.reported_at),
        "detail": status.detail[:MAX_DETAIL_CHARS],
    }
    if status.state is not None:
        doc["state"] = status.state
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _bad(message: str) -> ProtocolError:
    return ProtocolError("malformed", message)


def _duration(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"{field} must be a number of seconds or null")
    if not 0 <= value <= MAX_DURATION_S:
        raise _bad(f"{field} must be from 0 to {MAX_DURATION_S:g} seconds")
    return float(value)


def parse_status(body: bytes) -> AgentStatus:
    """Validate a report. Raises ProtocolError('malformed' | 'too_large')."""
    if len(body) > MAX_STATUS_BYTES:
        raise ProtocolError("too_large", f"status is {len(body)} bytes; at most {MAX_STATUS_BYTES}")
    doc = loads_object(body, "status", "malformed")
    if not is_version(doc.get("v"), VERSION):
        raise _bad(f"status must carry v={VERSION} (the agent and the health service come from one image)")
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
    if epoch is not None and not bounded_int(epoch):
        raise _bad("lease.epoch must be an integer from 0 to 2^53-1, or null")
    held = lease.get("held")
    if not isinstance(held, bool):
        raise _bad("lease.held must be true or false")
    remaining = _duration(lease.get("remaining_s"), "lease.remaining_s")
    if held and remaining is None:
        raise _bad("lease.remaining_s is required while lease.held is true")
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
        lease_remaining_s=remaining,
        heartbeat_age_s=_duration(doc.get("heartbeat_age_s"), "heartbeat_age_s"),
        reported_at=parse_ts(doc.get("reported_at"), "reported_at"),
        detail=detail,
        state=_state(doc.get("state")),
    )


def _state(value: object) -> dict[str, Any] | None:
    """The optional state member: an object (the agent's StateAccess.status_doc), kept as is."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("state must be an object or null")
    return value


# -- The answer to a report: renewal grants (docs/protocol.md#renewal) ------------------------
# 204 and no body when nothing is pending; otherwise 200 and
#   {"v":1,"grants":[{"site":"primary","epoch":7,"remaining_s":88.5,"ttl_s":90}]}
# where remaining_s is t_ans + ttl_s - (the health service's lease clock when it RECEIVED the
# report). The agent adds it to its lease clock when it SENT the report: never later than t_ans +
# ttl_s, since both containers read one clock and the send came before the receipt.
MAX_GRANTS = 8


@dataclass(frozen=True)
class RemainingGrant:
    site: str
    epoch: int
    remaining_s: float
    ttl_s: float


def build_status_answer(grants: list[RemainingGrant]) -> bytes:
    doc = {
        "v": 1,
        "grants": [
            {"site": g.site, "epoch": g.epoch, "remaining_s": round(g.remaining_s, 3), "ttl_s": round(g.ttl_s, 3)}
            for g in grants[:MAX_GRANTS]
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def parse_status_answer(body: bytes) -> list[RemainingGrant]:
    """Raises ProtocolError('malformed'). remaining_s is floored at 0 by the writer; a value
    below 0 or over a day is refused."""
    doc = loads_object(body, "status answer", "malformed")
    if not is_version(doc.get("v"), 1):
        raise _bad("status answer must carry v=1")
    items = doc.get("grants")
    if not isinstance(items, list) or len(items) > MAX_GRANTS:
        raise _bad(f"grants must be a list of at most {MAX_GRANTS}")
    grants = []
    for item in items:
        if not isinstance(item, dict) or item.get("site") not in SITES or not bounded_int(item.get("epoch"), 1):
            raise _bad("each grant needs a site and an epoch of at least 1")
        remaining = _duration(item.get("remaining_s"), "remaining_s")
        ttl = _duration(item.get("ttl_s"), "ttl_s")
        if remaining is None or ttl is None or remaining > 86_400 or ttl > 86_400:
            raise _bad("remaining_s and ttl_s must be from 0 to 86400 seconds")
        grants.append(RemainingGrant(item["site"], item["epoch"], remaining, ttl))
    return grants
