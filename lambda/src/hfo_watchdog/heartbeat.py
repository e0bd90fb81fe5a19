"""The heartbeat endpoint (Lambda Function URL): check, record, answer with the lease.

Checks run in the exact order of docs/protocol.md#heartbeat; each refusal answers its status and
error code and changes no state. An accepted heartbeat is recorded in its site's item only
(conditional on `sent_at` increasing: the replay check), then the engine may complete a handover
that this heartbeat fulfils; that write uses the control item's `version` condition, like a tick.
The answer carries the current lease, signed with purpose `lease`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hfo_protocol.errors import ProtocolError, SignatureError
from hfo_protocol.heartbeat import (
    CONTENT_TYPE,
    MAX_HEARTBEAT_BYTES,
    Heartbeat,
    LeaseAnswer,
    build_lease_answer,
    build_refusal,
    parse_heartbeat,
    sign_lease_answer,
    verify_heartbeat,
)
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import SIGNATURE_HEADER
from hfo_protocol.timefmt import format_ts

from hfo_watchdog.commit import Effects, Log, TickStore, commit_and_act, lease_guard
from hfo_watchdog.core import engine
from hfo_watchdog.core.model import ControlState, Policy, Site, SiteRecord
from hfo_watchdog.store import HeartbeatReplay, StoreUnavailable

_SIGNATURE_HEADER = SIGNATURE_HEADER.lower()
_SIGNATURE_CODES = {"missing": "unsigned", "malformed": "bad_signature", "mismatch": "bad_signature"}


class HeartbeatStore(TickStore, Protocol):
    """What the heartbeat handler needs: the tick's conditional control writes, plus its site's
    record and a control-only read."""

    def record_heartbeat(self, hb: Heartbeat, received_at: float) -> SiteRecord: ...

    def load_control(self) -> ControlState: ...


@dataclass(frozen=True)
class HeartbeatDeps:
    store: HeartbeatStore
    keyring: Keyring
    policy: Policy
    max_skew_s: float
    effects: Callable[[], Effects]  # built only when a decision has actions to perform
    log: Log
    clock: Callable[[], float] = time.time


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _response(status: int, body: bytes, extra_headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    headers = {"content-type": CONTENT_TYPE, "cache-control": "no-store"}
    headers.update(extra_headers or {})
    return {"statusCode": status, "headers": headers, "body": body.decode("utf-8"), "isBase64Encoded": False}


def refusal(code: str, message: str) -> dict[str, Any]:
    status, body = build_refusal(code, message)
    return _response(status, body)


def _method(event: Mapping[str, Any]) -> str:
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method") or event.get("httpMethod") or "").upper()


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("headers") or {}
    return {str(k).lower(): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise Refused("malformed", "body must be text")
    if event.get("isBase64Encoded"):
        # Decoding a huge body only to measure it would be wasteful: a base64 text longer than
        # 4/3 of the cap (plus padding) cannot decode to something within it.
        if len(body) > (MAX_HEARTBEAT_BYTES + 2) // 3 * 4:
            raise Refused("too_large", f"body is larger than {MAX_HEARTBEAT_BYTES} bytes")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("malformed", "body is not valid base64") from None
    return body.encode("utf-8")


def check(event: Mapping[str, Any], keyring: Keyring, now: float, max_skew_s: float) -> Heartbeat:
    """Every check that needs no state, in the documented order. Raises Refused."""
    if _method(event) != "POST":
        raise Refused("method_not_allowed", "heartbeats are POSTed")
    body = _body(event)
    if len(body) > MAX_HEARTBEAT_BYTES:
        raise Refused("too_large", f"body is {len(body)} bytes; at most {MAX_HEARTBEAT_BYTES}")
    headers = _headers(event)
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise Refused("unsupported_media_type", f"content type must be {CONTENT_TYPE}")
    signature = headers.get(_SIGNATURE_HEADER)
    if not signature:
        raise Refused("unsigned", f"no {SIGNATURE_HEADER} header")
    try:
        verify_heartbeat(keyring, signature, body)
    except SignatureError as exc:
        raise Refused(_SIGNATURE_CODES.get(exc.code, exc.code), exc.message) from None
    hb = _parse(body)
    skew = hb.sent_at - now
    if skew < -max_skew_s:
        raise Refused("stale", f"sent_at is {-skew:.1f}s old; at most {max_skew_s:g}s allowed")
    if skew > max_skew_s:
        raise Refused("future", f"sent_at is {skew:.1f}s ahead of the watchdog's clock; at most {max_skew_s:g}s")
    return hb


def _parse(body: bytes) -> Heartbeat:
    """Schema first, then the site: an unknown site with an otherwise broken body is `malformed`."""
    try:
        return parse_heartbeat(body)
    except ProtocolError as exc:
        if exc.code != "unknown_site":
            raise Refused(exc.code, exc.message) from None
        doc = json.loads(body)
        doc["site"] = Site.PRIMARY.value
        try:
            parse_heartbeat(json.dumps(doc).encode("utf-8"))
        except ProtocolError as schema:
            raise Refused(schema.code, schema.message) from None
        raise Refused("unknown_site", exc.message) from None


def handle(event: Mapping[str, Any], deps: HeartbeatDeps) -> dict[str, Any]:
    log = deps.log
    now = deps.clock()
    try:
        hb = check(event, deps.keyring, now, deps.max_skew_s)
    except Refused as refused:
        log.warning("heartbeat_refused", extra={"error": refused.code, "why": refused.message, **_source(event)})
        return refusal(refused.code, refused.message)
    try:
        record = deps.store.record_heartbeat(hb, now)
    except HeartbeatReplay as replay:
        log.warning("heartbeat_refused", extra={"error": "replay", "site": hb.site, "why": str(replay)})
        return refusal("replay", str(replay))
    except StoreUnavailable as exc:
        log.error("heartbeat_unavailable", extra={"site": hb.site, "why": str(exc)})
        return refusal("unavailable", "the watchdog's state store cannot be reached; retry")
    try:
        state = _decide_and_save(deps, record, now)
    except StoreUnavailable as exc:
        log.error("heartbeat_unavailable", extra={"site": hb.site, "why": str(exc), "stage": "lease"})
        return refusal("unavailable", "the watchdog's state store cannot be reached; retry")
    log.debug(
        "heartbeat_accepted",
        extra={
            "site": hb.site,
            "sent_at": format_ts(hb.sent_at),
            "workload": hb.workload,
            "epoch_seen": hb.epoch_seen,
            "ready": hb.ready,
            "lease": f"{state.lease.site.value}#{state.lease.epoch}",
        },
    )
    answer = build_lease_answer(
        LeaseAnswer(
            nonce=hb.nonce,
            server_time=deps.clock(),
            site=state.lease.site.value,
            epoch=state.lease.epoch,
            ttl_s=int(deps.policy.lease_ttl_s),
            mode=state.mode.value,
            phase=state.phase.value,
            heartbeat_interval_s=int(deps.policy.heartbeat_interval_s),
        )
    )
    return _response(200, answer, {_SIGNATURE_HEADER: sign_lease_answer(deps.keyring, answer)})


def _decide_and_save(deps: HeartbeatDeps, record: SiteRecord, now: float) -> ControlState:
    """Let the engine complete a handover this heartbeat fulfils; return the state to answer with."""
    state, primary, standby = deps.store.load()
    if record.site == Site.PRIMARY:
        primary, other = record, standby
    else:
        standby, other = record, primary
    decision = engine.on_heartbeat(state, record, other, now, deps.policy)
    if decision is None:
        return state
    committed = commit_and_act(
        deps.store,
        deps.effects,
        decision,
        state.version,
        deps.policy,
        deps.clock,
        deps.log,
        guard=lease_guard(decision, primary, standby),
        context={"trigger": f"heartbeat:{record.site.value}"},
    )
    if committed is None:
        # Someone else changed the control item meanwhile: answer with what is stored now, never
        # with the state this invocation failed to write.
        return deps.store.load_control()
    return committed.state


def _source(event: Mapping[str, Any]) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    return {"source_ip": http.get("sourceIp"), "user_agent": http.get("userAgent")}
