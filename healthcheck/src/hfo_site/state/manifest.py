"""The state manifest and the object keys of the state store (docs/state-handoff.md#objects).

``state/<workload>/manifest.json`` names the current snapshot of one workload and the epoch it
was written under; snapshots live at ``state/<workload>/epochs/<epoch:012d>/<id>.tar.gz`` and
are never overwritten. Every manifest write carries a fresh ``write_id``, so two different
writes never have the same bytes, hence never the same ETag (no ABA on ``If-Match``).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from hfo_site.state.errors import CorruptManifest

MANIFEST_VERSION = 1
MAX_EPOCH = 10**12 - 1  # the key pads epochs to 12 digits, so they sort as they compare
_WORKLOAD = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SITE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SNAPSHOT_ID = re.compile(r"^[0-9a-f]{32}$")


def check_workload(workload: str) -> str:
    """A workload name is a DNS label (as a Kubernetes object name), so it is safe in a key."""
    if not isinstance(workload, str) or not _WORKLOAD.fullmatch(workload):
        raise ValueError(f"workload name {workload!r} is not a DNS label (a-z, 0-9 and '-', at most 63)")
    return workload


def check_epoch(epoch: int) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch {epoch!r} is not an integer between 0 and {MAX_EPOCH}")
    return epoch


def check_site(site: str) -> str:
    if not isinstance(site, str) or not _SITE.fullmatch(site):
        raise ValueError(f"site name {site!r} is not a short lowercase name")
    return site


def workload_prefix(workload: str) -> str:
    return f"state/{check_workload(workload)}/"


def manifest_key(workload: str) -> str:
    return f"{workload_prefix(workload)}manifest.json"


def epoch_prefix(workload: str, epoch: int) -> str:
    return f"{workload_prefix(workload)}epochs/{check_epoch(epoch):012d}/"


def new_snapshot_key(workload: str, epoch: int) -> str:
    return f"{epoch_prefix(workload, epoch)}{uuid.uuid4().hex}.tar.gz"


def snapshot_epoch(workload: str, key: str) -> int:
    """The epoch a snapshot key was written under; ValueError when the key is not one of this
    workload's snapshot keys."""
    prefix = f"{workload_prefix(workload)}epochs/"
    rest = key[len(prefix) :] if key.startswith(prefix) else ""
    epoch_part, _, name = rest.partition("/")
    if len(epoch_part) != 12 or not epoch_part.isdigit() or not name.endswith(".tar.gz"):
        raise ValueError(f"{key!r} is not a snapshot key of workload {workload!r}")
    if not _SNAPSHOT_ID.fullmatch(name[: -len(".tar.gz")]):
        raise ValueError(f"{key!r} is not a snapshot key of workload {workload!r}")
    return int(epoch_part)


@dataclass(frozen=True)
class SnapshotRef:
    """Where a snapshot is and what it must be: the manifest's pointer, checked on restore."""

    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The current state of one workload: the snapshot to restore, and the epoch of the lease
    holder that wrote this manifest (the snapshot may be older: a claim re-stamps the pointer)."""

    workload: str
    epoch: int
    snapshot: SnapshotRef
    writer_site: str
    written_at: str  # UTC, ISO 8601; for people only, never compared (clocks may jump)
    write_id: str

    def __post_init__(self) -> None:
        check_workload(self.workload)
        check_epoch(self.epoch)
        check_site(self.writer_site)
        if snapshot_epoch(self.workload, self.snapshot.key) > self.epoch:
            raise ValueError(f"snapshot {self.snapshot.key!r} is newer than the manifest's epoch {self.epoch}")
        if not _SHA256.fullmatch(self.snapshot.sha256):
            raise ValueError("snapshot sha256 is not 64 lowercase hex digits")
        size = self.snapshot.size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"snapshot size {size!r} is not a non-negative integer")

    @property
    def snapshot_epoch(self) -> int:
        """The epoch the current snapshot was uploaded under (the state's age, in leases)."""
        return snapshot_epoch(self.workload, self.snapshot.key)

    @staticmethod
    def new_write_id() -> str:
        return uuid.uuid4().hex

    def to_json(self) -> bytes:
        snapshot = {"key": self.snapshot.key, "sha256": self.snapshot.sha256, "size": self.snapshot.size}
        document = {
            "version": MANIFEST_VERSION,
            "workload": self.workload,
            "epoch": self.epoch,
            "snapshot": snapshot,
            "writer_site": self.writer_site,
            "written_at": self.written_at,
            "write_id": self.write_id,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, workload: str) -> Manifest:
        """Parse and validate; CorruptManifest (naming the field) on anything else."""
        try:
            document: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptManifest(f"manifest of {workload!r} is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise CorruptManifest(f"manifest of {workload!r} is not a JSON object")
        if document.get("version") != MANIFEST_VERSION:
            raise CorruptManifest(f"manifest of {workload!r} has version {document.get('version')!r}, not 1")
        try:
            raw = document["snapshot"]
            snapshot = SnapshotRef(key=_str(raw["key"]), sha256=_str(raw["sha256"]), size=raw["size"])
            manifest = cls(
                workload=_str(document["workload"]),
                epoch=document["epoch"],
                snapshot=snapshot,
                writer_site=_str(document["writer_site"]),
                written_at=_str(document["written_at"]),
                write_id=_str(document["write_id"]),
            )
        except (KeyError, TypeError) as exc:
            raise CorruptManifest(f"manifest of {workload!r} lacks or mistypes field {exc}") from None
        except ValueError as exc:
            raise CorruptManifest(f"manifest of {workload!r} is invalid: {exc}") from None
        if manifest.workload != workload:
            raise CorruptManifest(f"manifest at {manifest_key(workload)!r} names workload {manifest.workload!r}")
        return manifest


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value
