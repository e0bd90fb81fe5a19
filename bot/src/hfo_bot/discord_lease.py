"""Where the lease gate meets discord.py (docs/kubernetes.md#lease-aware-bot).

discord.py opens every gateway connection through ``client.http.ws_connect`` and talks on the socket it
returns; it sends IDENTIFY (op 2) and RESUME (op 6) with ``send_str`` and reads every event with
``receive``. So the gate sits on exactly those three calls, with no fork of the library:

- ``ws_connect``: no connection at all unless the site holds a lease fresh for more than the margin;
- ``send_str`` of IDENTIFY or RESUME: the agent is asked again right before, every time;
- ``receive``: every event waits while the gate does not admit it (after a pause, or once the grant is out
  of date) until the agent confirms; refused, the socket is closed instead and the event is never handled.

REST calls (answers to commands) go through ``client.http.request``, gated by ``admit`` as well, so a command
handler that was running when the process froze does not answer after the thaw without a confirmation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from hfo_bot.lease_gate import LeaseGate, LeaseUnavailable

log = logging.getLogger("hfo_bot.lease")

OP_IDENTIFY = 2
OP_RESUME = 6
_SESSION_OPS = {OP_IDENTIFY: "IDENTIFY", OP_RESUME: "RESUME"}
CLOSE_CODE_NO_LEASE = 4000  # a code Discord lets a session resume after; the next session is gated anyway


def _op(data: str) -> int | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    op = doc.get("op") if isinstance(doc, dict) else None
    return op if isinstance(op, int) else None


class GatedSocket:
    """The gateway socket, with IDENTIFY/RESUME and every received event behind the lease gate."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, gate: LeaseGate) -> None:
        self._socket = socket
        self._gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)

    async def send_str(self, data: str, compress: int | None = None) -> None:
        what = _SESSION_OPS.get(_op(data) or -1)
        if what is not None:
            if not await self._gate.may_connect(f"before {what}"):
                await self._socket.close(code=CLOSE_CODE_NO_LEASE)
                raise LeaseUnavailable(f"{what} not sent: {self._gate.book.connect_refusal()}")
            self._gate.sessions[what] += 1
            log.info(
                "sending %s: lease of epoch %s fresh for %.1fs",
                what,
                self._gate.book.grant.epoch if self._gate.book.grant else "?",
                self._gate.book.remaining(),
            )
        await self._socket.send_str(data, compress=compress)

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        msg = await self._socket.receive(timeout)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY) and not await self._gate.admit():
            self._gate.dropped += 1
            log.warning("event not handled and gateway closed: %s", self._gate.book.reason)
            await self._socket.close(code=CLOSE_CODE_NO_LEASE)
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        return msg


def install(http: Any, gate: LeaseGate) -> None:
    """Put the gate on a discord.py ``HTTPClient``'s websocket and REST entry points (once)."""
    if getattr(http, "_hfo_lease_gate", None) is gate:
        return
    ws_connect: Callable[..., Awaitable[aiohttp.ClientWebSocketResponse]] = http.ws_connect
    request: Callable[..., Awaitable[Any]] = http.request

    async def gated_ws_connect(url: str, *, compress: int = 0) -> Any:
        if not gate.book.may_connect() and not await gate.may_connect("before connecting to the gateway"):
            raise LeaseUnavailable(f"gateway connection not opened: {gate.book.connect_refusal()}")
        return GatedSocket(await ws_connect(url, compress=compress), gate)

    async def gated_request(route: Any, **kwargs: Any) -> Any:
        if not await gate.admit():
            raise LeaseUnavailable(f"{route.method} {route.path} not sent: {gate.book.reason}")
        return await request(route, **kwargs)

    http.ws_connect = gated_ws_connect
    http.request = gated_request
    http._hfo_lease_gate = gate
