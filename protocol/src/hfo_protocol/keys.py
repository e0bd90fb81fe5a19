"""The shared HMAC keyring, with rotation: one active key signs, every listed key verifies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MIN_KEY_BYTES = 32
_KID = re.compile(r"[A-Za-z0-9._-]{1,32}")  # fullmatch
DEFAULT_KID = "default"


@dataclass(frozen=True)
class Keyring:
    """Key id -> secret bytes. ``repr`` and ``str`` never show the secrets."""

    active_kid: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("keyring: no keys")
        for kid, key in self.keys.items():
            if not isinstance(kid, str) or _KID.fullmatch(kid) is None:
                raise ValueError(f"keyring: key id {kid!r} must match {_KID.pattern}")
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"keyring: key {kid!r} is {len(key)} bytes; at least {MIN_KEY_BYTES} are required")
        if self.active_kid not in self.keys:
            raise ValueError(f"keyring: active key id {self.active_kid!r} is not among the keys")

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_kid]

    def __str__(self) -> str:
        return f"Keyring(active_kid={self.active_kid!r}, kids={sorted(self.keys)!r})"

    @classmethod
    def from_secret_string(cls, secret: str) -> Keyring:
        """Parse the secret as stored in AWS Secrets Manager or a Kubernetes Secret.

        Either a plain string of at least 32 bytes (key id ``default``), or JSON
        ``{"active": "k2", "keys": {"k2": "...", "k1": "..."}}`` for rotation.
        Error messages name the problem, never the secret.
        """
        text = secret.strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"keyring: secret looks like JSON but does not parse (line {exc.lineno})") from None
            except RecursionError:
                raise ValueError("keyring: secret looks like JSON but is nested too deeply") from None
            if (
                not isinstance(doc, dict)
                or not isinstance(doc.get("keys"), dict)
                or not isinstance(doc.get("active"), str)
            ):
                raise ValueError('keyring: JSON secret must be {"active": "<kid>", "keys": {"<kid>": "<secret>", ...}}')
            keys: dict[str, bytes] = {}
            for kid, value in doc["keys"].items():
                if not isinstance(value, str):
                    raise ValueError(f"keyring: key {kid!r} must be a string")
                keys[kid] = value.encode("utf-8")
            return cls(active_kid=doc["active"], keys=keys)
        return cls(active_kid=DEFAULT_KID, keys={DEFAULT_KID: text.encode("utf-8")})
