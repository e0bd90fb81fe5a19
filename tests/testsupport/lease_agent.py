"""A real loopback HTTP server playing a site agent's lease endpoint for the bot (docs/protocol.md#lease-endpoint):
``GET /v1/lease`` answers ``{"site", "holds", "epoch", "fresh_for_s", "workload_should_run"}``. Tests set what it
answers (a grant, a refusal, an HTTP error, a raw or oversized body, a slow answer) and read how often it was asked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class AgentScript:
    site: str = "primary"
    holds: bool = True
    epoch: int = 1
    fresh_for_s: float = 30.0
    status: int = 200
    raw: bytes | None = None  # sent as is instead of the JSON document
    delay_s: float = 0.0
    asked: list[float] = field(default_factory=list)  # time.monotonic() of every request

    def grant(self, epoch: int | None = None, fresh_for_s: float = 30.0) -> None:
        self.holds, self.fresh_for_s, self.status, self.raw = True, fresh_for_s, 200, None
        if epoch is not None:
            self.epoch = epoch

    def withdraw(self, epoch: int | None = None) -> None:
        """The lease went to the other site: this agent answers holds=false, fresh_for_s 0."""
        self.holds, self.fresh_for_s, self.status, self.raw = False, 0.0, 200, None
        if epoch is not None:
            self.epoch = epoch

    def document(self) -> dict[str, object]:
        return {
            "site": self.site,
            "holds": self.holds,
            "epoch": self.epoch,
            "fresh_for_s": self.fresh_for_s,
            "workload_should_run": self.holds,
        }


class LeaseAgent:
    def __init__(self, script: AgentScript, path: str = "/v1/lease") -> None:
        self.script = script
        self.path = path
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                s = agent.script
                s.asked.append(time.monotonic())
                if s.delay_s:
                    time.sleep(s.delay_s)
                if self.path != agent.path:
                    body, status = b'{"error": "not found"}', 404
                else:
                    body = s.raw if s.raw is not None else json.dumps(s.document()).encode()
                    status = s.status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LeaseAgent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def lease_agent(script: AgentScript | None = None) -> Iterator[LeaseAgent]:
    agent = LeaseAgent(script or AgentScript()).start()
    try:
        yield agent
    finally:
        agent.stop()
