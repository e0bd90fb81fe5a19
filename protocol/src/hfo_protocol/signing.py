"""HMAC-SHA256 signatures over length-prefixed parts, carried in one HTTP header.

Header value: ``v1;kid=<key id>;sig=<base64url, no padding>``.
Signed bytes: ``b"hfo1\\0" + purpose + b"\\0"`` then, for each part, its length as
4 big-endian bytes followed by the part. The purpose ("health", "heartbeat", "lease", "renewal")
keeps a signature made for one message kind from being accepted as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from hfo_protocol.errors import SignatureError
from hfo_protocol.keys import Keyring

SIGNATURE_HEADER = "X-HFO-Signature"
PURPOSES = frozenset({"health", "heartbeat", "lease", "renewal"})
_HEADER = re.compile(r"v1;kid=([A-Za-z0-9._-]{1,32});sig=([A-Za-z0-9_-]{43})")  # fullmatch


def _message(purpose: str, parts: tuple[bytes, ...]) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signature purpose {purpose!r}")
    out = bytearray(b"hfo1\0" + purpose.encode("ascii") + b"\0")
    for part in parts:
        out += len(part).to_bytes(4, "big")
        out += part
    return bytes(out)


def _mac(key: bytes, purpose: str, parts: tuple[bytes, ...]) -> bytes:
    return hmac.new(key, _message(purpose, parts), hashlib.sha256).digest()


def sign(keyring: Keyring, purpose: str, *parts: bytes) -> str:
    """Return the header value signing ``parts`` with the keyring's active key."""
    mac = _mac(keyring.active_key, purpose, parts)
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
    return f"v1;kid={keyring.active_kid};sig={sig}"


def verify(keyring: Keyring, header: str | None, purpose: str, *parts: bytes) -> str:
    """Check a header value; return the key id used. Raise SignatureError otherwise."""
    if header is None or header == "":
        raise SignatureError("missing", f"no {SIGNATURE_HEADER} header")
    match = _HEADER.fullmatch(header.strip())
    if match is None:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} is not of the form v1;kid=<id>;sig=<base64url>")
    kid, sig = match.groups()
    key = keyring.keys.get(kid)
    if key is None:
        raise SignatureError("unknown_key", f"signature made with unknown key id {kid!r}")
    given = base64.urlsafe_b64decode(sig + "=")
    if not hmac.compare_digest(given, _mac(key, purpose, parts)):
        raise SignatureError("mismatch", "signature does not match the message")
    return kid
