"""Lease renewals over the probe path (watchdog -> the primary's health service).
See docs/protocol.md#renewal.

After the watchdog has committed ``renewed_until`` to its state, it POSTs to the health URL a body
signed with the shared keyring (purpose ``renewal``) that names the nonce of the probe the health
service answered with ``pass``:

```json
{"v":1,"purpose":"renewal","site":"primary","epoch":7,"nonce":"<the probe's nonce>",
 "ttl_s":90,"issued_at":"2026-12-03T05:00:00.000Z"}
```

The health service turns it into a grant "site primary holds epoch 7 until t_ans + ttl_s" on its
lease clock, where t_ans is when it answered that nonce. Every refusal here is a ProtocolError
whose ``code`` is one of REFUSALS; the receiver answers with that HTTP status and changes nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError, SignatureError
from hfo_protocol.jsondoc import bounded_int, is_version, loads_object
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import NONCE_RE
from hfo_protocol.signing import sign, verify
from hfo_protocol.timefmt import format_ts, parse_ts

PURPOSE = "renewal"
CONTENT_TYPE = "application/json"
RENEWAL_PATH = "/healthz"  # the probe's path, with POST
MAX_RENEWAL_BYTES = 1024  # a renewal is about 200 bytes; the health service reads no more
MIN_TTL_S = 1.0
# Equal to the watchdog's upper bound for HFO_PROBE_LEASE_TTL_S (probe_lease_ttl_s): a renewal the
# watchdog may legally send is never refused for its length, and nothing longer is ever honoured.
MAX_TTL_S = 3600.0
SITES = ("primary", "standby")

# Refusal codes -> HTTP status. Every refusal leaves the health service's state untouched.
REFUSALS: dict[str, int] = {
    "malformed": 400,  # not JSON, not an object, v != 1, a field of the wrong type or range
    "wrong_purpose": 400,  # the body's purpose is not "renewal"
    "bad_nonce": 400,  # the nonce is not 16-128 characters of [A-Za-z0-9_-]
    "bad_ttl": 400,  # ttl_s outside MIN_TTL_S..MAX_TTL_S
    "unsigned": 401,
    "bad_signature": 401,
    "unknown_key": 401,
    "wrong_site": 403,  # names another site than the health service's own
    "unknown_nonce": 409,  # never answered with pass here, or forgotten (older than the memory)
    "nonce_used": 409,  # a renewal for this nonce was already accepted
    "old_epoch": 409,  # lower than the epoch the agent last reported
    "too_large": 413,
    "unsupported_media_type": 415,
    "expired": 422,  # t_ans + ttl_s has already passed: the grant would be empty
    "rate_limited": 429,
    "unavailable": 503,  # the health service is shutting down
}


@dataclass(frozen=True)
class LeaseRenewal:
    site: str  # the site whose lease is renewed (always "primary" today)
    epoch: int  # the lease epoch the watchdog renews
    nonce: str  # the nonce of the probe the health service answered with pass
    ttl_s: float  # counted from when the health service answered that probe
    issued_at: float  # watchdog's wall clock when sent: informational, never used for freshness


def _ttl_text(ttl_s: float) -> int | float:
    return int(ttl_s) if float(ttl_s).is_integer() else round(float(ttl_s), 3)


def build_renewal(renewal: LeaseRenewal) -> bytes:
    doc: dict[str, Any] = {
        "v": 1,
        "purpose": PURPOSE,
        "site": renewal.site,
        "epoch": renewal.epoch,
        "nonce": renewal.nonce,
        "ttl_s": _ttl_text(renewal.ttl_s),
        "issued_at": format_ts(renewal.issued_at),
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_renewal(keyring: Keyring, body: bytes) -> str:
    return sign(keyring, PURPOSE, body)


def verify_renewal(keyring: Keyring, header: str | None, body: bytes) -> str:
    """Return the key id; raise ProtocolError('unsigned' | 'unknown_key' | 'bad_signature')."""
    try:
        return verify(keyring, header, PURPOSE, body)
    except SignatureError as exc:
        code = {"missing": "unsigned", "unknown_key": "unknown_key"}.get(exc.code, "bad_signature")
        raise ProtocolError(code, exc.message) from None


def parse_renewal(body: bytes) -> LeaseRenewal:
    """Schema check only (the signature is verify_renewal's job). Raises ProtocolError."""
    if len(body) > MAX_RENEWAL_BYTES:
        raise ProtocolError("too_large", f"renewal is {len(body)} bytes; at most {MAX_RENEWAL_BYTES}")
    doc = loads_object(body, "renewal", "malformed")
    if not is_version(doc.get("v"), 1):
        raise ProtocolError("malformed", "renewal must carry v=1 (the integer)")
    if doc.get("purpose") != PURPOSE:
        raise ProtocolError("wrong_purpose", f'purpose must be "{PURPOSE}"')
    site = doc.get("site")
    if site not in SITES:
        raise ProtocolError("malformed", f"site must be one of {SITES}")
    epoch = doc.get("epoch")
    if not bounded_int(epoch, minimum=1):
        raise ProtocolError("malformed", "epoch must be an integer from 1 to 2^53-1")
    nonce = doc.get("nonce")
    if not isinstance(nonce, str) or NONCE_RE.fullmatch(nonce) is None:
        raise ProtocolError("bad_nonce", "nonce must be 16-128 characters of [A-Za-z0-9_-]")
    ttl = doc.get("ttl_s")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl):
        raise ProtocolError("malformed", "ttl_s must be a number of seconds")
    if not MIN_TTL_S <= ttl <= MAX_TTL_S:
        raise ProtocolError("bad_ttl", f"ttl_s must be from {MIN_TTL_S:g} to {MAX_TTL_S:g} seconds (got {ttl:g})")
    issued_at = parse_ts(doc.get("issued_at"), "issued_at")
    return LeaseRenewal(site=site, epoch=epoch, nonce=nonce, ttl_s=float(ttl), issued_at=issued_at)  # type: ignore[arg-type]


def read_renewal(keyring: Keyring, header: str | None, body: bytes) -> LeaseRenewal:
    """What a receiver does: size, then signature, then schema. Raises ProtocolError."""
    if len(body) > MAX_RENEWAL_BYTES:
        raise ProtocolError("too_large", f"renewal is {len(body)} bytes; at most {MAX_RENEWAL_BYTES}")
    verify_renewal(keyring, header, body)
    return parse_renewal(body)


def build_renewal_ack(epoch: int, nonce: str, until_in_s: float) -> bytes:
    """The 200 answer: plain JSON (the watchdog has committed its promise before sending; the ack
    only tells it the grant reached the site)."""
    doc = {"v": 1, "accepted": True, "epoch": epoch, "nonce": nonce, "until_in_s": round(until_in_s, 3)}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def build_renewal_refusal(code: str, message: str) -> tuple[int, bytes]:
    """(HTTP status, body) for a refused renewal. Unknown codes are a programming error."""
    status = REFUSALS[code]
    doc = {"v": 1, "accepted": False, "error": code, "message": message}
    return status, json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
