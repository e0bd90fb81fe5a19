"""Heartbeats (agent -> watchdog) and lease answers (watchdog -> agent). See docs/protocol.md#heartbeat."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
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
# State handoff (docs/state-handoff.md#credentials): the epochs whose state a site restored, by
# workload (a DNS label), at most this many workloads per heartbeat.
MAX_STATE_WORKLOADS = 16
WORKLOAD_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # always fullmatch
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,3}")
_ACCESS_KEY_RE = re.compile(r"[A-Z0-9]{16,128}")
_MAX_SECRET_CHARS = 256
_MAX_TOKEN_CHARS = 8192  # an STS session token with a session policy is 1-2 kB; room to grow
_MAX_URL_CHARS = 512

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
    # True: the agent asks for state credentials (answered only to the lease holder).
    state: bool = False
    # The epoch whose state each workload restored at its last claim, sorted by workload.
    state_restored: tuple[tuple[str, int], ...] = ()


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
    if hb.state:
        doc["state"] = True
    if hb.state_restored:
        doc["state_restored"] = dict(hb.state_restored)
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
        state=_state_flag(doc.get("state", False)),
        state_restored=parse_state_restored(doc.get("state_restored", {})),
    )


def _state_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError("malformed", "state must be true or false")
    return value


def check_workload_name(value: object, field: str = "workload") -> str:
    if not isinstance(value, str) or WORKLOAD_NAME_RE.fullmatch(value) is None:
        raise ProtocolError(
            "malformed", f"{field} must be a DNS label (1-63 of a-z 0-9 -, not starting or ending with -)"
        )
    return value


def parse_state_restored(value: object) -> tuple[tuple[str, int], ...]:
    """``{"<workload>": <epoch>, ...}``: at most MAX_STATE_WORKLOADS entries, epochs 0 to 2^53-1."""
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "state_restored must be an object of workload -> epoch")
    if len(value) > MAX_STATE_WORKLOADS:
        raise ProtocolError("malformed", f"state_restored names {len(value)} workloads; at most {MAX_STATE_WORKLOADS}")
    out = []
    for name, epoch in value.items():
        check_workload_name(name, "a state_restored workload")
        if not bounded_int(epoch):
            raise ProtocolError("malformed", f"state_restored[{name}] must be an integer from 0 to {MAX_INT}")
        out.append((name, epoch))
    return tuple(sorted(out))


@dataclass(frozen=True)
class StateCredentials:
    """Short-lived credentials for the state bucket, for one site and one lease epoch
    (docs/state-handoff.md#credentials). The secret parts never appear in repr."""

    bucket: str
    region: str
    endpoint_url: str | None  # None on AWS; an S3-compatible endpoint otherwise (MinIO, tests)
    epoch: int
    site: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expires_at: int = 0  # unix seconds

    def to_doc(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "epoch": self.epoch,
            "site": self.site,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "expires_at": self.expires_at,
        }


def _text(doc: dict[str, Any], key: str, limit: int, pattern: re.Pattern[str] | None = None) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError("malformed", f"state.{key} must be a non-empty string of at most {limit} characters")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise ProtocolError("malformed", f"state.{key} has the wrong form")
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise ProtocolError("malformed", f"state.{key} must be printable, without whitespace")
    return value


def _state_int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if not bounded_int(value, 1):
        raise ProtocolError("malformed", f"state.{key} must be an integer from 1 to {MAX_INT}")
    return value  # type: ignore[return-value]


def parse_state_credentials(value: object) -> StateCredentials:
    """Validate a lease answer's ``state`` object. Messages name fields, never their values."""
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "state must be an object")
    endpoint = value.get("endpoint_url")
    if endpoint is not None:
        endpoint = _text(value, "endpoint_url", _MAX_URL_CHARS)
        if not endpoint.startswith(("https://", "http://")):
            raise ProtocolError("malformed", "state.endpoint_url must be an http(s) URL or null")
    site = value.get("site")
    if site not in SITES:
        raise ProtocolError("malformed", f"state.site must be one of {SITES}")
    return StateCredentials(
        bucket=_text(value, "bucket", 63, _BUCKET_RE),
        region=_text(value, "region", 32, _REGION_RE),
        endpoint_url=endpoint,
        epoch=_state_int(value, "epoch"),
        site=site,
        access_key_id=_text(value, "access_key_id", 128, _ACCESS_KEY_RE),
        secret_access_key=_text(value, "secret_access_key", _MAX_SECRET_CHARS),
        session_token=_text(value, "session_token", _MAX_TOKEN_CHARS),
        expires_at=_state_int(value, "expires_at"),
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
    # Only to the lease holder that asked (heartbeat `state: true`): its epoch's state credentials.
    state: StateCredentials | None = None


def build_lease_answer(ans: LeaseAnswer) -> bytes:
    doc: dict[str, Any] = {
        "v": 1,
        "accepted": True,
        "nonce": ans.nonce,
        "server_time": format_ts(ans.server_time),
        "lease": {"site": ans.site, "epoch": ans.epoch, "ttl_s": ans.ttl_s},
        "mode": ans.mode,
        "phase": ans.phase,
        "heartbeat_interval_s": ans.heartbeat_interval_s,
    }
    if ans.state is not None:
        if (ans.state.site, ans.state.epoch) != (ans.site, ans.epoch):
            raise ValueError("state credentials must be for the lease the answer carries")
        doc["state"] = ans.state.to_doc()
    return _dump(doc)


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
    state = None if doc.get("state") is None else parse_state_credentials(doc["state"])
    if state is not None and (state.site, state.epoch) != (site, lease.get("epoch")):
        raise ProtocolError("malformed", "state credentials must be for the lease the answer carries")
    return LeaseAnswer(
        nonce=check_nonce(doc.get("nonce")),
        server_time=parse_ts(doc.get("server_time"), "server_time"),
        site=site,
        epoch=_int(lease, "epoch"),
        ttl_s=_int(lease, "ttl_s", minimum=1, maximum=MAX_TTL_S),
        mode=doc["mode"],
        phase=doc["phase"],
        heartbeat_interval_s=_int(doc, "heartbeat_interval_s", minimum=1, maximum=MAX_TTL_S),
        state=state,
    )


def build_refusal(code: str, message: str) -> tuple[int, bytes]:
    """(HTTP status, body) for a refused heartbeat. Unknown codes are a programming error."""
    status = REFUSALS[code]
    return status, _dump({"v": 1, "accepted": False, "error": code, "message": message})
