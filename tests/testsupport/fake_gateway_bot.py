"""Discord's ``GET /api/v10/gateway/bot`` on loopback, for the agent's shard-aware scaling.

A real aiohttp server in its own thread. It answers as Discord documents: 200 with ``url``, ``shards`` and
``session_start_limit`` (``total``, ``remaining``, ``reset_after`` in ms, ``max_concurrency``) for the right
``Authorization: Bot <token>``, 401 for any other, and whatever a test scripts next: a 429 with ``retry_after``
(body, seconds) and ``Retry-After`` (header), ``global`` and ``X-RateLimit-Scope``, a 5xx, a malformed body, a
redirect, a slow answer. Every request is recorded with its arrival time and headers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Seen:
    at: float  # time.monotonic()
    path: str
    authorization: str | None
    user_agent: str | None


@dataclass
class Scripted:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def answer_doc(shards: int, remaining: int = 1000, total: int = 1000, max_concurrency: int = 1) -> dict[str, object]:
    return {
        "url": "wss://gateway.discord.gg",
        "shards": shards,
        "session_start_limit": {
            "total": total,
            "remaining": remaining,
            "reset_after": 14_400_000,
            "max_concurrency": max_concurrency,
        },
    }


class FakeGatewayBot:
    def __init__(self, token: str, shards: int = 1) -> None:
        self.token = token
        self.shards = shards
        self.remaining = 1000
        self.seen: list[Seen] = []
        self.script: deque[Scripted] = deque()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- what a test does -------------------------------------------------------------------------------
    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    def then(self, status: int, body: object = b"", headers: dict[str, str] | None = None, delay_s: float = 0) -> None:
        """The next request gets this answer (then the normal one again)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.script.append(Scripted(status, raw, dict(headers or {}), delay_s))

    def rate_limit(self, retry_after: float, glob: bool = False, header: str | None = None) -> None:
        headers = {"X-RateLimit-Scope": "global" if glob else "user", "Retry-After": header or str(retry_after)}
        if glob:
            headers["X-RateLimit-Global"] = "true"
        self.then(429, {"message": "You are being rate limited.", "retry_after": retry_after, "global": glob}, headers)

    def requests(self, path: str = "/api/v10/gateway/bot") -> list[Seen]:
        return [s for s in list(self.seen) if s.path == path]

    # -- server -----------------------------------------------------------------------------------------
    def _record(self, request: web.Request) -> None:
        headers = request.headers
        self.seen.append(Seen(time.monotonic(), request.path, headers.get("Authorization"), headers.get("User-Agent")))

    async def _gateway_bot(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if self.script:
            step = self.script.popleft()
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
            headers = {"Content-Type": "application/json", **step.headers}
            return web.Response(status=step.status, body=step.body, headers=headers)
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response(answer_doc(self.shards, self.remaining))

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(answer_doc(self.shards))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)
        app.router.add_get("/elsewhere/gateway/bot", self._elsewhere)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def __enter__(self) -> FakeGatewayBot:
        self._thread = threading.Thread(target=self._run, name="fake-gateway-bot", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the fake Discord did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
