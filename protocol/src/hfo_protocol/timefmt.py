"""RFC 3339 UTC timestamps with millisecond precision, as every message carries them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hfo_protocol.errors import ProtocolError

# [0-9], not \d (which also matches other scripts' digits); always fullmatch (`$` lets "\n" in).
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")


def format_ts(epoch_seconds: float) -> str:
    """1732370400.1234 -> '2024-11-23T14:00:00.123Z'."""
    dt = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ts(value: object, field: str) -> float:
    """Parse an RFC 3339 UTC ('Z') timestamp into epoch seconds, or raise ProtocolError('malformed')."""
    if not isinstance(value, str) or _RFC3339_UTC.fullmatch(value) is None:
        raise ProtocolError("malformed", f"{field} must be an RFC 3339 UTC timestamp like 2026-01-31T12:00:00.000Z")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ProtocolError("malformed", f"{field} is not a valid date and time") from None
