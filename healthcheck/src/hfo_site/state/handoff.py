"""The fencing rules of the state handoff (docs/state-handoff.md#fencing).

A lease holder of epoch E first **claims** the state (before its bot starts): it restores the
snapshot the manifest names, then re-stamps the manifest with its own epoch, conditionally on
the ETag it read. From then on it **publishes**: each upload is a new, never-overwritten
snapshot under its epoch's prefix, then a conditional manifest write pointing at it.

Every manifest write goes through ``commit``: refused before any request when the manifest read
is from a newer epoch (``Fenced``), and sent with ``If-Match`` (``If-None-Match: *`` for the very
first), so a manifest that changed between the read and the write refuses it. No clock takes
part in any decision. Once a write of its own is accepted, ``commit`` tags the snapshot the
replaced manifest named superseded (best effort), so the bucket's lifecycle expires it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hfo_site.state.archive import DEFAULT_MAX_UNPACKED_BYTES, pack, unpack
from hfo_site.state.errors import Conflict, CorruptSnapshot, Fenced, NotClaimed, StateError
from hfo_site.state.manifest import Manifest, SnapshotRef, check_epoch, check_site, new_snapshot_key
from hfo_site.state.store import DEFAULT_MAX_SNAPSHOT_BYTES, Observed, PreconditionFailed, StateStore

Clock = Callable[[], datetime]

log = logging.getLogger("hfo_site.state")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(clock: Clock) -> str:
    return clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Claimed:
    """The outcome of a claim: the manifest now stored under the claimer's epoch and its ETag,
    the epoch under which the restored snapshot had been uploaded (what status and history
    report as "restored epoch N's state"), and how many files were restored. ``adopted``: there
    was no manifest at all, so the local directory became the first snapshot."""

    manifest: Manifest
    etag: str
    restored_epoch: int
    files: int
    adopted: bool


@dataclass(frozen=True)
class Published:
    manifest: Manifest
    etag: str


def commit(store: StateStore, observed: Observed, new: Manifest) -> str:
    """Write ``new`` over the manifest ``observed`` read, or refuse. Returns the new ETag.

    Fenced: the read (or, after a failed condition, a fresh read) shows a newer epoch.
    Conflict: the manifest changed meanwhile under the same or an older epoch (re-read, retry).
    A condition that failed because this very write already landed (a retried or duplicated
    request whose first answer was lost) is recognised by its ``write_id`` and is a success.

    After an accepted write only, the snapshot the replaced manifest named is tagged superseded
    (``_retire``); a refused write tags nothing."""
    stored = observed.manifest
    if stored is not None and stored.epoch > new.epoch:
        raise Fenced(stored.epoch, new.epoch)
    try:
        etag = store.write_manifest(new, if_match=observed.etag)
    except PreconditionFailed:
        now = store.read_manifest(new.workload)
        if now.manifest is None or now.manifest.write_id != new.write_id or now.etag is None:
            if now.manifest is not None and now.manifest.epoch > new.epoch:
                raise Fenced(now.manifest.epoch, new.epoch) from None
            epoch = "none" if now.manifest is None else str(now.manifest.epoch)
            raise Conflict(
                f"the manifest of {new.workload!r} changed since it was read (now at epoch {epoch}, "
                f"this writer at {new.epoch}); nothing was written"
            ) from None
        etag = now.etag
    _retire(store, stored, new)
    return etag


def _retire(store: StateStore, replaced: Manifest | None, new: Manifest) -> bool:
    """Tag the snapshot ``replaced`` named superseded, once ``new`` (this writer's accepted write)
    replaced it and names another snapshot; True when tagged. Best effort: a failure is logged
    (the key and the store's error code, never a credential) and the upload stays accepted; the
    untagged snapshot is then kept until someone deletes it.

    Safe whatever the timing (docs/state-handoff.md#bucket): it runs only after this writer's own
    conditional write was accepted, so ``replaced`` was the current manifest until that write and
    no manifest names its snapshot any more; no later accepted write can name it again (a publish
    names a fresh key, a claim re-stamps the pointer it reads, and a write carrying an older read
    is refused). A fenced writer's write is refused, so it never gets here."""
    if replaced is None or replaced.snapshot.key == new.snapshot.key:  # first write, or a claim's re-stamp
        return False
    key = replaced.snapshot.key
    try:
        store.tag_superseded(key)
    except StateError as exc:  # its messages name the key and the error code only
        log.warning(
            "superseded snapshot not tagged; it is kept until deleted by hand",
            extra={"workload": new.workload, "snapshot_key": key, "reason": str(exc)},
        )
        return False
    except Exception as exc:  # best effort: the manifest write was accepted
        log.warning(
            "superseded snapshot not tagged; it is kept until deleted by hand",
            extra={"workload": new.workload, "snapshot_key": key, "reason": type(exc).__name__},
        )
        return False
    return True


def restore(
    store: StateStore,
    manifest: Manifest,
    directory: Path,
    *,
    max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> int:
    """Make ``directory`` hold exactly the snapshot ``manifest`` names, checked against the
    manifest's size and sha256 first. CorruptSnapshot (directory untouched) if anything differs."""
    ref = manifest.snapshot
    data = store.get_snapshot(ref.key, max_bytes=max_snapshot_bytes)
    if len(data) != ref.size:
        raise CorruptSnapshot(f"snapshot {ref.key!r} has {len(data)} bytes, the manifest says {ref.size}")
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise CorruptSnapshot(f"snapshot {ref.key!r} does not match the manifest's sha256")
    return unpack(data, directory, max_unpacked_bytes=max_unpacked_bytes)


def _upload(store: StateStore, workload: str, epoch: int, directory: Path) -> tuple[SnapshotRef, int]:
    packed = pack(directory)
    key = new_snapshot_key(workload, epoch)
    try:
        store.put_snapshot(key, packed.data)
    except PreconditionFailed:  # a fresh random key already taken: never by a correct writer
        raise Conflict(f"snapshot key {key!r} already exists; nothing was written") from None
    return SnapshotRef(key=key, sha256=packed.sha256, size=packed.size), packed.files


def claim(
    store: StateStore,
    workload: str,
    epoch: int,
    site: str,
    directory: Path,
    *,
    clock: Clock = utc_now,
    max_attempts: int = 5,
    max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> Claimed:
    """Take the state over for the lease of ``epoch`` before the bot starts: restore the current
    snapshot into ``directory``, then re-stamp the manifest with ``epoch``. From the moment the
    re-stamp is stored, every write of an older epoch is refused.

    If an older holder publishes between this claim's read and its re-stamp (it was still alive,
    e.g. a failover from a partitioned primary), the re-stamp's condition fails and the claim
    starts over with the newer snapshot, at most ``max_attempts`` times (then Conflict). Claiming
    again under the same epoch (a restarted init container) restores without re-stamping."""
    check_epoch(epoch)
    check_site(site)
    for _ in range(max_attempts):
        observed = store.read_manifest(workload)
        stored = observed.manifest
        if stored is None:
            ref, files = _upload(store, workload, epoch, directory)
            new = Manifest(workload, epoch, ref, site, _stamp(clock), Manifest.new_write_id())
            try:
                etag = commit(store, observed, new)
            except Conflict:
                continue
            return Claimed(manifest=new, etag=etag, restored_epoch=epoch, files=files, adopted=True)
        if stored.epoch > epoch:
            raise Fenced(stored.epoch, epoch)
        files = restore(
            store, stored, directory, max_snapshot_bytes=max_snapshot_bytes, max_unpacked_bytes=max_unpacked_bytes
        )
        if stored.epoch == epoch:
            assert observed.etag is not None
            return Claimed(stored, observed.etag, stored.snapshot_epoch, files, adopted=False)
        new = Manifest(workload, epoch, stored.snapshot, site, _stamp(clock), Manifest.new_write_id())
        try:
            etag = commit(store, observed, new)
        except Conflict:
            continue
        return Claimed(manifest=new, etag=etag, restored_epoch=stored.snapshot_epoch, files=files, adopted=False)
    raise Conflict(f"could not claim the state of {workload!r} for epoch {epoch} in {max_attempts} attempts")


def publish(
    store: StateStore,
    workload: str,
    epoch: int,
    site: str,
    directory: Path,
    *,
    clock: Clock = utc_now,
) -> Published:
    """Upload ``directory`` as the new state of ``workload`` under ``epoch``. Refused, with
    nothing pointed at, when a newer epoch holds the manifest (Fenced), when this epoch has not
    claimed it (NotClaimed), or when the manifest changed meanwhile (Conflict). A refused upload
    may leave an unreferenced snapshot object under this epoch's prefix, never tagged (a refused
    writer cannot rule out that its write landed and a claim re-stamped it), so it is kept. An
    accepted one tags the snapshot it replaced superseded (``commit``)."""
    check_epoch(epoch)
    check_site(site)
    observed = store.read_manifest(workload)
    stored = observed.manifest
    if stored is None:
        raise NotClaimed(None, epoch)
    if stored.epoch > epoch:
        raise Fenced(stored.epoch, epoch)
    if stored.epoch < epoch:
        raise NotClaimed(stored.epoch, epoch)
    ref, _ = _upload(store, workload, epoch, directory)
    new = Manifest(workload, epoch, ref, site, _stamp(clock), Manifest.new_write_id())
    return Published(manifest=new, etag=commit(store, observed, new))
