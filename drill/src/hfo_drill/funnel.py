"""The drill's stand-in for Tailscale Funnel: a TLS-terminating TCP proxy on 127.0.0.1 in front
of the laptop's health service, which the drill can cut without touching the laptop.

What it does, like Funnel does to a tailnet node's local port:

- terminates TLS with a certificate of the drill's throwaway CA (Funnel: a public certificate),
  then relays the bytes, both ways, to `127.0.0.1:<backend port>` over plain TCP;
- when the backend refuses the connection (the laptop's health service is down, the laptop is
  fine or gone), answers `502 Bad Gateway` itself, as Funnel does;
- when `dark` (the Funnel outage the drill plays), resets every connection as soon as it is
  accepted, before any TLS, and cuts the relayed connections that are open. The watchdog's probe
  sees `connect_refused` (docs/protocol.md: a reset is classed with a refusal), while the laptop,
  its agent and their heartbeats, which do not go through Funnel, carry on.

Not modelled: Funnel's `X-Forwarded-*` and `Tailscale-Funnel-Request` headers (a byte relay
adds no header; the health service then rate-limits by the proxy's address, 127.0.0.1, which is
what it does behind Funnel without HFO_CLIENT_IP_HEADER), and its relay through Tailscale's DERP
servers (latency).

Runs an asyncio loop in a thread of the drill; `set_dark()` and `stop()` are thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from dataclasses import dataclass

_CONNECT_TIMEOUT_S = 1.0
_HANDSHAKE_TIMEOUT_S = 5.0
_CHUNK = 65536
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 12\r\n"
    b"Connection: close\r\n\r\n"
    b"Bad Gateway\n"
)


@dataclass
class FunnelCounters:
    relayed: int = 0  # connections relayed to the backend
    bad_gateway: int = 0  # 502 answered because the backend refused
    reset: int = 0  # connections reset while dark
    cut: int = 0  # relayed connections cut when going dark


def _reset(sock: socket.socket | None) -> None:
    """Close with an RST rather than a FIN (SO_LINGER 0): the client sees the connection reset."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class FunnelProxy:
    def __init__(self, tls: ssl.SSLContext, backend_port: int, host: str = "127.0.0.1") -> None:
        self._tls = tls
        self.backend_port = backend_port
        self.host = host
        self.port = 0
        self.counters = FunnelCounters()
        self._dark = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/healthz"

    @property
    def dark(self) -> bool:
        return self._dark

    # -- lifecycle (any thread)

    def start(self, port: int = 0) -> FunnelProxy:
        self._thread = threading.Thread(target=self._run, args=(port,), name="funnel-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the Funnel stand-in did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._shutdown()))
        thread.join(timeout=10)

    def set_dark(self, dark: bool) -> None:
        """Go dark (reset every connection, cut the open ones) or come back (relay again)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the Funnel stand-in is not running")
        done = threading.Event()

        def apply() -> None:
            self._dark = dark
            if dark:
                for writer in list(self._open):
                    self.counters.cut += 1
                    _reset(writer.get_extra_info("socket"))
                    writer.transport.abort()
            done.set()

        loop.call_soon_threadsafe(apply)
        if not done.wait(5):
            raise TimeoutError("the Funnel stand-in did not change mode within 5 s")

    # -- the loop's thread

    def _run(self, port: int) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, port, reuse_address=True)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        asyncio.get_running_loop().stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._dark:
            self.counters.reset += 1
            _reset(writer.get_extra_info("socket"))
            writer.transport.abort()
            return
        self._open.add(writer)
        try:
            await self._serve(reader, writer)
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            pass  # a client that goes away or fails its handshake: nothing to relay
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(self._tls, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S)
        if self._dark:  # went dark during the handshake
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.backend_port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            self.counters.bad_gateway += 1
            await self._drain_request(reader)
            writer.write(BAD_GATEWAY)
            with contextlib.suppress(OSError):
                await writer.drain()
            return
        self.counters.relayed += 1
        self._open.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._open.discard(up_writer)
            up_writer.transport.abort()

    @staticmethod
    async def _drain_request(reader: asyncio.StreamReader) -> None:
        """Read the request head (bounded) before answering, so the client is not reset mid-send."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1.0)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()
                else:
                    dst.close()
