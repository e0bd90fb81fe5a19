"""Nonces: URL-safe random strings, fresh for every probe and every heartbeat."""

from __future__ import annotations

import re
import secrets

from hfo_protocol.errors import ProtocolError

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def new_nonce() -> str:
    """32 URL-safe characters (192 random bits)."""
    return secrets.token_urlsafe(24)


def check_nonce(value: object, field: str = "nonce") -> str:
    if not isinstance(value, str) or not NONCE_RE.match(value):
        raise ProtocolError("malformed", f"{field} must be 16-128 characters of [A-Za-z0-9_-]")
    return value
