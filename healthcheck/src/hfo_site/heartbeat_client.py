"""One signed heartbeat and its verified lease answer (docs/protocol.md#heartbeat).

The send time is taken on the monotonic clock just before the request leaves: a lease granted by
the answer runs from then, never from when the answer arrived (a slow answer shortens the lease,
it never stretches it).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiohttp
from hfo_protocol import SIGNATURE_HEADER, Keyring, ProtocolError
from hfo_protocol.heartbeat import (
    REFUSALS,
    Heartbeat,
    LeaseAnswer,
    build_heartbeat,
    parse_lease_answer,
    sign_heartbeat,
    verify_lease_answer,
)
from hfo_protocol.jsondoc import loads_object
from hfo_protocol.nonce import new_boot_id, new_nonce

from hfo_site.http_body import read_capped
from hfo_site.lease import lease_clock

log = logging.getLogger("hfo_site.heartbeat")

MAX_ANSWER_BYTES = 16 * 1024
USER_AGENT = "hfo-agent/0.1.0"


class BeatKind(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"  # the watchdog answered with a documented refusal
    HTTP_ERROR = "http_error"  # any other non-200 answer
    NETWORK = "network"  # could not connect / connection broke
    TIMEOUT = "timeout"
    BAD_ANSWER = "bad_answer"  # 200, but unsigned, badly signed, malformed or for another nonce


# Worth another try within the same interval: the next attempt may well succeed.
TRANSIENT = frozenset({BeatKind.NETWORK, BeatKind.TIMEOUT, BeatKind.HTTP_ERROR})


@dataclass(frozen=True)
class BeatResult:
    kind: BeatKind
    sent_at_mono: float
    code: str = ""  # refusal code, or failure detail class
    detail: str = ""
    http_status: int | None = None
    answer: LeaseAnswer | None = None

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT or (self.kind is BeatKind.REFUSED and self.code == "unavailable")


def make_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class HeartbeatClient:
    """Signs and sends heartbeats for one agent process. Its boot id, drawn once, goes into every
    heartbeat beside the caller's seq: the watchdog's replay guard (docs/protocol.md#replay-protection)
    then needs no wall clock, so a step of the agent's clock cannot lock its heartbeats out."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        keyring: Callable[[], Keyring],
        timeout_s: float,
        ssl_context: ssl.SSLContext,
        mono: Callable[[], float] = lease_clock,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._session = session
        self._keyring = keyring
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ssl = ssl_context
        self._mono = mono
        self._wall = wall
        self.boot = new_boot_id()

    async def send(
        self,
        site: str,
        seq: int,
        workload: str,
        epoch_seen: int,
        ready: bool,
        *,
        state: bool = False,
        state_restored: tuple[tuple[str, int], ...] = (),
    ) -> BeatResult:
        """``state``: ask for state credentials; ``state_restored``: the epoch whose state each
        workload restored (docs/protocol.md#heartbeat)."""
        nonce = new_nonce()
        body = build_heartbeat(
            Heartbeat(
                site=site,
                sent_at=self._wall(),
                nonce=nonce,
                seq=seq,
                workload=workload,
                epoch_seen=epoch_seen,
                ready=ready,
                agent=USER_AGENT,
                boot=self.boot,
                state=state,
                state_restored=state_restored,
            )
        )
        keyring = self._keyring()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_heartbeat(keyring, body),
            "User-Agent": USER_AGENT,
        }
        sent = self._mono()
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=self._timeout, ssl=self._ssl, allow_redirects=False
            ) as resp:
                raw = await read_capped(resp.content, MAX_ANSWER_BYTES)
                status = resp.status
                signature = resp.headers.get(SIGNATURE_HEADER)
        except TimeoutError:
            return BeatResult(BeatKind.TIMEOUT, sent, "timeout", "no answer within the heartbeat timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return BeatResult(BeatKind.NETWORK, sent, type(exc).__name__, "could not reach the heartbeat URL")
        if len(raw) > MAX_ANSWER_BYTES:
            return BeatResult(BeatKind.BAD_ANSWER, sent, "too_large", "answer too large", status)
        if status != 200:
            code = _refusal_code(raw)
            if code is not None and REFUSALS.get(code) == status:
                return BeatResult(BeatKind.REFUSED, sent, code, _refusal_message(raw), status)
            return BeatResult(BeatKind.HTTP_ERROR, sent, f"http_{status}", "unexpected answer", status)
        try:
            verify_lease_answer(keyring, signature, raw)
            answer = parse_lease_answer(raw)
        except ProtocolError as exc:
            return BeatResult(BeatKind.BAD_ANSWER, sent, exc.code, exc.message, status)
        if answer.nonce != nonce:
            return BeatResult(BeatKind.BAD_ANSWER, sent, "wrong_nonce", "answer echoes another nonce", status)
        return BeatResult(BeatKind.ACCEPTED, sent, "", "", status, answer)


def _refusal_doc(raw: bytes) -> dict[str, object] | None:
    try:
        doc = loads_object(raw, "refusal", "malformed")  # the strict reader: never RecursionError
    except ProtocolError:
        return None
    if doc.get("accepted") is False:
        return doc
    return None


def _refusal_code(raw: bytes) -> str | None:
    doc = _refusal_doc(raw)
    code = doc.get("error") if doc else None
    return code if isinstance(code, str) and code in REFUSALS else None


def _refusal_message(raw: bytes) -> str:
    doc = _refusal_doc(raw)
    message = doc.get("message") if doc else None
    return message[:200] if isinstance(message, str) else ""
