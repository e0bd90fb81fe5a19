"""The agent's side of the state handoff (docs/state-handoff.md#credentials, docs/protocol.md#state-api).

The watchdog answers the lease holder's heartbeat that asks for it (`"state": true`) with
short-lived S3 credentials scoped to its lease epoch. The agent keeps the last set in memory only
and hands it to the state containers of its own Pod (init container and sidecar) on its lease
server, behind a bearer token:

- ``GET /v1/state/credentials``: 200 and the credentials, only while this site holds a fresh lease
  and they were issued for that lease's epoch; 409 ``no_lease`` | ``no_credentials`` |
  ``state_disabled`` otherwise; 401 without the token.
- ``POST /v1/state/report``: what a state container did (restored, uploaded, final, fenced,
  failed). The agent keeps the last event per workload for its status, counts it in
  ``hfo_agent_state_events_total{workload,event}``, and tells the watchdog, in every heartbeat,
  which epoch's state each workload restored.

Nothing here logs a credential or the token: log lines name the epoch, the expiry and the event.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hfo_protocol.errors import ProtocolError
from hfo_protocol.heartbeat import MAX_STATE_WORKLOADS, StateCredentials, check_workload_name
from hfo_protocol.jsondoc import MAX_INT, bounded_int, loads_object

from hfo_site.secrets import SecretFile

log = logging.getLogger("hfo_site.state_api")

CREDENTIALS_PATH = "/v1/state/credentials"
REPORT_PATH = "/v1/state/report"
# Ask for a new set when the one held expires within this long (STATE_CONTRACT: 300 s); the state
# containers refresh theirs 120 s before expiry, so they always find one with time left.
REFRESH_BEFORE_S = 300.0
EVENTS = ("restored", "uploaded", "final", "fenced", "failed")
MAX_DETAIL_CHARS = 200
MAX_KEY_CHARS = 1024
MAX_REPORT_BYTES = 2048


class ReportError(ValueError):
    """A report the agent refuses (400): the message names the member, never stores anything."""


@dataclass(frozen=True)
class StateReport:
    workload: str
    event: str
    epoch: int
    snapshot_key: str | None
    restored_epoch: int | None
    at: float
    detail: str

    def to_doc(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "epoch": self.epoch,
            "snapshot_key": self.snapshot_key,
            "restored_epoch": self.restored_epoch,
            "at": self.at,
            "detail": self.detail,
        }


def _epoch(doc: dict[str, Any], key: str, *, nullable: bool) -> int | None:
    value = doc.get(key)
    if value is None and nullable:
        return None
    if not bounded_int(value):
        raise ReportError(f"{key} must be an integer from 0 to {MAX_INT}{' or null' if nullable else ''}")
    return int(value)  # type: ignore[arg-type]


def parse_report(body: bytes) -> StateReport:
    """Validate ``POST /v1/state/report``'s body. Raises ReportError with a specific message."""
    if len(body) > MAX_REPORT_BYTES:
        raise ReportError(f"the report is {len(body)} bytes; at most {MAX_REPORT_BYTES}")
    try:
        doc = loads_object(body, "report", "malformed")
        workload = check_workload_name(doc.get("workload"))
    except ProtocolError as exc:
        raise ReportError(exc.message) from None
    event = doc.get("event")
    if event not in EVENTS:
        raise ReportError(f"event must be one of {', '.join(EVENTS)}")
    epoch = _epoch(doc, "epoch", nullable=False)
    restored = _epoch(doc, "restored_epoch", nullable=True)
    if event == "restored" and restored is None:
        raise ReportError("restored_epoch is required for a restored event")
    key = doc.get("snapshot_key")
    if key is not None:
        prefix = f"state/{workload}/epochs/"
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not key.startswith(prefix):
            raise ReportError(
                f"snapshot_key must be null or a key under {prefix} of at most {MAX_KEY_CHARS} characters"
            )
        if not key.isprintable():
            raise ReportError("snapshot_key must be printable")
    at = doc.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 <= at <= MAX_INT:
        raise ReportError("at must be a unix time in seconds")
    detail = doc.get("detail", "")
    if not isinstance(detail, str) or len(detail) > MAX_DETAIL_CHARS:
        raise ReportError(f"detail must be a string of at most {MAX_DETAIL_CHARS} characters")
    return StateReport(workload, event, epoch, key, restored, float(at), detail)  # type: ignore[arg-type]


