"""The one way every party reads an untrusted JSON body (docs/protocol.md#json).

Strict where the standard library is lenient, so that no two readers of one body can disagree and
no body can crash a reader:

- the body must be UTF-8 (``json.loads`` on bytes would also accept UTF-16 and UTF-32);
- ``NaN``, ``Infinity`` and ``-Infinity`` are refused (they are not JSON, RFC 8259);
- a member given twice in one object is refused (parsers differ on which one wins);
- nesting too deep for the parser (CPython's recursion limit, about 1000 levels) is refused
  instead of raising RecursionError.

Every refusal is a ProtocolError with the caller's documented code.
"""

from __future__ import annotations

import json
from typing import Any

from hfo_protocol.errors import ProtocolError

# The largest integer every JSON reader represents exactly (IEEE 754 doubles) and DynamoDB stores.
MAX_INT = 2**53 - 1


class _Refused(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"member {key[:32]!r} is given twice")
        out[key] = value
    return out


def loads(body: bytes, what: str, code: str) -> Any:
    """Parse ``body`` strictly; raise ProtocolError(code, ...) naming ``what`` otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(code, f"{what} is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_members)
    except json.JSONDecodeError:
        raise ProtocolError(code, f"{what} is not JSON") from None
    except _Refused as exc:
        raise ProtocolError(code, f"{what}: {exc}") from None
    except RecursionError:
        raise ProtocolError(code, f"{what} is nested too deeply") from None


def loads_object(body: bytes, what: str, code: str) -> dict[str, Any]:
    doc = loads(body, what, code)
    if not isinstance(doc, dict):
        raise ProtocolError(code, f"{what} is not a JSON object")
    return doc


def is_version(value: object, version: int) -> bool:
    """``"v": true`` is not version 1, nor is ``1.0``: the member must be that exact integer."""
    return type(value) is int and value == version


def bounded_int(value: object, minimum: int = 0, maximum: int = MAX_INT) -> bool:
    return type(value) is int and minimum <= value <= maximum
