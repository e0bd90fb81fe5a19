"""The heartbeat endpoint (Lambda Function URL): check, record, answer with the lease.

Checks run in the exact order of docs/protocol.md#heartbeat; each refusal answers its status and
error code and changes no state. The store reads first and writes last: the heartbeat is recorded
in its site's item only (the replay guard of docs/protocol.md#replay-protection), in one
transaction with a check that the control item is still as read, so every refusal, `unavailable`
included, comes before the only write. Then the engine may complete a handover that this
heartbeat fulfils; that write uses the control item's `version` condition, like a tick, and a
failure there defers the handover (the heartbeat stays accepted and is answered with the lease
as read, `none`). The answer carries the lease, signed with purpose `lease`, and, for the lease
holder that asked (`"state": true`) while state handoff is on, its epoch's state credentials
(hfo_watchdog.state_access, docs/state-handoff.md#credentials).
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
    StateCredentials,
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
from hfo_watchdog.core.model import ControlState, Policy, Site
from hfo_watchdog.ports import CredentialIssuer
from hfo_watchdog.state_access import CredentialsUnavailable, refusal_reason
from hfo_watchdog.store import AcceptedHeartbeat, HeartbeatReplay, RestoredEntry, StoreUnavailable

_SIGNATURE_HEADER = SIGNATURE_HEADER.lower()
_SIGNATURE_CODES = {"missing": "unsigned", "malformed": "bad_signature", "mismatch": "bad_signature"}


class HeartbeatStore(TickStore, Protocol):
    """What the heartbeat handler needs: the tick's conditional control writes, plus its site's
    record and a control-only read."""

    def accept_heartbeat(
        self, hb: Heartbeat, clock: Callable[[], float], *, replay_window_s: float
    ) -> AcceptedHeartbeat: ...

    def load_control(self) -> ControlState: ...

    def record_restored(self, entry: RestoredEntry) -> None: ...


@dataclass(frozen=True)
class HeartbeatDeps:
    store: HeartbeatStore
    keyring: Keyring
    policy: Policy
    max_skew_s: float
    effects: Callable[[], Effects]  # built only when a decision has actions to perform
    log: Log
    clock: Callable[[], float] = time.time
    # State credentials for the lease holder; None: state handoff is off. A factory, so that the
    # STS client is built on the first heartbeat that asks, not at cold start.
    credentials: Callable[[], CredentialIssuer] | None = None


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


def _raw_body(event: Mapping[str, Any]) -> tuple[str, bool]:
    body = event.get("body")
    if body is None:
        return "", False
    if not isinstance(body, str):
        raise Refused("malformed", "body must be text")
    return body, bool(event.get("isBase64Encoded"))


def _size(text: str, is_base64: bool) -> int:
    """The body's size in bytes, without decoding it (a base64 text's length says its size)."""
    if not is_base64:
        return len(text.encode("utf-8", "surrogatepass"))
    stripped = text.rstrip("=")
    return len(stripped) * 3 // 4


def _bytes(text: str, is_base64: bool) -> bytes:
    """The exact bytes to verify. Only after the signature header is known to be there: a body
    that cannot be decoded can match no signature, and says nothing about the schema."""
    if not is_base64:
        # A lone surrogate (possible in a JSON event, never in UTF-8) is kept as the bytes that
        # encode it, which are not UTF-8: no signature matches them and no parser accepts them.
        return text.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("bad_signature", "body is not valid base64: no signature can match it") from None


def check(event: Mapping[str, Any], keyring: Keyring, now: float, max_skew_s: float) -> Heartbeat:
    """Every check that needs no state, in the documented order. Raises Refused."""
    if _method(event) != "POST":
        raise Refused("method_not_allowed", "heartbeats are POSTed")
    text, is_base64 = _raw_body(event)
    size = _size(text, is_base64)
    if size > MAX_HEARTBEAT_BYTES:
        raise Refused("too_large", f"body is {size} bytes; at most {MAX_HEARTBEAT_BYTES}")
    headers = _headers(event)
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise Refused("unsupported_media_type", f"content type must be {CONTENT_TYPE}")
    signature = headers.get(_SIGNATURE_HEADER)
    if not signature:
        raise Refused("unsigned", f"no {SIGNATURE_HEADER} header")
    body = _bytes(text, is_base64)
    if len(body) > MAX_HEARTBEAT_BYTES:
        raise Refused("too_large", f"body is {len(body)} bytes; at most {MAX_HEARTBEAT_BYTES}")
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
        accepted = deps.store.accept_heartbeat(hb, deps.clock, replay_window_s=2 * deps.max_skew_s)
    except HeartbeatReplay as replay:
        log.warning("heartbeat_refused", extra={"error": "replay", "site": hb.site, "why": str(replay)})
        return refusal("replay", str(replay))
    except StoreUnavailable as exc:
        log.error("heartbeat_unavailable", extra={"site": hb.site, "why": str(exc)})
        return refusal("unavailable", "the watchdog's state store cannot be reached; retry")
    # Recorded: from here on the heartbeat is accepted, whatever happens to the handover.
    state = _complete_handover(deps, accepted, now)
    _record_restored(deps, accepted, now)
    credentials = _state_credentials(deps, hb, state)
    log.debug(
        "heartbeat_accepted",
        extra={
            "site": hb.site,
            "sent_at": format_ts(hb.sent_at),
            "seq": hb.seq,
            "boot": hb.boot,
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
            heartbeat_interval_s=max(1, int(engine.answer_interval(state, Site(hb.site), now, deps.policy))),
            state=credentials,
        )
    )
    return _response(200, answer, {_SIGNATURE_HEADER: sign_lease_answer(deps.keyring, answer)})


def _state_credentials(deps: HeartbeatDeps, hb: Heartbeat, state: ControlState) -> StateCredentials | None:
    """The credentials this answer carries, or None. Logs the epoch and the expiry, never a key;
    an STS failure costs the agent nothing but a retry at its next heartbeat."""
    reason = refusal_reason(state, hb.site, hb.state, deps.credentials is not None)
    if reason is not None:
        if hb.state:
            deps.log.debug("state_credentials_withheld", extra={"site": hb.site, "why": reason})
        return None
    assert deps.credentials is not None
    epoch = state.lease.epoch
    try:
        issued = deps.credentials().issue(hb.site, epoch)
    except CredentialsUnavailable as exc:
        deps.log.warning("state_credentials_unavailable", extra={"site": hb.site, "epoch": epoch, "error": exc.code})
        return None
    deps.log.info(
        "state_credentials_issued",
        extra={"site": hb.site, "epoch": epoch, "bucket": issued.bucket, "expires_at": issued.expires_at},
    )
    return issued


def _record_restored(deps: HeartbeatDeps, accepted: AcceptedHeartbeat, now: float) -> None:
    """A site reported another restored epoch for a workload: a history item and a log line say
    which epoch's state it restored (the site's item keeps the latest, for `hfo status`). Only the
    heartbeat whose conditional write replaced the item without it sees the change, so each change
    is recorded once. Best effort, after the heartbeat is accepted: a failure is logged."""
    before = dict(accepted.previous.state_restored) if accepted.previous is not None else {}
    for workload, epoch in accepted.record.state_restored:
        if before.get(workload) == epoch:
            continue
        entry = RestoredEntry(
            at=now,
            site=accepted.record.site.value,
            workload=workload,
            restored_epoch=epoch,
            previous_epoch=before.get(workload),
            lease_epoch=accepted.state.lease.epoch,
        )
        deps.log.info(
            "state_restored",
            extra={
                "site": entry.site,
                "workload": workload,
                "restored_epoch": epoch,
                "previous_epoch": entry.previous_epoch,
                "lease_epoch": entry.lease_epoch,
            },
        )
        try:
            deps.store.record_restored(entry)
        except StoreUnavailable as exc:
            deps.log.error("state_restored_not_recorded", extra={"site": entry.site, "why": str(exc)})


def _complete_handover(deps: HeartbeatDeps, accepted: AcceptedHeartbeat, now: float) -> ControlState:
    """Let the engine act on what this heartbeat makes possible (arm, call a failover off, give the
    standby the lease, complete a handover); return the state to answer with.

    When the write fails, the answer is the state as read, which is what this heartbeat would have
    been answered without the engine: the move waits for the next heartbeat or tick, and the
    accepted heartbeat is never turned into a refusal after its write."""
    state, record = accepted.state, accepted.record
    other = accepted.standby if record.site == Site.PRIMARY else accepted.primary
    decision = engine.on_heartbeat(state, record, other, now, deps.policy)
    if decision is None:
        return state
    try:
        committed = commit_and_act(
            deps.store,
            deps.effects,
            decision,
            state.version,
            deps.policy,
            deps.clock,
            deps.log,
            guard=lease_guard(decision, accepted.primary, accepted.standby),
            context={"trigger": f"heartbeat:{record.site.value}"},
        )
        if committed is not None:
            return committed.state
        # Someone else changed the control item meanwhile: answer with what is stored now, never
        # with the state this invocation failed to write.
        return deps.store.load_control()
    except StoreUnavailable as exc:
        deps.log.error(
            "handover_deferred",
            extra={"site": record.site.value, "why": str(exc), "lease": state.lease.site.value, "stage": "lease"},
        )
        return state


def _source(event: Mapping[str, Any]) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    return {"source_ip": http.get("sourceIp"), "user_agent": http.get("userAgent")}
