"""Real HTTPS servers on 127.0.0.1 with a throwaway CA (trustme), for tests of HTTP clients.

- ``TestCA``: a fresh certificate authority, its bundle written to a file a client can trust,
  and leaf certificates for any names (``127.0.0.1`` by default).
- ``HttpsServer``: a threaded HTTPS server whose answer each test sets (``server.behaviour``),
  and which records every request it got. A behaviour receives an ``Exchange`` and may reply
  normally, write raw bytes, drip slowly or hang (every wait ends when the server stops).
- ``SilentTcpServer``: accepts TCP connections and never says a word (no TLS handshake).
- ``unaccepting_port()``: a listening socket whose accept queue is full, so a new connection
  attempt on loopback is never completed (the kernel drops the SYN): a connect timeout.

Everything binds to 127.0.0.1, every wait is bounded, and ``close()`` unblocks every thread.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

LOOPBACK = "127.0.0.1"
IO_TIMEOUT_S = 10.0  # safety net on every server-side socket operation


class TestCA:
    """A throwaway CA; ``bundle`` is a PEM file a client can pass as its CA bundle."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path | None = None) -> None:
        self.ca = trustme.CA()
        self._dir = directory or Path(tempfile.mkdtemp(prefix="hfo-ca-"))
        self.bundle = self._dir / f"ca-{id(self):x}.pem"
        self.ca.cert_pem.write_to_path(str(self.bundle))

    def leaf(self, *names: str) -> trustme.LeafCert:
        return self.ca.issue_cert(*(names or (LOOPBACK,)))

    def server_context(self, *names: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.leaf(*names).configure_cert(ctx)
        return ctx


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class Exchange:
    """One request being answered. Methods return False once the client has gone away."""

    def __init__(self, handler: _Handler, request: Request) -> None:
        self._handler = handler
        self.request = request
        self.server: HttpsServer = handler.server.owner

    def send_head(self, status: int, headers: Mapping[str, str] | None = None) -> bool:
        h = self._handler
        try:
            h.send_response(status)
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.flush()
        except OSError:
            return False
        return True

    def write(self, data: bytes) -> bool:
        try:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()
        except OSError:
            return False
        self.server.count_sent(len(data))
        return True

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "application/json",
    ) -> bool:
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers.setdefault("Content-Type", content_type)
        all_headers["Content-Length"] = str(len(body))
        return self.send_head(status, all_headers) and self.write(body)

    def drip(self, data: bytes, interval_s: float) -> bool:
        """Send ``data`` one byte at a time, ``interval_s`` apart (stops when the server stops)."""
        return all(self.write(data[i : i + 1]) and self.wait(interval_s) for i in range(len(data)))

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False (early) when the server is stopping."""
        return not self.server.stopping.wait(seconds)


Behaviour = Callable[[Exchange], None]


def _not_configured(ex: Exchange) -> None:
    ex.reply(500, b'{"error":"test server behaviour not set"}')


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hfo-test"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        self.close_connection = True
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        owner: HttpsServer = self.server.owner
        owner.record(request)
        owner.behaviour(Exchange(self, request))

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_HEAD = _serve


class _TlsThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def __init__(self, owner: HttpsServer, context: ssl.SSLContext) -> None:
        self.owner = owner
        self.ssl_context = context
        super().__init__((LOOPBACK, 0), _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        request.settimeout(IO_TIMEOUT_S)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.owner.tls_failures.append(f"{type(exc).__name__}: {exc}")
            return
        self.owner.track(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass  # the client went away mid-answer: part of several tests
        finally:
            self.owner.untrack(tls)
            with contextlib.suppress(OSError):
                tls.close()


class HttpsServer:
    """A real HTTPS server on 127.0.0.1 answering with ``behaviour`` (settable at any time)."""

    def __init__(self, context: ssl.SSLContext, behaviour: Behaviour | None = None) -> None:
        self.behaviour: Behaviour = behaviour or _not_configured
        self.stopping = threading.Event()
        self.tls_failures: list[str] = []
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._sent = 0
        self._live: set[socket.socket] = set()
        self._server = _TlsThreadingServer(self, context)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"https://{LOOPBACK}:{self.port}{path}"

    # -- bookkeeping used by the handler threads --
    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def count_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.discard(sock)

    # -- what tests read --
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    @property
    def bytes_sent(self) -> int:
        """Bytes of response bodies the server managed to hand to the kernel."""
        with self._lock:
            return self._sent

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        with self._lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        self._server.server_close()  # joins the handler threads (each ends promptly now)
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SilentTcpServer:
    """Accepts TCP connections on 127.0.0.1 and never sends anything (nor completes TLS)."""

    def __init__(self) -> None:
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def url(self, path: str = "/") -> str:
        return f"https://{LOOPBACK}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._listener.close()

    def __enter__(self) -> SilentTcpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def unaccepting_port(max_fillers: int = 64, settle_s: float = 0.2) -> Iterator[int]:
    """A port on 127.0.0.1 that listens but whose accept queue is full.

    The listener never calls accept(); it has a backlog of 0 and is filled with completed
    connections until one more connection attempt stays pending. From then on Linux drops new
    SYNs for it (no reset), so a client's connect hangs until its own timeout: the loopback-only
    way to get a genuine connect timeout.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(max_fillers):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            code = s.connect_ex((LOOPBACK, port))
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"filler connect failed: {errno.errorcode.get(code, code)}")
            deadline = time.monotonic() + settle_s
            connected = False
            while time.monotonic() < deadline:
                if s.connect_ex((LOOPBACK, port)) in (0, errno.EISCONN):
                    connected = True
                    break
                time.sleep(0.01)
            if not connected:
                break  # this attempt is stuck: the queue is full
        else:
            raise RuntimeError(f"accept queue not full after {max_fillers} connections")
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


@dataclass
class Recorder:
    """A behaviour that answers every request the same way (handy for webhook stand-ins)."""

    status: int = 204
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, ex: Exchange) -> None:
        ex.reply(self.status, self.body, self.headers, content_type="application/json" if self.body else None)
