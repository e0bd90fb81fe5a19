"""Nonces: URL-safe random strings, fresh for every probe and every heartbeat."""

from __future__ import annotations

import re
import secrets

from hfo_protocol.errors import ProtocolError

NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")  # always fullmatch: `$` would let a trailing newline in
BOOT_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_nonce() -> str:
    """32 URL-safe characters (192 random bits)."""
    return secrets.token_urlsafe(24)


def check_nonce(value: object, field: str = "nonce") -> str:
    if not isinstance(value, str) or NONCE_RE.fullmatch(value) is None:
        raise ProtocolError("malformed", f"{field} must be 16-128 characters of [A-Za-z0-9_-]")
    return value


def check_boot_id(value: object, field: str = "boot") -> str:
    if not isinstance(value, str) or BOOT_RE.fullmatch(value) is None:
        raise ProtocolError("malformed", f"{field} must be 16-64 characters of [A-Za-z0-9_-]")
    return value


def new_boot_id() -> str:
    """22 URL-safe characters (128 random bits), drawn once per agent process."""
    return secrets.token_urlsafe(16)
