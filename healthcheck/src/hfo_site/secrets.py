"""Secrets mounted as files (Kubernetes Secret volumes), re-read when the file changes.

Kubernetes updates a mounted Secret in place when it is rotated, so the keyring follows a key
rotation (docs/protocol.md) without a restart. A changed file that does not parse keeps the
previous value and logs why; the value itself never reaches a log line or an exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from hfo_protocol import Keyring

from hfo_site.config import ConfigError

log = logging.getLogger("hfo_site.secrets")

T = TypeVar("T")
MIN_TOKEN_CHARS = 16
MAX_SECRET_BYTES = 64 * 1024


class SecretError(ValueError):
    """A secret file is missing or malformed. The message names the file, never its content."""


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"{path}: is {len(data)} bytes; at most {MAX_SECRET_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{path}: is not UTF-8 text") from None


def parse_keyring(path: Path) -> Keyring:
    try:
        return Keyring.from_secret_string(_read(path))
    except ValueError as exc:
        # Keyring errors name the problem (length, key id), never the secret.
        raise SecretError(f"{path}: {exc}") from None


def parse_token(path: Path) -> bytes:
    token = _read(path).strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise SecretError(f"{path}: the details token must be at least {MIN_TOKEN_CHARS} characters")
    if any(ch.isspace() for ch in token):
        raise SecretError(f"{path}: the details token must not contain whitespace")
    return token.encode("utf-8")


class SecretFile(Generic[T]):
    """The parsed value of a secret file, refreshed by ``reload_if_changed``."""

    def __init__(self, path: Path, parse: Callable[[Path], T], variable: str) -> None:
        self.path = path
        self._parse = parse
        self._stamp = self._fingerprint()
        try:
            self._value = parse(path)
        except SecretError as exc:  # at start there is no previous value to keep: refuse to run
            raise ConfigError(variable, str(exc)) from None

    def __repr__(self) -> str:
        return f"SecretFile(path={str(self.path)!r})"

    def _fingerprint(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @property
    def value(self) -> T:
        return self._value

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; True when a new value was taken."""
        stamp = self._fingerprint()
        if stamp is None or stamp == self._stamp:
            return False
        try:
            value = self._parse(self.path)
        except SecretError as exc:
            log.error("secret file changed but is not usable; keeping the previous value", extra={"error": str(exc)})
            return False
        self._stamp = stamp
        self._value = value
        log.info("secret file reloaded", extra={"path": str(self.path)})
        return True


def parse_bot_token(path: Path) -> str:
    """A Discord bot token alone (the caller adds ``Bot ``). The error names the file, never the content."""
    token = _read(path).strip()
    if not token:
        raise SecretError(f"{path}: the Discord bot token file is empty")
    if token.lower().startswith(("bot ", "bearer ")):
        raise SecretError(f"{path}: must hold the token alone, without a 'Bot ' or 'Bearer ' prefix")
    if any(ch.isspace() for ch in token) or not token.isascii() or not token.isprintable():
        raise SecretError(f"{path}: the Discord bot token must be one line of printable ASCII without spaces")
    return token
