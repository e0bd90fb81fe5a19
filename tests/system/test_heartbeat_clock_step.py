"""Issue 10, bug 3, end to end: the real agent heartbeat client (hfo_site) over HTTPS to the real
heartbeat handler (hfo_watchdog.heartbeat.handle, its DynamoDB store on the moto server), behind
the drill's Function URL server. A 20 s backward step of the agent's wall clock within one agent
process used to lock its heartbeats out as `replay` for 20 s (the guard compared `sent_at`); the
guard is now the process's boot id and seq, and a replayed heartbeat is still refused."""

from __future__ import annotations

import asyncio
import http.client
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from hfo_drill.function_url import FunctionUrlServer
from hfo_drill.inbox import AlertInbox
from hfo_drill.moto_server import MotoServer
from hfo_protocol.heartbeat import CONTENT_TYPE
from hfo_protocol.signing import SIGNATURE_HEADER
from hfo_site.heartbeat_client import BeatKind, BeatResult, HeartbeatClient, make_ssl_context
from hfo_watchdog.commit import Effects
from hfo_watchdog.core.model import Policy
from hfo_watchdog.heartbeat import HeartbeatDeps, handle
from hfo_watchdog.notify import SnsNotifier
from hfo_watchdog.store import DynamoStateStore
from testsupport.https import TestCA
from testsupport.watchdog import KEYRING, TABLE, JsonLog, create_table, sns_client
from watchdog.fakes import FakeStandby

pytestmark = [pytest.mark.moto, pytest.mark.network, pytest.mark.system]


class Capture:
    """The handler behind the Function URL, keeping each request's event so a test can replay one."""

    def __init__(self, deps: HeartbeatDeps) -> None:
        self.deps = deps
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return handle(event, self.deps)


@pytest.fixture
def function_url(aws: MotoServer, tmp_path: Path) -> Iterator[tuple[FunctionUrlServer, Capture, TestCA]]:
    client = create_table()
    inbox, log = AlertInbox.on_new_topic(), JsonLog()
    deps = HeartbeatDeps(
        store=DynamoStateStore(client, TABLE, steady_gap_s=30, writer="heartbeat"),
        keyring=KEYRING,
        policy=Policy(lease_ttl_s=60, heartbeat_interval_s=10, stop_grace_s=30, down_heartbeat_s=180),
        max_skew_s=30,
        # The first heartbeat arms the watchdog, which alerts: real SNS on moto, a scripted standby.
        effects=lambda: Effects(FakeStandby(), SnsNotifier(sns_client(2), inbox.topic_arn), log),
        log=log,
    )
    capture = Capture(deps)
    ca = TestCA(tmp_path)
    server = FunctionUrlServer(capture, lambda: None, ca.server_context(), url_id="u1", region="us-east-1").start()
    yield server, capture, ca
    server.stop()


def _agent_process(url: str, ca: TestCA, beats: list[float]) -> list[BeatResult]:
    """One agent process (one HeartbeatClient, one boot id) sending heartbeats with seq 1, 2, ...,
    its wall clock shifted by each offset in turn."""

    async def main() -> list[BeatResult]:
        shift = [0.0]
        async with aiohttp.ClientSession() as session:
            client = HeartbeatClient(
                url, session, lambda: KEYRING, 5.0, make_ssl_context(ca.bundle), wall=lambda: time.time() + shift[0]
            )
            results = []
            for seq, offset in enumerate(beats, start=1):
                shift[0] = offset
                results.append(await client.send("primary", seq, "running", 1, True))
            return results

    return asyncio.run(main())


def test_a_20_s_backward_clock_step_keeps_the_agent_heartbeating(
    function_url: tuple[FunctionUrlServer, Capture, TestCA],
) -> None:
    server, capture, ca = function_url
    # Two heartbeats, then the agent's clock steps back 20 s, and it goes on heartbeating.
    results = _agent_process(server.url, ca, [0.0, 0.0, -20.0, -20.0, -19.9])
    assert [(r.kind, r.code) for r in results] == [(BeatKind.ACCEPTED, "")] * 5
    assert all(r.answer is not None and r.answer.site == "primary" for r in results)
    site = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "SITE"}, "sk": {"S": "primary"}}, ConsistentRead=True
    )["Item"]
    assert site["count"]["N"] == "5" and len(site["boots"]["M"]) == 1

    # A captured heartbeat (here: the third, sent after the step) replayed byte for byte is refused.
    captured = capture.events[2]
    body = captured["body"].encode()
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=ssl.create_default_context(cafile=str(ca.bundle)), timeout=10
    )
    try:
        conn.request(
            "POST",
            "/",
            body=body,
            headers={"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: captured["headers"][SIGNATURE_HEADER.lower()]},
        )
        replayed = conn.getresponse()
        assert (replayed.status, b'"error":"replay"' in replayed.read()) == (409, True)
    finally:
        conn.close()
    after = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "SITE"}, "sk": {"S": "primary"}}, ConsistentRead=True
    )["Item"]
    assert after == site  # the refusal changed nothing


def test_a_restarted_agent_is_accepted_and_its_predecessor_replayed_is_not(
    function_url: tuple[FunctionUrlServer, Capture, TestCA],
) -> None:
    server, capture, ca = function_url
    assert [r.kind for r in _agent_process(server.url, ca, [0.0, 0.0])] == [BeatKind.ACCEPTED] * 2
    first_process = capture.events[1]
    # A new process (new boot id, seq from 1 again), its clock 20 s behind the first one's.
    assert [r.kind for r in _agent_process(server.url, ca, [-20.0])] == [BeatKind.ACCEPTED]
    answer = capture(first_process, None)
    assert answer["statusCode"] == 409 and '"error":"replay"' in answer["body"]
