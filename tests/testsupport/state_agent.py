"""A stand-in for the site agent's two state endpoints (STATE_CONTRACT.md, docs/state-handoff.md),
as a real HTTP server on loopback, for the tests of ``hfo-site state restore|sync``:

- ``GET /v1/state/credentials``: bearer token compared in constant time (401 without or with a wrong
  one); 200 with credentials for the current lease epoch, valid for the moto server (distinctive
  random values, so a test can look for them in logs); 409 ``{"error": "no_lease"}`` while the site
  holds no lease; ``Cache-Control: no-store``.
- ``POST /v1/state/report``: same token; the contract's fields checked (400 naming the field, nothing
  kept) and 204; every accepted report is kept in order.

It mirrors what the real agent promises, nothing more: the tests that use it must hold against the
real agent too (tests/site/test_state_cli.py runs one against it once it exists).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENTS = {"restored", "uploaded", "final", "fenced", "failed"}


@dataclass
class Lease:
    epoch: int
    site: str


@dataclass
class StandInStateAgent:
    token: str
    bucket: str
    endpoint_url: str
    region: str
    lease: Lease | None = None
    ttl_s: float = 900.0
    reports: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    url: str = ""
    _issued: dict[int, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(self, epoch: int, site: str = "primary") -> None:
        """The site now holds the lease of ``epoch`` (new credentials for a new epoch)."""
        with self._lock:
            self.lease = Lease(epoch, site)

    def revoke(self) -> None:
        """The lease moved away (to none or the other site): 409 no_lease from now on."""
        with self._lock:
            self.lease = None

    @property
    def credentials_url(self) -> str:
        return f"{self.url}/v1/state/credentials"

    def secrets_handed_out(self) -> list[str]:
        with self._lock:
            return [v for c in self._issued.values() for v in (c["secret_access_key"], c["session_token"])]

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.reports if event is None or r["event"] == event]

    def _credentials(self) -> dict[str, Any] | None:
        with self._lock:
            if self.lease is None:
                return None
            epoch = self.lease.epoch
            if epoch not in self._issued:
                self._issued[epoch] = {
                    "epoch": epoch,
                    "site": self.lease.site,
                    "bucket": self.bucket,
                    "region": self.region,
                    "endpoint_url": self.endpoint_url,
                    "access_key_id": "ASIA" + secrets.token_hex(8).upper(),
                    "secret_access_key": "SECRET" + secrets.token_urlsafe(30),
                    "session_token": "SESSION" + secrets.token_urlsafe(60),
                    "expires_at": int(time.time() + self.ttl_s),
                }
            return dict(self._issued[epoch])


def _check_report(document: Any) -> str | None:
    if not isinstance(document, dict):
        return "body is not a JSON object"
    if not isinstance(document.get("workload"), str) or not document["workload"]:
        return "workload: a non-empty string is required"
    if document.get("event") not in EVENTS:
        return f"event: one of {sorted(EVENTS)} is required"
    for name, optional in (("epoch", False), ("restored_epoch", True)):
        value = document.get(name)
        if (value is None and not optional) or (value is not None and (type(value) is not int or value < 0)):
            return f"{name}: a non-negative integer is required"
    if document.get("snapshot_key") is not None and not isinstance(document["snapshot_key"], str):
        return "snapshot_key: a string or null is required"
    if type(document.get("at")) not in (int, float):
        return "at: unix seconds are required"
    detail = document.get("detail", "")
    if not isinstance(detail, str) or len(detail) > 200:
        return "detail: a string of at most 200 characters is required"
    return None


def _handler(agent: StandInStateAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, document: dict[str, Any] | None = None) -> None:
            agent.requests.append((self.command, self.path, status))
            body = b"" if document is None else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Cache-Control", "no-store")
            if document is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {agent.token}".encode()):
                return True
            self._answer(401, {"error": "unauthorized", "detail": "a valid bearer token is required"})
            return False

        def do_GET(self) -> None:
            if self.path != "/v1/state/credentials":
                self._answer(404, {"error": "not_found", "detail": self.path})
                return
            if not self._authorised():
                return
            credentials = agent._credentials()
            if credentials is None:
                self._answer(409, {"error": "no_lease", "detail": "this site does not hold a fresh lease"})
                return
            self._answer(200, credentials)

        def do_POST(self) -> None:
            if self.path != "/v1/state/report":
                self._answer(404, {"error": "not_found", "detail": self.path})
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 16384))
            if not self._authorised():
                return
            try:
                document = json.loads(body)
            except ValueError:
                self._answer(400, {"error": "bad_request", "detail": "body is not JSON"})
                return
            problem = _check_report(document)
            if problem is not None:
                self._answer(400, {"error": "bad_request", "detail": problem})
                return
            with agent._lock:
                agent.reports.append(document)
            self._answer(204)

    return Handler


@contextmanager
def standin_state_agent(token: str, bucket: str, endpoint_url: str, region: str) -> Iterator[StandInStateAgent]:
    agent = StandInStateAgent(token=token, bucket=bucket, endpoint_url=endpoint_url, region=region)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agent))
    server.daemon_threads = True
    agent.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="state-agent", daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
