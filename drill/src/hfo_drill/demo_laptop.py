"""Stand-ins for a site, used by the demo: a site agent that heartbeats and fences itself by the
lease it learns, and a real HTTPS health server that answers the watchdog's probe with signed
health documents (docs/protocol.md). Both speak the real wire protocol through hfo_protocol.

The agent reaches the watchdog through a `Transport` (a function from request to response), so
the demo can call the heartbeat handler in-process while a later, bigger demo sends real HTTP.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hfo_protocol.errors import ProtocolError
from hfo_protocol.health import (
    CONTENT_TYPE as HEALTH_CONTENT_TYPE,
)
from hfo_protocol.health import (
    HEALTH_PATH,
    HealthDocument,
    build_health_body,
    http_status_for,
    sign_health,
)
from hfo_protocol.heartbeat import (
    CONTENT_TYPE,
    Heartbeat,
    build_heartbeat,
    parse_lease_answer,
    sign_heartbeat,
    verify_lease_answer,
)
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import NONCE_RE, new_nonce
from hfo_protocol.signing import SIGNATURE_HEADER

# request body, request headers -> status, response headers (lower-case names), response body
Transport = Callable[[bytes, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]


@dataclass(frozen=True)
class LeaseView:
    site: str
    epoch: int
    ttl_s: float
    sent_mono: float  # when the heartbeat that got this answer was sent (agent's monotonic clock)


class WorkloadLedger:
    """Who runs the workload, as the sites report it; remembers any moment two ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, bool] = {}
        self.overlaps: list[str] = []

    def report(self, site: str, running: bool) -> None:
        with self._lock:
            self._running[site] = running
            both = [s for s, r in self._running.items() if r]
            if len(both) > 1:
                self.overlaps.append(f"{time.strftime('%H:%M:%S')} {' and '.join(sorted(both))} both running")

    def running(self) -> list[str]:
        with self._lock:
            return sorted(s for s, r in self._running.items() if r)


