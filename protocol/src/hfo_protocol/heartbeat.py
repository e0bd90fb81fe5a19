"""Heartbeats (agent -> watchdog) and lease answers (watchdog -> agent). See docs/protocol.md#heartbeat."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.jsondoc import MAX_INT, bounded_int, is_version, loads_object
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import check_boot_id, check_nonce
from hfo_protocol.signing import sign, verify
from hfo_protocol.timefmt import format_ts, parse_ts

CONTENT_TYPE = "application/json"
MAX_HEARTBEAT_BYTES = 4096
SITES = ("primary", "standby")
LEASE_SITES = ("primary", "standby", "none")
MAX_TTL_S = 86_400  # a lease answer's ttl_s and heartbeat_interval_s: a day at most
WORKLOAD_STATES = ("running", "starting", "stopping", "stopped", "unknown")

# Refusal codes -> HTTP status. Every refusal leaves the watchdog's state untouched.
REFUSALS: dict[str, int] = {
    "malformed": 400,
    "unsigned": 401,
    "bad_signature": 401,
    "unknown_key": 401,
    "unknown_site": 403,
    "method_not_allowed": 405,
    "replay": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "stale": 422,
    "future": 422,
    "unavailable": 503,
}


def _int(doc: dict[str, Any], key: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    value = doc.get(key)
    if not bounded_int(value, minimum, maximum):
        raise ProtocolError("malformed", f"{key} must be an integer from {minimum} to {maximum}")
    return value  # type: ignore[return-value]


def _object(body: bytes, what: str) -> dict[str, Any]:
    doc = loads_object(body, what, "malformed")
    if not is_version(doc.get("v"), 1):
        raise ProtocolError("malformed", f"{what} must carry v=1 (the integer)")
    return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Heartbeat:
    site: str
    sent_at: float  # epoch seconds, the agent's clock
    nonce: str
    seq: int  # increases with every heartbeat of one agent process (one boot)
    workload: str  # one of WORKLOAD_STATES
    epoch_seen: int  # highest lease epoch the agent has seen
    ready: bool  # the site could take the lease now (its cluster and workload image are ready)
    agent: str = "hfo-agent"
    # Random per agent process, drawn at start. With `seq`, the watchdog's replay guard (a wall
    # clock step cannot break it). None only in heartbeats of agents older than the field.
    boot: str | None = None


def build_heartbeat(hb: Heartbeat) -> bytes:
    doc: dict[str, Any] = {
        "v": 1,
        "site": hb.site,
        "sent_at": format_ts(hb.sent_at),
        "nonce": hb.nonce,
        "seq": hb.seq,
        "workload": hb.workload,
        "epoch_seen": hb.epoch_seen,
        "ready": hb.ready,
        "agent": hb.agent,
    }
    if hb.boot is not None:
        doc["boot"] = hb.boot
    return _dump(doc)


def sign_heartbeat(keyring: Keyring, body: bytes) -> str:
    return sign(keyring, "heartbeat", body)


def verify_heartbeat(keyring: Keyring, header: str | None, body: bytes) -> str:
    return verify(keyring, header, "heartbeat", body)


def parse_heartbeat(body: bytes) -> Heartbeat:
    """Schema check only (size, signature and clock are the receiver's job). Raises ProtocolError."""
    if len(body) > MAX_HEARTBEAT_BYTES:
        raise ProtocolError("too_large", f"heartbeat is {len(body)} bytes; at most {MAX_HEARTBEAT_BYTES}")
    doc = _object(body, "heartbeat")
    site = doc.get("site")
    if not isinstance(site, str):
        raise ProtocolError("malformed", "site must be a string")
    if site not in SITES:
        raise ProtocolError("unknown_site", f"site must be one of {SITES}")
    workload = doc.get("workload")
    if workload not in WORKLOAD_STATES:
        raise ProtocolError("malformed", f"workload must be one of {WORKLOAD_STATES}")
    ready = doc.get("ready")
    if not isinstance(ready, bool):
        raise ProtocolError("malformed", "ready must be true or false")
    agent = doc.get("agent", "hfo-agent")
    if not isinstance(agent, str) or len(agent) > 64:
        raise ProtocolError("malformed", "agent must be a string of at most 64 characters")
    return Heartbeat(
        site=site,
        sent_at=parse_ts(doc.get("sent_at"), "sent_at"),
        nonce=check_nonce(doc.get("nonce")),
        seq=_int(doc, "seq"),
        workload=workload,
        epoch_seen=_int(doc, "epoch_seen"),
        ready=ready,
        agent=agent,
        boot=check_boot_id(doc["boot"]) if "boot" in doc else None,
    )


@dataclass(frozen=True)
class LeaseAnswer:
    nonce: str  # echo of the heartbeat's nonce: binds this answer to that request
    server_time: float
    site: str  # primary | standby | none
    epoch: int
    ttl_s: int
    mode: str
    phase: str
    heartbeat_interval_s: int


def build_lease_answer(ans: LeaseAnswer) -> bytes:
    return _dump(
        {
            "v": 1,
            "accepted": True,
            "nonce": ans.nonce,
            "server_time": format_ts(ans.server_time),
            "lease": {"site": ans.site, "epoch": ans.epoch, "ttl_s": ans.ttl_s},
            "mode": ans.mode,
            "phase": ans.phase,
            "heartbeat_interval_s": ans.heartbeat_interval_s,
        }
    )


def sign_lease_answer(keyring: Keyring, body: bytes) -> str:
    return sign(keyring, "lease", body)


def verify_lease_answer(keyring: Keyring, header: str | None, body: bytes) -> str:
    return verify(keyring, header, "lease", body)


def parse_lease_answer(body: bytes) -> LeaseAnswer:
    doc = _object(body, "lease answer")
    if doc.get("accepted") is not True:
        raise ProtocolError("malformed", "lease answer must carry accepted=true")
    lease = doc.get("lease")
    if not isinstance(lease, dict):
        raise ProtocolError("malformed", "lease must be an object")
    site = lease.get("site")
    if site not in LEASE_SITES:
        raise ProtocolError("malformed", f"lease.site must be one of {LEASE_SITES}")
    for key in ("mode", "phase"):
        if not isinstance(doc.get(key), str):
            raise ProtocolError("malformed", f"{key} must be a string")
    return LeaseAnswer(
        nonce=check_nonce(doc.get("nonce")),
        server_time=parse_ts(doc.get("server_time"), "server_time"),
        site=site,
        epoch=_int(lease, "epoch"),
        ttl_s=_int(lease, "ttl_s", minimum=1, maximum=MAX_TTL_S),
        mode=doc["mode"],
        phase=doc["phase"],
        heartbeat_interval_s=_int(doc, "heartbeat_interval_s", minimum=1, maximum=MAX_TTL_S),
    )


def build_refusal(code: str, message: str) -> tuple[int, bytes]:
    """(HTTP status, body) for a refused heartbeat. Unknown codes are a programming error."""
    status = REFUSALS[code]
    return status, _dump({"v": 1, "accepted": False, "error": code, "message": message})
