"""The state store's errors: each names what was refused and why, never a credential or a URL's
signature (docs/state-handoff.md#errors). All derive from ``StateError``."""

from __future__ import annotations


class StateError(Exception):
    """Base of every refusal or failure of the state store."""


class Fenced(StateError):
    """A newer epoch holds the state: this writer's lease was superseded and it must stop writing."""

    def __init__(self, stored_epoch: int, own_epoch: int) -> None:
        self.stored_epoch = stored_epoch
        self.own_epoch = own_epoch
        super().__init__(
            f"fenced: the manifest is at epoch {stored_epoch}, newer than this writer's epoch {own_epoch}; "
            "a newer lease holder has claimed the state, nothing was written"
        )


class NotClaimed(StateError):
    """A holder tried to publish before claiming the state under its own epoch."""

    def __init__(self, stored_epoch: int | None, own_epoch: int) -> None:
        self.stored_epoch = stored_epoch
        self.own_epoch = own_epoch
        stored = "no manifest" if stored_epoch is None else f"the manifest is at epoch {stored_epoch}"
        super().__init__(
            f"not claimed: {stored}, but this writer holds epoch {own_epoch}; "
            "claim (restore and re-stamp) the state before publishing"
        )


class Conflict(StateError):
    """Another write of the manifest won a race this writer cannot settle by itself (same epoch,
    or a conditional-request conflict reported by the store). Nothing of this writer was stored
    in the manifest; re-read before trying again."""


class CorruptSnapshot(StateError):
    """A snapshot does not match its manifest (size or sha256) or is not a readable archive."""


class UnsafeArchive(CorruptSnapshot):
    """An archive member would land outside the target directory, is a link or a device, or the
    archive is larger than the configured cap. Nothing of it was extracted into the target."""


class CorruptManifest(StateError):
    """The manifest object is not a valid manifest of this workload."""


class StoreUnavailable(StateError):
    """The object store failed or refused the request for another reason (access, network)."""
