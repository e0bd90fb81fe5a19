"""The interface every workload backend implements (docs/site.md#backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class WorkloadError(RuntimeError):
    """A workload operation failed; the message says what to fix (never holds a credential)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(WorkloadError):
    """The object changed between our read and our write (Kubernetes 409)."""


@dataclass(frozen=True)
class Observation:
    state: str  # running | starting | stopping | stopped | unknown (hfo_protocol WORKLOAD_STATES)
    ready: bool  # the site could run the workload now
    detail: str = ""  # why, for logs and the token-gated health details; never a secret


class WorkloadBackend(Protocol):
    name: str

    async def start(self) -> None:
        """Run the workload (and keep it running). Idempotent. Raises WorkloadError."""
        ...

    async def stop(self) -> None:
        """Stop the workload and return once it has stopped (or the stop grace ran out and it was
        killed). Idempotent. Raises WorkloadError when the stop could not be requested."""
        ...

    async def observe(self) -> Observation:
        """What runs now, and whether the site could run it. Never raises."""
        ...

    async def close(self) -> None:
        """Release clients. Does not stop the workload."""
        ...
