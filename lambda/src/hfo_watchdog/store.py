"""DynamoDB state store (docs/state.md): the control item under optimistic concurrency, one item
per site written only by the heartbeat handler, and transition history written in the same
transaction as the transition it records.

Items are encoded by hand (a fixed, small schema) with the low-level client: no Decimal round
trips and no resource layer to import at cold start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from hfo_protocol.heartbeat import Heartbeat
from hfo_protocol.timefmt import format_ts

from hfo_watchdog.core.model import (
    ControlState,
    InstanceState,
    Lease,
    LeaseSite,
    Mode,
    Phase,
    ProbeFailure,
    ProbeResult,
    Site,
    SiteRecord,
    Transition,
)
from hfo_watchdog.core.steady import steady_since_after

CONTROL_KEY = {"pk": {"S": "CONTROL"}, "sk": {"S": "STATE"}}
# Attribute of a site item: the control version of the last write that took the lease away from
# that site (SiteUnchanged). A heartbeat's write is conditional on the fence it read. (Not a
# DynamoDB reserved word: expressions name it directly.)
FENCE = "fence"
HISTORY_PK = "HISTORY"
# Which epoch's state a site restored, one item per change a site reports (docs/state-handoff.md),
# apart from the transitions so that history() stays transitions only.
STATE_HISTORY_PK = "STATE_HISTORY"
SITE_PK = "SITE"
_RECORD_ATTEMPTS = 4
_BATCH_ATTEMPTS = 4
# The replay guard (docs/protocol.md#replay-protection): the last accepted seq of each agent process
# (boot id) of a site, kept while a captured heartbeat of it could still pass the skew check.
LEGACY_BOOT = "legacy"  # heartbeats without a boot id (agents older than the field): sent_at must grow
MAX_BOOTS = 8  # agent processes of one site remembered at once; a 9th within the window is refused


class StoreError(RuntimeError):
    """Base class of the store's own errors."""


class StoreUnavailable(StoreError):
    """DynamoDB could not be reached or refused the request (after botocore's own retries)."""


class HeartbeatReplay(StoreError):
    """A heartbeat the replay guard refuses: not later, in its agent process, than one accepted."""

    def __init__(self, site: str, why: str) -> None:
        super().__init__(f"heartbeat of {site}: {why}")
        self.site = site


@dataclass(frozen=True)
class BootMark:
    """The last accepted heartbeat of one agent process of a site."""

    seq: int
    sent_at: float
    at: float  # received_at (the watchdog's clock)


def next_boots(
    site: str, boots: Mapping[str, BootMark], hb: Heartbeat, received_at: float, window_s: float
) -> dict[str, BootMark]:
    """The replay guard: the site's boot marks after accepting `hb`, or HeartbeatReplay.

    A heartbeat of a known agent process must carry a higher `seq` than that process's last
    accepted one; a new process (boot id) is accepted. A process is forgotten `window_s` after its
    last accepted heartbeat (2 x the allowed skew: by then every copy of its heartbeats fails the
    skew check). A heartbeat without a boot id (an older agent) must carry a later `sent_at`.
    """
    live = {k: v for k, v in boots.items() if received_at - v.at < window_s}
    key = LEGACY_BOOT if hb.boot is None else hb.boot
    mark = live.get(key)
    if mark is not None:
        if hb.boot is None and hb.sent_at <= mark.sent_at:
            raise HeartbeatReplay(
                site,
                f"sent at {format_ts(hb.sent_at)}, not later than the last accepted one ({format_ts(mark.sent_at)})",
            )
        if hb.boot is not None and hb.seq <= mark.seq:
            raise HeartbeatReplay(
                site, f"seq {hb.seq} of agent process {key} is not above the last accepted one ({mark.seq})"
            )
    elif len(live) >= MAX_BOOTS:
        raise HeartbeatReplay(
            site,
            f"{len(live)} agent processes heartbeated within {window_s:g}s; a new one is refused until one ages out",
        )
    live[key] = BootMark(seq=hb.seq, sent_at=hb.sent_at, at=received_at)
    return live


def _boots_to_item(boots: Mapping[str, BootMark]) -> dict[str, Any]:
    return {"M": {k: {"M": {"seq": _n(v.seq), "sent_at": _n(v.sent_at), "at": _n(v.at)}} for k, v in boots.items()}}


