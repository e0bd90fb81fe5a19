"""The health document: IETF health-check response format (application/health+json) plus an
``hfo`` member that binds the answer to the probe's nonce. See docs/protocol.md#probe."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.jsondoc import bounded_int, is_version, loads_object
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import check_nonce
from hfo_protocol.signing import sign, verify
from hfo_protocol.timefmt import format_ts, parse_ts

CONTENT_TYPE = "application/health+json"
HEALTH_PATH = "/healthz"
NONCE_PARAM = "nonce"
STATUSES = ("pass", "warn", "fail")
BASES = ("workload", "ready", "none")
SERVICE_ID = "hfo-health"


def http_status_for(status: str) -> int:
    """IETF draft: pass and warn answer 2xx, fail answers 5xx."""
    return 503 if status == "fail" else 200


@dataclass(frozen=True)
class HealthDocument:
    status: str  # pass | warn | fail
    site: str
    basis: str  # workload: the workload runs healthy here; ready: lease not held, ready to take it; none
    time: float  # epoch seconds, when the answer was made
    nonce: str | None
    lease_epoch: int | None
    checks: Mapping[str, Any] | None = None  # only in the token-gated detailed answer


def build_health_body(doc: HealthDocument) -> bytes:
    body: dict[str, Any] = {
        "status": doc.status,
        "serviceId": SERVICE_ID,
        "hfo": {
            "v": 1,
            "site": doc.site,
            "basis": doc.basis,
            "time": format_ts(doc.time),
            "nonce": doc.nonce,
            "leaseEpoch": doc.lease_epoch,
        },
    }
    if doc.checks is not None:
        body["checks"] = dict(doc.checks)
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_health(keyring: Keyring, nonce: str, body: bytes) -> str:
    return sign(keyring, "health", nonce.encode("ascii"), body)


def verify_health(keyring: Keyring, header: str | None, nonce: str, body: bytes) -> str:
    return verify(keyring, header, "health", nonce.encode("ascii"), body)


def parse_health_body(body: bytes) -> HealthDocument:
    """Parse and validate a health document. Raise ProtocolError('not_health_document')."""
    doc = loads_object(body, "body", "not_health_document")
    status = doc.get("status")
    if status not in STATUSES:
        raise ProtocolError("not_health_document", f"status must be one of {STATUSES}")
    ext = doc.get("hfo")
    if not isinstance(ext, dict) or not is_version(ext.get("v"), 1):
        raise ProtocolError("not_health_document", "missing hfo member with v=1 (the integer)")
    site = ext.get("site")
    if not isinstance(site, str):
        raise ProtocolError("not_health_document", "hfo.site must be a string")
    basis = ext.get("basis")
    if basis not in BASES:
        raise ProtocolError("not_health_document", f"hfo.basis must be one of {BASES}")
    try:
        when = parse_ts(ext.get("time"), "hfo.time")
        nonce = None if ext.get("nonce") is None else check_nonce(ext.get("nonce"), "hfo.nonce")
    except ProtocolError as exc:
        raise ProtocolError("not_health_document", exc.message) from None
    epoch = ext.get("leaseEpoch")
    if epoch is not None and not bounded_int(epoch):
        raise ProtocolError("not_health_document", "hfo.leaseEpoch must be an integer from 0 to 2^53-1, or null")
    checks = doc.get("checks")
    if checks is not None and not isinstance(checks, dict):
        raise ProtocolError("not_health_document", "checks must be an object")
    return HealthDocument(
        status=status, site=site, basis=basis, time=when, nonce=nonce, lease_epoch=epoch, checks=checks
    )
