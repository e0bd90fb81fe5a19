"""A minimal Discord on loopback for the reference bot's child-process tests: the REST calls discord.py makes to
log in and to answer a message, and a gateway websocket that speaks the documented opcodes (HELLO 10, HEARTBEAT 1
and its ACK 11, IDENTIFY 2 -> READY, RESUME 6 -> RESUMED, DISPATCH 0). It records every IDENTIFY, RESUME and
answer with the time it arrived, so a test can say "nothing was sent while the lease was withdrawn".

The bot is pointed at it by ``launcher_args``: a ``python -c`` that sets discord.py's REST base and default
gateway URL, then runs the real ``hfo_bot.__main__.main``."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

BOT_USER = {"id": "1000", "username": "hfo-bot", "discriminator": "0", "global_name": None, "avatar": None, "bot": True}
USER = {"id": "4000", "username": "alice", "discriminator": "0", "global_name": None, "avatar": None}
HEARTBEAT_MS = 1000
LAUNCHER = """
import sys, yarl, discord.http, discord.gateway
discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
from hfo_bot.__main__ import main
sys.exit(main(sys.argv[3:]))
"""


def _json(doc: object) -> web.Response:
    # discord.py parses a body as JSON only when the content type is exactly application/json (no charset)
    return web.Response(body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})


@dataclass
class Record:
    at: float  # time.monotonic()
    kind: str  # IDENTIFY | RESUME | ANSWER | CONNECT
    detail: str = ""


@dataclass
class FakeDiscord:
    records: list[Record] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)
    _seq: dict[web.WebSocketResponse, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))
    _sessions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what a test reads -------------------------------------------------------------------------------------
    def kinds(self, since: float = 0.0) -> list[str]:
        return [r.kind for r in list(self.records) if r.at >= since]

    def count(self, kind: str) -> int:
        return sum(1 for r in list(self.records) if r.kind == kind)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def launcher_args(self) -> list[str]:
        return ["-c", LAUNCHER, self.api, self.gateway]

    def connected(self) -> int:
        return len(self._sockets)

    # -- what a test does --------------------------------------------------------------------------------------
    def send_message(self, content: str) -> None:
        """A user posts ``content`` in a DM to the bot: MESSAGE_CREATE on every open session."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._dispatch_message(content), self._loop).result(5)

    def drop(self) -> None:
        """A network blip: the gateway closes every session with 4000 (the client may RESUME)."""
        assert self._loop is not None

        async def close_all() -> None:
            for ws in list(self._sockets):
                await ws.close(code=4000, message=b"test drop")

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)

    # -- server ------------------------------------------------------------------------------------------------
    async def _dispatch_message(self, content: str) -> None:
        data = {
            "id": str(next(self._ids)),
            "channel_id": "3000",
            "author": USER,
            "content": content,
            "timestamp": "2026-12-03T04:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        for ws in list(self._sockets):
            seq = self._seq[ws] = self._seq.get(ws, 0) + 1
            if not ws.closed:
                await ws.send_str(json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": seq, "d": data}))

    async def _me(self, _request: web.Request) -> web.Response:
        return _json(BOT_USER)

    async def _application(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "id": "1000",
                "name": "hfo-bot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": USER,
                "verify_key": "00",
                "flags": 0,
            }
        )

    async def _post_message(self, request: web.Request) -> web.Response:
        payload = await request.json()
        content = str(payload.get("content", ""))
        self.records.append(Record(time.monotonic(), "ANSWER", content))
        message = {
            "id": str(next(self._ids)),
            "channel_id": request.match_info["channel"],
            "author": BOT_USER,
            "content": content,
            "timestamp": "2026-12-03T04:00:01+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        return _json(message)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.records.append(Record(time.monotonic(), "CONNECT"))
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                doc = json.loads(msg.data)
                op = doc.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    self.records.append(Record(time.monotonic(), "IDENTIFY"))
                    self._sockets.add(ws)
                    self._seq[ws] = 1
                    ready = {
                        "v": 10,
                        "user": BOT_USER,
                        "guilds": [],
                        "session_id": f"session-{next(self._sessions)}",
                        "resume_gateway_url": self.gateway,
                        "shard": doc["d"].get("shard", [0, 1]),
                        "application": {"id": "1000", "flags": 0},
                    }
                    await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": 1, "d": ready}))
                elif op == 6:
                    self.records.append(Record(time.monotonic(), "RESUME"))
                    self._sockets.add(ws)
                    self._seq[ws] = int(doc["d"].get("seq") or 0) + 1
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": self._seq[ws], "d": {}}))
        finally:
            self._sockets.discard(ws)
            self._seq.pop(ws, None)
        return ws

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_post("/api/v10/channels/{channel}/messages", self._post_message)
        app.router.add_get("/gateway", self._gateway)
        return app


class FakeDiscordServer:
    """Runs a FakeDiscord on its own event loop in a thread."""

    def __init__(self) -> None:
        self.fake = FakeDiscord()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.fake._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.fake.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        self.fake.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        self._ready.set()
        await self._stop.wait()
        for ws in list(self.fake._sockets):
            await ws.close()
        await runner.cleanup()

    def __enter__(self) -> FakeDiscord:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Discord did not start")
        return self.fake

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None and self.fake._loop is not None:
            self.fake._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