def _boots_from_item(item: Mapping[str, Any]) -> dict[str, BootMark]:
    attr = item.get("boots")
    if attr is None:
        # An item written before boot ids: its last heartbeat continues the sent_at rule.
        return {
            LEGACY_BOOT: BootMark(
                seq=_get_i(item, "seq"), sent_at=float(item["sent_at"]["N"]), at=float(item["received_at"]["N"])
            )
        }
    return {
        k: BootMark(seq=int(v["M"]["seq"]["N"]), sent_at=float(v["M"]["sent_at"]["N"]), at=float(v["M"]["at"]["N"]))
        for k, v in attr["M"].items()
    }


@dataclass(frozen=True)
class AcceptedHeartbeat:
    """An accepted heartbeat and the state it was recorded against (one consistent snapshot)."""

    record: SiteRecord  # the site item as written
    state: ControlState  # the control item read; no write that took the lease from the site landed since
    primary: SiteRecord | None  # both site items after the write (one of them is `record`)
    standby: SiteRecord | None
    previous: SiteRecord | None = None  # the site's item as read, before this heartbeat


@dataclass(frozen=True)
class SiteUnchanged:
    """A guard for a control write: the site's item must still hold the heartbeat the writer read
    (`received_at`), or still be absent (None). A tick that takes the lease away from a site uses
    it, so that a heartbeat of that site answered with the old lease between the tick's read and
    its write cancels the write instead of leaving the site believing it holds the lease."""

    site: Site
    received_at: float | None


@dataclass(frozen=True)
class HistoryEntry:
    at: float
    from_phase: str
    to_phase: str
    from_lease: Lease
    to_lease: Lease
    reasons: tuple[str, ...]
    mode: str
    instance: str | None
    writer: str


@dataclass(frozen=True)
class RestoredEntry:
    """A site reported that a workload restored the state written under `restored_epoch`."""

    at: float
    site: str
    workload: str
    restored_epoch: int
    previous_epoch: int | None  # what the site reported before for that workload
    lease_epoch: int  # the lease epoch of the control state the heartbeat was answered with


# ----------------------------------------------------------------------------- codec


def _n(value: float | int) -> dict[str, str]:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": repr(float(value))}


