"""Errors carry a stable machine-readable ``code`` and a human message that never holds a secret."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message that does not follow docs/protocol.md. ``code`` is stable and documented."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SignatureError(ProtocolError):
    """Codes: ``missing``, ``malformed``, ``unknown_key``, ``mismatch``."""
