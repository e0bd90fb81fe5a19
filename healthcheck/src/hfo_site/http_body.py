"""Reading an HTTP body to its end, within a size cap (issue 10, bug 1).

aiohttp's ``StreamReader.read(n)`` returns what is buffered so far, not n bytes: an answer that
arrives in two TCP segments (or two TLS records) 50 ms apart came back cut in half. Every body
this package reads goes through ``read_capped``.
"""

from __future__ import annotations

from typing import Protocol


class _Stream(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


async def read_capped(stream: _Stream, cap: int) -> bytes:
    """Read until the end of the body or until more than ``cap`` bytes have come.

    Returns at most ``cap + 1`` bytes: a result longer than ``cap`` means "over the cap" and the
    rest was left unread (the caller closes the connection, it never reads a flood into memory).
    """
    buf = bytearray()
    while len(buf) <= cap:
        chunk = await stream.read(cap + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)
