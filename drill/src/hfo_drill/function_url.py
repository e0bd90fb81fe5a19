"""The drill's Lambda Function URL: a real HTTPS server on 127.0.0.1 (throwaway CA) that turns
each HTTP request into the event AWS hands a function behind a Function URL (payload format
2.0), calls the function in this process, and turns its result back into the HTTP response.

Why not through moto: moto stores the function and its URL, but invoking needs Docker, and its
URL host (`<url-id>.lambda-url.<region>.on.aws`) does not resolve here. So the real heartbeat
handler runs in the drill's process, behind this server, and the real `hfo-site agent`
processes POST to it over TLS exactly as they would to AWS.

The mapping follows the AWS Lambda developer guide ("Invoking Lambda function URLs", request and
response payloads):

- request: the payload format 2.0 event of hfo_drill.lambda_runtime.function_url_event;
- response: a dict with `statusCode` sets the status, `headers`, `cookies` (as Set-Cookie) and
  `body` (base64-decoded when `isBase64Encoded`); any other JSON result is a 200
  `application/json` answer carrying it; a function that raises is a 502.

Not modelled: AWS's concurrency limits and throttling (429), the 6 MB payload limit (bodies over
it are refused with 413 here before the function runs), HTTP/2.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hfo_drill.lambda_runtime import function_url_event

MAX_BODY_BYTES = 6 * 1024 * 1024
# event, context -> result
Function = Callable[[dict[str, Any], Any], Any]


@dataclass
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_answer(result: Any) -> HttpAnswer:
    """What the client sees for a function's result."""
    if isinstance(result, Mapping) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(str(raw))
        else:
            body = str(raw).encode("utf-8")
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return HttpAnswer(status, headers, body)
    return HttpAnswer(200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8"))


@dataclass
class UrlCounters:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # the function raised

    def count(self, status: int) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


class _TlsThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.closing = False
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's own thread: a client that connects and never
        # speaks holds one thread for the timeout, never the accept loop.
        request.settimeout(10)
        with self._conns_lock:
            if self.closing:
                return
            self._conns.add(request)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self._conns_lock:
                self._conns.discard(request)
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def close_connections(self) -> None:
        """Stop serving the keep-alive connections still open: `shutdown()` ends only the accept
        loop, and a client reusing its connection would otherwise still reach the function."""
        with self._conns_lock:
            self.closing = True
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FunctionUrlServer:
    """https://127.0.0.1:<port>/ in front of `function`, one thread per connection (Lambda would
    run concurrent requests in separate execution environments; the handlers are thread-safe)."""

    def __init__(
        self,
        function: Function,
        context_factory: Callable[[], Any],
        tls: ssl.SSLContext,
        *,
        url_id: str,
        region: str,
        on_answer: Callable[[int, float], None] | None = None,
    ) -> None:
        self.function = function
        self.context_factory = context_factory
        self.tls = tls
        self.url_id = url_id
        self.region = region
        self.counters = UrlCounters()
        self._on_answer = on_answer
        self._lock = threading.Lock()
        self._server: _TlsThreadingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def start(self, port: int = 0) -> FunctionUrlServer:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "hfo-drill-function-url"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _handle(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self._server = _TlsThreadingServer(("127.0.0.1", port), Handler, self.tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="function-url", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def _serve(self, req: http.server.BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        if getattr(req.server, "closing", False):
            req.close_connection = True
            return
        try:
            length = int(req.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES or req.headers.get("Transfer-Encoding"):
            self._send(req, HttpAnswer(413, [("Content-Type", "application/json")], b'{"Message":"Request too long"}'))
            req.close_connection = True
            return
        body = req.rfile.read(length) if length else b""
        event = function_url_event(
            body,
            list(req.headers.items()),
            method=req.command,
            target=req.path,
            source_ip=str(req.client_address[0]),
            url_id=self.url_id,
            region=self.region,
            protocol=req.request_version,
        )
        try:
            answer = http_answer(self.function(event, self.context_factory()))
        except Exception:
            with self._lock:
                self.counters.errors += 1
            answer = HttpAnswer(502, [("Content-Type", "application/json")], b'{"Message":"Internal Server Error"}')
        answer.headers.append(("x-amzn-RequestId", event["requestContext"]["requestId"]))
        self._send(req, answer)
        with self._lock:
            self.counters.count(answer.status)
        if self._on_answer is not None:
            self._on_answer(answer.status, time.monotonic() - started)

    @staticmethod
    def _send(req: http.server.BaseHTTPRequestHandler, answer: HttpAnswer) -> None:
        try:
            req.send_response(answer.status)
            for name, value in answer.headers:
                if name.lower() not in ("content-length", "connection", "date", "server"):
                    req.send_header(name, value)  # send_response() already sent Date and Server
            req.send_header("Content-Length", str(len(answer.body)))
            req.end_headers()
            if req.command != "HEAD":
                req.wfile.write(answer.body)
        except (TimeoutError, OSError):
            req.close_connection = True