class SiteAgent:
    """A site's agent: heartbeats every `interval_s`, runs the workload only while its site holds a
    fresh lease (self-fencing), stops it otherwise. `kill()` is the machine dying; `revive()` its
    return (a fresh agent process that remembers nothing)."""

    def __init__(
        self,
        site: str,
        keyring: Keyring,
        transport: Transport,
        ledger: WorkloadLedger,
        *,
        interval_s: float = 1.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.site = site
        self._keyring = keyring
        self._transport = transport
        self._ledger = ledger
        self.interval_s = interval_s
        self._on_event = on_event or (lambda _text: None)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alive = False
        self.workload = "stopped"
        self.lease: LeaseView | None = None
        self.epoch_seen = 0
        self.seq = 0
        self.sent = 0
        self.refused: list[str] = []

    # -- lifecycle

    def start(self) -> None:
        with self._lock:
            self.alive = True
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"agent-{self.site}", daemon=True)
            self._thread.start()

    def kill(self) -> None:
        """The machine dies: no more heartbeats, the workload is gone with it."""
        with self._lock:
            self.alive = False
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._set_workload("stopped")
            self.lease = None
            self.epoch_seen = 0
            self.seq = 0

    def revive(self) -> None:
        self.start()

    def quiet(self) -> None:
        """Stop reporting events (the demo is over; shutting down is not part of the story)."""
        self._on_event = lambda _text: None

    stop = kill

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.beat()
            except Exception as exc:  # a demo agent keeps going, like a real one
                self._on_event(f"{self.site} agent: heartbeat failed: {type(exc).__name__}")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    # -- one heartbeat

    def holds_fresh_lease(self) -> bool:
        with self._lock:
            lease = self.lease
            return lease is not None and lease.site == self.site and time.monotonic() - lease.sent_mono < lease.ttl_s

    def beat(self) -> None:
        with self._lock:
            self.seq += 1
            hb = Heartbeat(
                site=self.site,
                sent_at=time.time(),
                nonce=new_nonce(),
                seq=self.seq,
                workload=self.workload,
                epoch_seen=self.epoch_seen,
                ready=True,
                agent="hfo-demo-agent/0.1",
            )
        body = build_heartbeat(hb)
        sent_mono = time.monotonic()
        headers = {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: sign_heartbeat(self._keyring, body)}
        status, answer_headers, answer = self._transport(body, headers)
        with self._lock:
            self.sent += 1
            if status == 200:
                self._learn(hb.nonce, sent_mono, answer_headers, answer)
            else:
                self.refused.append(f"{status} {answer[:200].decode('utf-8', 'replace')}")
            self._reconcile()

    def _learn(self, nonce: str, sent_mono: float, headers: Mapping[str, str], body: bytes) -> None:
        try:
            verify_lease_answer(self._keyring, headers.get(SIGNATURE_HEADER.lower()), body)
            answer = parse_lease_answer(body)
        except ProtocolError as exc:
            self.refused.append(f"bad lease answer: {exc.code}")
            return
        if answer.nonce != nonce or answer.epoch < self.epoch_seen:
            return  # not an answer to this heartbeat, or older than what this agent knows
        self.epoch_seen = answer.epoch
        self.lease = LeaseView(answer.site, answer.epoch, float(answer.ttl_s), sent_mono)

    def _reconcile(self) -> None:
        """Run the workload only while holding a fresh lease; stopping takes one heartbeat."""
        if self.holds_fresh_lease():
            if self.workload != "running":
                self._set_workload("running")
        elif self.workload == "running":
            self._set_workload("stopping")
        elif self.workload == "stopping":
            self._set_workload("stopped")

    def _set_workload(self, workload: str) -> None:
        if workload != self.workload:
            self._on_event(f"{self.site} agent: workload {self.workload} -> {workload}")
        self.workload = workload
        self._ledger.report(self.site, workload in ("running", "stopping"))

    def health(self) -> tuple[str, str]:
        """(status, basis) for the health document."""
        with self._lock:
            if self.holds_fresh_lease() and self.workload == "running":
                return "pass", "workload"
            if not self.holds_fresh_lease():
                return "pass", "ready"
            return "warn", "none"  # holds the lease, workload not up yet


class _TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext) -> None:
        self.tls = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's own thread, so a client that connects
        # and never speaks cannot stall the accept loop.
        request.settimeout(5)
        try:
            tls = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)


class HealthServer:
    """The site's health service on https://127.0.0.1:<port>/healthz, with a throwaway CA.

    `stop()` closes the listening socket (probes get "connection refused", as with a dead
    laptop); `start()` binds the same port again."""

    def __init__(self, agent: SiteAgent, keyring: Keyring, context: ssl.SSLContext, port: int) -> None:
        self.agent = agent
        self.keyring = keyring
        self.context = context
        self.port = port
        self.probes = 0
        self._server: _TlsServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{HEALTH_PATH}"

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "hfo-demo-health/0.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != HEALTH_PATH:
                    self.send_error(404)
                    return
                nonces = parse_qs(parts.query).get("nonce", [])
                nonce = nonces[0] if len(nonces) == 1 and NONCE_RE.match(nonces[0]) else None
                outer.probes += 1
                status, basis = outer.agent.health()
                doc = HealthDocument(
                    status=status,
                    site=outer.agent.site,
                    basis=basis,
                    time=time.time(),
                    nonce=nonce,
                    lease_epoch=outer.agent.epoch_seen or None,
                )
                body = build_health_body(doc)
                self.send_response(http_status_for(status))
                self.send_header("Content-Type", HEALTH_CONTENT_TYPE)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                if nonce is not None:
                    self.send_header(SIGNATURE_HEADER, sign_health(outer.keyring, nonce, body))
                self.end_headers()
                self.wfile.write(body)

        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _TlsServer(("127.0.0.1", self.port), Handler, self.context)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="health-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
