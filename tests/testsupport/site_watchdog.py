"""A stand-in for the watchdog's heartbeat endpoint: a real HTTPS server on loopback that speaks
docs/protocol.md#heartbeat exactly, built on hfo_protocol so it cannot drift from the contract.

It checks, in the documented order, method, size, content type, signature, schema, site, clock
skew and replay, refuses with the documented status and code (changing no state), and answers
accepted heartbeats with a signed lease answer that echoes the nonce. Tests steer it: move the
lease, go silent (accept the connection, never answer), answer with a lower epoch, tamper with
the signature or the nonce, or call a hook on every accepted heartbeat (a scripted watchdog).
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hfo_protocol import SIGNATURE_HEADER, Keyring, ProtocolError, SignatureError
from hfo_protocol.heartbeat import (
    MAX_HEARTBEAT_BYTES,
    Heartbeat,
    LeaseAnswer,
    build_lease_answer,
    build_refusal,
    parse_heartbeat,
    sign_lease_answer,
    verify_heartbeat,
)


@dataclass
class Received:
    heartbeat: Heartbeat
    received_at: float  # wall clock
    answered_epoch: int | None
    answered_site: str | None


@dataclass
class WatchdogState:
    lease_site: str = "primary"
    epoch: int = 1
    ttl_s: int = 2
    heartbeat_interval_s: int = 1
    max_skew_s: float = 30.0
    phase: str = "healthy"
    mode: str = "auto"
    silent_sites: set[str] = field(default_factory=set)  # never answer these sites (hold, then drop)
    unavailable: bool = False  # answer 503 unavailable (after all checks, as the real one)
    delay_s: float = 0.0  # answer this late (a slow network or a slow state store)
    epoch_override: int | None = None  # answer with this epoch instead (an epoch going backwards)
    site_override: str | None = None  # answer with this lease site instead (same epoch conflicts)
    tamper: str | None = None  # "signature" | "nonce" | "unsigned"
    split_answer: tuple[int, float] | None = None  # write the answer's body in n pieces, pausing s between
    pad_answer: int = 0  # append this many spaces to the answer body (signed over them: a huge answer)
    raw_answer: tuple[int, bytes] | None = None  # answer every request with this status and body, unsigned
    last_seq: dict[tuple[str, str | None], int] = field(default_factory=dict)  # (site, boot) -> seq
    last_sent_at: dict[str, float] = field(default_factory=dict)  # heartbeats without a boot id
    accepted: list[Received] = field(default_factory=list)
    refusals: list[tuple[int, str]] = field(default_factory=list)


class StandInWatchdog:
    def __init__(self, keyring: Keyring, server_ssl: ssl.SSLContext, silent_hold_s: float = 10.0) -> None:
        self.keyring = keyring
        self.state = WatchdogState()
        self.lock = threading.Lock()
        self.hook: Callable[[StandInWatchdog, Heartbeat], None] | None = None
        self._release = threading.Event()
        self._silent_hold_s = silent_hold_s
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # The handshake runs lazily in the request thread, so a stalled client never blocks accept().
        self._server.socket = server_ssl.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/heartbeat"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- steering ------------------------------------------------------------------------------
    def set_lease(self, site: str, epoch: int | None = None) -> int:
        """Move the lease; the epoch goes up by one unless given. Returns the new epoch."""
        with self.lock:
            self.state.lease_site = site
            self.state.epoch = self.state.epoch + 1 if epoch is None else epoch
            return self.state.epoch

    def update(self, **changes: object) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self.state, key, value)

    def accepted(self, site: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.state.accepted if site is None or r.heartbeat.site == site]

    def refusals(self) -> list[tuple[int, str]]:
        with self.lock:
            return list(self.state.refusals)

    # -- protocol ------------------------------------------------------------------------------
    def _refuse(self, code: str, message: str) -> tuple[int, bytes, dict[str, str]]:
        status, body = build_refusal(code, message)
        with self.lock:
            self.state.refusals.append((status, code))
        return status, body, {}

    def handle(self, method: str, headers: dict[str, str], read_body: Callable[[int], bytes]):
        """(status, body, headers) for one request, or None to answer nothing at all."""
        with self.lock:
            raw = self.state.raw_answer
        if raw is not None:
            return raw[0], raw[1], {}
        if method != "POST":
            return self._refuse("method_not_allowed", "use POST")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = MAX_HEARTBEAT_BYTES + 1
        if length > MAX_HEARTBEAT_BYTES:
            return self._refuse("too_large", f"at most {MAX_HEARTBEAT_BYTES} bytes")
        body = read_body(length)
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return self._refuse("unsupported_media_type", "send application/json")
        signature = headers.get(SIGNATURE_HEADER.lower())
        if not signature:
            return self._refuse("unsigned", f"no {SIGNATURE_HEADER}")
        try:
            verify_heartbeat(self.keyring, signature, body)
        except SignatureError as exc:
            return self._refuse("unknown_key" if exc.code == "unknown_key" else "bad_signature", exc.message)
        try:
            hb = parse_heartbeat(body)
        except ProtocolError as exc:
            return self._refuse(exc.code if exc.code in ("unknown_site", "too_large") else "malformed", exc.message)
        now = time.time()
        with self.lock:
            skew = self.state.max_skew_s
            last = self.state.last_sent_at.get(hb.site)
            last_seq = self.state.last_seq.get((hb.site, hb.boot))
            silent = hb.site in self.state.silent_sites
            unavailable = self.state.unavailable
        if hb.sent_at < now - skew:
            return self._refuse("stale", "sent_at too old")
        if hb.sent_at > now + skew:
            return self._refuse("future", "sent_at in the future")
        if hb.boot is None and last is not None and hb.sent_at <= last:
            return self._refuse("replay", "sent_at not later than the last accepted heartbeat")
        if hb.boot is not None and last_seq is not None and hb.seq <= last_seq:
            return self._refuse("replay", "seq not above the last accepted one of this agent process")
        if silent:
            self._release.wait(self._silent_hold_s)
            return None
        if unavailable:
            return self._refuse("unavailable", "state store unreachable")
        with self.lock:
            delay = self.state.delay_s
        if delay:
            time.sleep(delay)
        with self.lock:
            if hb.boot is None:
                self.state.last_sent_at[hb.site] = hb.sent_at
            else:
                self.state.last_seq[(hb.site, hb.boot)] = hb.seq
        if self.hook is not None:
            self.hook(self, hb)
        with self.lock:
            st = self.state
            epoch = st.epoch if st.epoch_override is None else st.epoch_override
            site = st.lease_site if st.site_override is None else st.site_override
            st.accepted.append(Received(hb, now, epoch, site))
            answer = LeaseAnswer(
                nonce=hb.nonce,
                server_time=time.time(),
                site=site,
                epoch=epoch,
                ttl_s=st.ttl_s,
                mode=st.mode,
                phase=st.phase,
                heartbeat_interval_s=st.heartbeat_interval_s,
            )
            tamper = st.tamper
        if tamper == "nonce":
            answer = LeaseAnswer(**{**answer.__dict__, "nonce": "x" * 32})
        out = build_lease_answer(answer)
        with self.lock:
            out += b" " * self.state.pad_answer
        if tamper == "unsigned":
            return 200, out, {}
        signature = sign_lease_answer(self.keyring, out)
        if tamper == "signature":
            other = Keyring(active_kid=self.keyring.active_kid, keys={self.keyring.active_kid: b"z" * 32})
            signature = sign_lease_answer(other, out)
        return 200, out, {SIGNATURE_HEADER: signature}

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        watchdog = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                result = watchdog.handle(self.command, headers, lambda n: self.rfile.read(n))
                if result is None:
                    self.close_connection = True
                    return
                status, body, extra = result
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                with watchdog.lock:
                    split = watchdog.state.split_answer
                if split is None:
                    self.wfile.write(body)
                    return
                pieces, pause = split
                step = -(-len(body) // pieces)
                for start in range(0, len(body), step):  # each piece its own TLS record, after a pause
                    self.wfile.write(body[start : start + step])
                    self.wfile.flush()
                    time.sleep(pause)

            do_POST = _serve
            do_GET = _serve
            do_PUT = _serve

        return Handler

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> StandInWatchdog:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def standin_watchdog(keyring: Keyring, server_ssl: ssl.SSLContext, **kw: float) -> Iterator[StandInWatchdog]:
    watchdog = StandInWatchdog(keyring, server_ssl, **kw).start()
    try:
        yield watchdog
    finally:
        watchdog.close()
