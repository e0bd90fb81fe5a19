"""Epoch-fenced state of the gated workloads (issue 14; design: docs/state-handoff.md).

A lease holder claims a workload's state before its bot starts and then publishes snapshots of
its state directory; a holder whose epoch has been superseded can never overwrite the newer
holder's state. ``S3StateStore`` keeps it in any S3-compatible bucket.
"""

from hfo_site.state.archive import pack, unpack
from hfo_site.state.errors import (
    Conflict,
    CorruptManifest,
    CorruptSnapshot,
    Fenced,
    NotClaimed,
    StateError,
    StoreUnavailable,
    UnsafeArchive,
)
from hfo_site.state.handoff import Claimed, Published, claim, commit, publish, restore
from hfo_site.state.manifest import Manifest, SnapshotRef, manifest_key
from hfo_site.state.store import (
    SUPERSEDED_TAG_KEY,
    SUPERSEDED_TAG_VALUE,
    Observed,
    PreconditionFailed,
    S3StateStore,
    StateStore,
)

__all__ = [
    "SUPERSEDED_TAG_KEY",
    "SUPERSEDED_TAG_VALUE",
    "Claimed",
    "Conflict",
    "CorruptManifest",
    "CorruptSnapshot",
    "Fenced",
    "Manifest",
    "NotClaimed",
    "Observed",
    "PreconditionFailed",
    "Published",
    "S3StateStore",
    "SnapshotRef",
    "StateError",
    "StateStore",
    "StoreUnavailable",
    "UnsafeArchive",
    "claim",
    "commit",
    "manifest_key",
    "pack",
    "publish",
    "restore",
    "unpack",
]