class StateAccess:
    """The agent's state credentials (memory only) and the reports of its state containers.
    ``token`` None: state handoff is off (HFO_STATE_ENABLED false)."""

    def __init__(
        self,
        token: SecretFile[bytes] | None,
        on_event: Callable[[str, str], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self._on_event = on_event
        self._wall = wall
        self._credentials: StateCredentials | None = None
        self.last: dict[str, StateReport] = {}
        self.restored: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self._token is not None

    # -- credentials -------------------------------------------------------------------------
    def wants_credentials(self, epoch: int) -> bool:
        """Ask in this heartbeat: no credentials for ``epoch`` (the highest the agent has seen, so
        the answer that grants a new epoch carries its credentials), or they expire soon."""
        creds = self._credentials
        if not self.enabled:
            return False
        return creds is None or creds.epoch != epoch or creds.expires_at - self._wall() < REFRESH_BEFORE_S

    def take(self, creds: StateCredentials) -> None:
        """Keep the credentials a verified, accepted lease answer carried (its lease's epoch)."""
        if not self.enabled:
            return
        fresh = self._credentials is None or self._credentials.epoch != creds.epoch
        self._credentials = creds
        (log.info if fresh else log.debug)(
            "state credentials received",
            extra={"epoch": creds.epoch, "expires_in_s": round(creds.expires_at - self._wall(), 1)},
        )

    def forget_older_than(self, epoch: int) -> None:
        if self._credentials is not None and self._credentials.epoch < epoch:
            self._credentials = None

    def credentials_for(self, site: str, epoch: int) -> StateCredentials | None:
        creds = self._credentials
        if creds is None or creds.site != site or creds.epoch != epoch or creds.expires_at <= self._wall():
            return None
        return creds

    def authorized(self, header: str | None) -> bool:
        """``Authorization: Bearer <token>``, compared in constant time; the file is re-read when it
        changes (a rotated Secret)."""
        if self._token is None or not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        self._token.reload_if_changed()
        return hmac.compare_digest(value.strip().encode("utf-8"), self._token.value)

    # -- reports -----------------------------------------------------------------------------
    def record(self, report: StateReport) -> None:
        if report.workload not in self.last and len(self.last) >= MAX_STATE_WORKLOADS:
            raise ReportError(f"reports name more than {MAX_STATE_WORKLOADS} workloads")
        self.last[report.workload] = report
        if report.event == "restored" and report.restored_epoch is not None:
            self.restored[report.workload] = report.restored_epoch
        if self._on_event is not None:
            self._on_event(report.workload, report.event)
        level = logging.WARNING if report.event in ("fenced", "failed") else logging.INFO
        log.log(
            level,
            f"state {report.event}",
            extra={
                "workload": report.workload,
                "epoch": report.epoch,
                "restored_epoch": report.restored_epoch,
                "snapshot_key": report.snapshot_key,
                "detail": report.detail,
            },
        )

    def restored_epochs(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self.restored.items()))

    def heartbeat_fields(self, epoch: int) -> dict[str, Any]:
        """The keyword arguments HeartbeatClient.send takes for the state members."""
        return {"state": self.wants_credentials(epoch), "state_restored": self.restored_epochs()}

    def status_doc(self) -> dict[str, Any]:
        """For the agent's status report: what credentials it holds (epoch and expiry only) and the
        last event per workload, without its snapshot key and detail (the report stays far below
        the health service's 4 KiB cap with 16 workloads; the log line has them)."""
        creds = self._credentials
        return {
            "credentials": None if creds is None else {"epoch": creds.epoch, "expires_at": creds.expires_at},
            "workloads": {
                name: {"event": r.event, "epoch": r.epoch, "restored_epoch": r.restored_epoch, "at": r.at}
                for name, r in sorted(self.last.items())
            },
        }


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}, separators=(",", ":")).encode("utf-8")