def _opt_n(value: float | int | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else _n(value)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _opt_s(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else _s(value)


def _get_f(item: Mapping[str, Any], key: str) -> float | None:
    attr = item.get(key)
    if attr is None or "NULL" in attr:
        return None
    return float(attr["N"])


def _get_i(item: Mapping[str, Any], key: str, default: int = 0) -> int:
    attr = item.get(key)
    if attr is None or "NULL" in attr:
        return default
    return int(attr["N"])


def _get_s(item: Mapping[str, Any], key: str) -> str | None:
    attr = item.get(key)
    if attr is None or "NULL" in attr:
        return None
    return str(attr["S"])


def _probe_to_item(p: ProbeResult) -> dict[str, Any]:
    return {
        "M": {
            "ok": {"BOOL": p.ok},
            "at": _n(p.at),
            "failure": _opt_s(None if p.failure is None else p.failure.value),
            "detail": _s(p.detail[:500]),
            "http_status": _opt_n(p.http_status),
            "latency_ms": _opt_n(p.latency_ms),
        }
    }


def _probe_from_item(attr: Mapping[str, Any] | None) -> ProbeResult | None:
    if attr is None or "M" not in attr:
        return None
    m = attr["M"]
    failure = _get_s(m, "failure")
    status = _get_f(m, "http_status")
    return ProbeResult(
        ok=bool(m["ok"]["BOOL"]),
        at=float(m["at"]["N"]),
        failure=None if failure is None else ProbeFailure(failure),
        detail=_get_s(m, "detail") or "",
        http_status=None if status is None else int(status),
        latency_ms=_get_f(m, "latency_ms"),
    )


def control_to_item(state: ControlState, *, updated_at: float, writer: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        **CONTROL_KEY,
        "version": _n(state.version),
        "mode": _s(state.mode.value),
        "mode_until": _opt_n(state.mode_until),
        "phase": _s(state.phase.value),
        "phase_since": _n(state.phase_since),
        "lease_site": _s(state.lease.site.value),
        "lease_epoch": _n(state.lease.epoch),
        "lease_changed_at": _n(state.lease.changed_at),
        "probe_fail_streak": _n(state.probe_fail_streak),
        "probe_ok_streak": _n(state.probe_ok_streak),
        "probe_failing_since": _opt_n(state.probe_failing_since),
        "last_start_at": _opt_n(state.last_start_at),
        "start_count": _n(state.start_count),
        "start_failures": _n(state.start_failures),
        "standby_running_since": _opt_n(state.standby_running_since),
        "open_alerts": {"L": [_s(k) for k in sorted(state.open_alerts)]},
        "last_tick_at": _opt_n(state.last_tick_at),
        "renewed_until": _opt_n(state.renewed_until),
        "armed_at": _opt_n(state.armed_at),
        "warm_until": _opt_n(state.warm_until),
        "prewarm_starts": {"L": [_n(at) for at in state.prewarm_starts]},
        "updated_at": _n(updated_at),
        "updated_by": _s(writer),
    }
    if state.last_probe is not None:
        item["last_probe"] = _probe_to_item(state.last_probe)
    return item


def control_from_item(item: Mapping[str, Any]) -> ControlState:
    return ControlState(
        version=_get_i(item, "version"),
        mode=Mode(_get_s(item, "mode") or Mode.AUTO.value),
        mode_until=_get_f(item, "mode_until"),
        phase=Phase(_get_s(item, "phase") or Phase.HEALTHY.value),
        phase_since=_get_f(item, "phase_since") or 0.0,
        lease=Lease(
            site=LeaseSite(_get_s(item, "lease_site") or LeaseSite.PRIMARY.value),
            epoch=_get_i(item, "lease_epoch", 1),
            changed_at=_get_f(item, "lease_changed_at") or 0.0,
        ),
        probe_fail_streak=_get_i(item, "probe_fail_streak"),
        probe_ok_streak=_get_i(item, "probe_ok_streak"),
        last_probe=_probe_from_item(item.get("last_probe")),
        probe_failing_since=_get_f(item, "probe_failing_since"),
        last_start_at=_get_f(item, "last_start_at"),
        start_count=_get_i(item, "start_count"),
        start_failures=_get_i(item, "start_failures"),
        standby_running_since=_get_f(item, "standby_running_since"),
        open_alerts=frozenset(a["S"] for a in item.get("open_alerts", {}).get("L", [])),
        last_tick_at=_get_f(item, "last_tick_at"),
        renewed_until=_get_f(item, "renewed_until"),
        armed_at=_get_f(item, "armed_at"),
        warm_until=_get_f(item, "warm_until"),
        prewarm_starts=tuple(float(a["N"]) for a in item.get("prewarm_starts", {}).get("L", [])),
    )


def site_from_item(item: Mapping[str, Any]) -> SiteRecord:
    return SiteRecord(
        site=Site(item["sk"]["S"]),
        sent_at=float(item["sent_at"]["N"]),
        received_at=float(item["received_at"]["N"]),
        workload=item["workload"]["S"],
        epoch_seen=int(item["epoch_seen"]["N"]),
        ready=bool(item["ready"]["BOOL"]),
        steady_since=float(item["steady_since"]["N"]),
        count=_get_i(item, "count"),
        state_restored=tuple(sorted((k, int(v["N"])) for k, v in item.get("state_restored", {}).get("M", {}).items())),
    )


def _site_key(site: str) -> dict[str, Any]:
    return {"pk": _s(SITE_PK), "sk": _s(site)}


def history_sort_key(at: float, epoch: int, n: int) -> str:
    """`<RFC 3339 time>#<epoch>#<n>`, zero-padded so that the order of keys is the order of events."""
    return f"{format_ts(at)}#{epoch:010d}#{n:010d}"


# ----------------------------------------------------------------------------- store


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class DynamoStateStore:
    """ports.StateStore on one DynamoDB table. `client` is a boto3 DynamoDB client."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        history_ttl_s: float = 30 * 86400,
        steady_gap_s: float = 30.0,
        writer: str = "tick",
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._history_ttl_s = history_ttl_s
        self._steady_gap_s = steady_gap_s
        self._writer = writer
        self._clock = clock
        self.calls = 0  # AWS calls made, for the benchmark and the logs
        self._local = threading.local()

    @property
    def last_conflict(self) -> str | None:
        """Why this thread's last save() returned False (for the `lost_race` log)."""
        return getattr(self._local, "conflict", None)

    # -- reads

    def load(self) -> tuple[ControlState, SiteRecord | None, SiteRecord | None]:
        """One consistent BatchGetItem for the control item and both site items."""
        control, sites = self._load_items()
        state = ControlState() if control is None else control_from_item(control)
        records = {site: site_from_item(item) for site, item in sites.items()}
        return state, records.get(Site.PRIMARY.value), records.get(Site.STANDBY.value)

    def _load_items(self) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The raw control item (None when absent) and site items (by site), read consistently."""
        keys = [CONTROL_KEY, _site_key(Site.PRIMARY.value), _site_key(Site.STANDBY.value)]
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(_BATCH_ATTEMPTS):
            answer = self._call("batch_get_item", RequestItems=request)
            found.extend(answer.get("Responses", {}).get(self.table_name, []))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise StoreUnavailable("DynamoDB left keys unprocessed after repeated BatchGetItem calls")
        control: dict[str, Any] | None = None
        sites: dict[str, dict[str, Any]] = {}
        for item in found:
            if item["pk"]["S"] == "CONTROL":
                control = item
            else:
                sites[item["sk"]["S"]] = item
        return control, sites

    def load_control(self) -> ControlState:
        answer = self._call("get_item", TableName=self.table_name, Key=CONTROL_KEY, ConsistentRead=True)
        item = answer.get("Item")
        return ControlState() if item is None else control_from_item(item)

    def _latest(self, pk: str, limit: int) -> list[dict[str, Any]]:
        """The latest `limit` items of one history partition, newest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        answer = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(pk)},
            ScanIndexForward=False,
            Limit=limit,
        )
        items: list[dict[str, Any]] = answer.get("Items", [])
        return items

    def history(self, limit: int = 20) -> list[HistoryEntry]:
        """The latest `limit` transitions, newest first."""
        return [self._history_entry(item) for item in self._latest(HISTORY_PK, limit)]

    @staticmethod
    def _history_entry(item: Mapping[str, Any]) -> HistoryEntry:
        return HistoryEntry(
            at=float(item["at"]["N"]),
            from_phase=item["from_phase"]["S"],
            to_phase=item["to_phase"]["S"],
            from_lease=Lease(
                LeaseSite(item["from_lease_site"]["S"]),
                int(item["from_lease_epoch"]["N"]),
                float(item["from_lease_changed_at"]["N"]),
            ),
            to_lease=Lease(
                LeaseSite(item["to_lease_site"]["S"]),
                int(item["to_lease_epoch"]["N"]),
                float(item["to_lease_changed_at"]["N"]),
            ),
            reasons=tuple(r["S"] for r in item["reasons"]["L"]),
            mode=item["mode"]["S"],
            instance=_get_s(item, "instance"),
            writer=_get_s(item, "writer") or "",
        )

    def restored_history(self, limit: int = 20) -> list[RestoredEntry]:
        """The latest `limit` restored-state reports, newest first."""
        return [
            RestoredEntry(
                at=float(item["at"]["N"]),
                site=item["site"]["S"],
                workload=item["workload"]["S"],
                restored_epoch=int(item["restored_epoch"]["N"]),
                previous_epoch=None if _get_f(item, "previous_epoch") is None else _get_i(item, "previous_epoch"),
                lease_epoch=_get_i(item, "lease_epoch"),
            )
            for item in self._latest(STATE_HISTORY_PK, limit)
        ]

    def record_restored(self, entry: RestoredEntry) -> None:
        """One history item for a restored-state report (1 write unit, only when a site reports a
        new epoch for a workload). A copy already stored is left as it is. StoreUnavailable when
        DynamoDB cannot be reached: the caller logs it, the heartbeat stays accepted."""
        item = {
            "pk": _s(STATE_HISTORY_PK),
            "sk": _s(f"{format_ts(entry.at)}#{entry.site}#{entry.workload}"),
            "at": _n(entry.at),
            "site": _s(entry.site),
            "workload": _s(entry.workload),
            "restored_epoch": _n(entry.restored_epoch),
            "previous_epoch": _opt_n(entry.previous_epoch),
            "lease_epoch": _n(entry.lease_epoch),
            "expires_at": _n(int(entry.at + self._history_ttl_s)),
        }
        try:
            self._call("put_item", TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except _ConditionFailed:
            return

    # -- writes

    def save(
        self,
        expected_version: int,
        state: ControlState,
        transition: Transition | None,
        *,
        instance: InstanceState | None = None,
        unchanged: SiteUnchanged | None = None,
    ) -> bool:
        """Conditional write of the control item, in one transaction with the transition's history
        item and the `unchanged` guard when given. False when a condition failed: then nothing was
        written, and `last_conflict` says which."""
        if state.version != expected_version + 1:
            raise ValueError(f"state.version must be {expected_version + 1}, got {state.version}")
        self._local.conflict = None
        now = self._clock()
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": control_to_item(state, updated_at=now, writer=self._writer),
        }
        if expected_version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :expected"
            put["ExpressionAttributeValues"] = {":expected": _n(expected_version)}
        items: list[dict[str, Any]] = [{"Put": put}]
        what = [f"the control item is no longer at version {expected_version}"]
        if transition is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": self._history_item(state, transition, instance),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            what.append("the history item exists already")
        if unchanged is not None:
            key = _site_key(unchanged.site.value)
            if unchanged.received_at is None:
                check: dict[str, Any] = {"TableName": self.table_name, "Key": key}
                check["ConditionExpression"] = "attribute_not_exists(pk)"
                items.append({"ConditionCheck": check})
            else:
                # The site's item must still hold the heartbeat read, and gets this version as its
                # fence: a heartbeat of that site that read the item before this write, and so
                # would answer with the lease this write takes away, cannot be written after it
                # (accept_heartbeat's condition names the fence it read).
                fence = {
                    "TableName": self.table_name,
                    "Key": key,
                    "UpdateExpression": f"SET {FENCE} = :fence",
                    "ConditionExpression": "received_at = :seen",
                    "ExpressionAttributeValues": {":seen": _n(unchanged.received_at), ":fence": _n(state.version)},
                }
                items.append({"Update": fence})
            what.append(f"a heartbeat from the {unchanged.site.value} arrived after the state was read")
        try:
            if len(items) == 1:
                self._call("put_item", **put)
            else:
                self._call("transact_write_items", TransactItems=items)
        except _ConditionFailed as failed:
            codes = failed.codes or ["ConditionalCheckFailed"]
            self._local.conflict = "; ".join(
                w for w, c in zip(what, codes + ["None"] * len(what), strict=False) if c == "ConditionalCheckFailed"
            )
            return False
        return True

    def _history_item(
        self, state: ControlState, transition: Transition, instance: InstanceState | None
    ) -> dict[str, Any]:
        t = transition
        return {
            "pk": _s(HISTORY_PK),
            "sk": _s(history_sort_key(t.at, t.to_lease.epoch, state.version)),
            "at": _n(t.at),
            "from_phase": _s(t.from_phase.value),
            "to_phase": _s(t.to_phase.value),
            "from_lease_site": _s(t.from_lease.site.value),
            "from_lease_epoch": _n(t.from_lease.epoch),
            "from_lease_changed_at": _n(t.from_lease.changed_at),
            "to_lease_site": _s(t.to_lease.site.value),
            "to_lease_epoch": _n(t.to_lease.epoch),
            "to_lease_changed_at": _n(t.to_lease.changed_at),
            "reasons": {"L": [_s(r[:1000]) for r in t.reasons]},
            "mode": _s(state.mode.value),
            "instance": _opt_s(None if instance is None else instance.value),
            "writer": _s(self._writer),
            "version": _n(state.version),
            "expires_at": _n(int(t.at + self._history_ttl_s)),
        }

    def record_heartbeat(self, hb: Heartbeat, received_at: float, *, replay_window_s: float = 60.0) -> SiteRecord:
        """accept_heartbeat() at a fixed time, returning the record (tests, the CLI's fixtures)."""
        return self.accept_heartbeat(hb, lambda: received_at, replay_window_s=replay_window_s).record

    def accept_heartbeat(
        self, hb: Heartbeat, clock: Callable[[], float], *, replay_window_s: float = 60.0
    ) -> AcceptedHeartbeat:
        """Record a heartbeat that passed every check needing no state: read, judge, write once.

        Reads the control item and both site items (one consistent BatchGetItem), applies the
        replay guard (`next_boots`), then writes the site item with one conditional PutItem (1
        write unit, docs/cost.md): the item must still be the one read, fence included. A
        control write that takes the lease away from this site sets that fence (save() with
        SiteUnchanged); if one landed between this read and this write, the write fails and the
        heartbeat is judged again on a fresh read, so the lease returned in `state` is never one
        already taken from the site. A control write that takes nothing from the site does not
        stop the heartbeat: its answer then lags by that write, towards less lease, never more.
        A site's very first heartbeat (no item to carry a fence) is written in a transaction
        that checks the control item's version instead, as every heartbeat was before.

        Nothing is written before every read succeeded, and the one write is the last store
        call: a failure (StoreUnavailable) or a refusal (HeartbeatReplay) leaves the table as it
        was. `received_at` is taken after the read and grows with every write of the site's item.
        """
        site = Site(hb.site)
        for _ in range(_RECORD_ATTEMPTS):
            control_item, site_items = self._load_items()
            previous = site_items.get(site.value)
            received_at = clock()
            last: SiteRecord | None = None
            if previous is None:
                steady_since, count, boots = received_at, 1, {}
            else:
                last = site_from_item(previous)
                received_at = max(received_at, last.received_at + 0.001)  # strictly later than the item read
                steady_since = steady_since_after(last, received_at, self._steady_gap_s)
                count = last.count + 1
                boots = _boots_from_item(previous)
            boots = next_boots(site.value, boots, hb, received_at, replay_window_s)
            record = SiteRecord(
                site=site,
                sent_at=hb.sent_at,
                received_at=received_at,
                workload=hb.workload,
                epoch_seen=hb.epoch_seen,
                ready=hb.ready,
                steady_since=steady_since,
                count=count,
                state_restored=hb.state_restored,
            )
            item = {
                **_site_key(site.value),
                "sent_at": _n(hb.sent_at),
                "received_at": _n(received_at),
                "workload": _s(hb.workload),
                "epoch_seen": _n(hb.epoch_seen),
                "ready": {"BOOL": hb.ready},
                "steady_since": _n(steady_since),
                "count": _n(count),
                "seq": _n(hb.seq),
                "agent": _s(hb.agent),
                "boot": _opt_s(hb.boot),
                "boots": _boots_to_item(boots),
            }
            if hb.state_restored:
                item["state_restored"] = {"M": {name: _n(epoch) for name, epoch in hb.state_restored}}
            put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
            first: dict[str, Any] | None = None
            if previous is None:
                # The site's first heartbeat ever: no item to carry a fence yet, so the control
                # item must still be at the version read (a transaction, once per site).
                put["ConditionExpression"] = "attribute_not_exists(pk)"
                first = {"TableName": self.table_name, "Key": CONTROL_KEY}
                if control_item is None:
                    first["ConditionExpression"] = "attribute_not_exists(pk)"
                else:
                    first["ConditionExpression"] = "version = :version"
                    first["ExpressionAttributeValues"] = {":version": control_item["version"]}
            elif FENCE in previous:
                # The exact item read, fence included: the write replaces what was read or nothing.
                item[FENCE] = previous[FENCE]
                put["ConditionExpression"] = f"received_at = :previous AND {FENCE} = :fence"
                put["ExpressionAttributeValues"] = {":previous": previous["received_at"], ":fence": previous[FENCE]}
            else:
                put["ConditionExpression"] = f"received_at = :previous AND attribute_not_exists({FENCE})"
                put["ExpressionAttributeValues"] = {":previous": previous["received_at"]}
            try:
                if first is None:
                    self._call("put_item", **put)
                else:
                    self._call("transact_write_items", TransactItems=[{"Put": put}, {"ConditionCheck": first}])
            except (_ConditionFailed, _Contention):
                continue  # a heartbeat of this site, or a write fencing it, landed in between: read again
            state = ControlState() if control_item is None else control_from_item(control_item)
            records = {s: site_from_item(i) for s, i in site_items.items()}
            records[site.value] = record
            return AcceptedHeartbeat(
                record, state, records.get(Site.PRIMARY.value), records.get(Site.STANDBY.value), previous=last
            )
        raise StoreUnavailable(f"heartbeat of {site.value}: too much write contention on the state table")

    # -- plumbing

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        try:
            return dict(getattr(self._client, operation)(**kwargs))
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed() from None
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    raise _ConditionFailed([str(r.get("Code")) for r in reasons]) from None
                if any(r.get("Code") == "TransactionConflict" for r in reasons):
                    raise _Contention(f"DynamoDB {operation} failed: TransactionConflict") from exc
            raise StoreUnavailable(f"DynamoDB {operation} failed: {code or type(exc).__name__}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB {operation} failed: {type(exc).__name__}") from exc


class _Contention(StoreUnavailable):
    """Internal: a transaction lost to another one in progress on one of its items. Callers that
    retry on a lost condition retry on it too; to everyone else it is StoreUnavailable."""


class _ConditionFailed(Exception):
    """Internal: a conditional write lost; `codes` are a transaction's per-item reasons."""

    def __init__(self, codes: list[str] | None = None) -> None:
        super().__init__("condition failed")
        self.codes = codes or []
