"""The drill's Function URL: the payload format 2.0 event built from a real HTTPS request, the
function's result turned back into the HTTP answer, and the real heartbeat handler behind it
(against moto) answering a signed heartbeat and refusing an unsigned one."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.function_url import FunctionUrlServer, http_answer
from hfo_drill.lambda_runtime import LambdaContext, function_url_event
from hfo_drill.moto_server import MotoServer
from hfo_protocol.heartbeat import (
    CONTENT_TYPE,
    Heartbeat,
    build_heartbeat,
    parse_lease_answer,
    sign_heartbeat,
    verify_lease_answer,
)
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import new_nonce
from hfo_protocol.signing import SIGNATURE_HEADER
from testsupport.https import TestCA

pytestmark = pytest.mark.network


# --- the event, built directly


def test_event_follows_payload_format_2_0() -> None:
    event = function_url_event(
        b'{"k":1}',
        [
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("User-Agent", "hfo-agent/0.1"),
        ],
        method="post",
        target="/beat/now?b=2&a=1&b=3",
        source_ip="127.0.0.1",
        url_id="abc123",
        region="eu-west-3",
        request_id="rid-1",
        now=1_700_000_000.25,
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/beat/now"
    assert event["rawQueryString"] == "b=2&a=1&b=3"
    assert event["queryStringParameters"] == {"b": "2,3", "a": "1"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    headers = event["headers"]
    assert headers["x-multi"] == "one,two"
    assert headers["content-type"] == "application/json"
    assert "cookie" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-forwarded-proto"] == "https"
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous"  # auth type NONE
    assert ctx["apiId"] == ctx["domainPrefix"] == "abc123"
    assert ctx["domainName"] == "abc123.lambda-url.eu-west-3.on.aws"
    assert ctx["http"] == {
        "method": "POST",
        "path": "/beat/now",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "hfo-agent/0.1",
    }
    assert ctx["requestId"] == "rid-1"
    assert ctx["routeKey"] == ctx["stage"] == "$default"
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000"
    assert ctx["timeEpoch"] == 1_700_000_000_250
    assert event["body"] == '{"k":1}' and event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_and_empty_ones_absent() -> None:
    binary = function_url_event(b"\x00\xff", [("Content-Type", "application/octet-stream")], source_ip="1.2.3.4")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"
    empty = function_url_event(method="GET", source_ip="1.2.3.4")
    assert "body" not in empty and "queryStringParameters" not in empty and "cookies" not in empty


def test_results_become_http_answers() -> None:
    full = http_answer(
        {
            "statusCode": 201,
            "headers": {"X-Custom": "v"},
            "cookies": ["a=1; Max-Age=5"],
            "body": base64.b64encode(b"\x01\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    assert full.status == 201
    assert ("X-Custom", "v") in full.headers and ("Set-Cookie", "a=1; Max-Age=5") in full.headers
    assert ("Content-Type", "application/json") in full.headers
    assert full.body == b"\x01\x02"
    inferred = http_answer({"message": "hi"})  # no statusCode: Lambda infers a 200 JSON answer
    assert (inferred.status, json.loads(inferred.body)) == (200, {"message": "hi"})


# --- through the real HTTPS server


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.result: Any = {"statusCode": 200, "body": "ok"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder, ca: TestCA) -> Iterator[FunctionUrlServer]:
    s = FunctionUrlServer(recorder, lambda: None, ca.server_context(), url_id="u1", region="us-east-1").start()
    yield s
    s.stop()


def connect(server: FunctionUrlServer, ca: TestCA) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(ca.bundle))
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)


def test_a_real_request_reaches_the_function_as_its_event(
    server: FunctionUrlServer, recorder: Recorder, ca: TestCA
) -> None:
    conn = connect(server, ca)
    recorder.result = {"statusCode": 202, "headers": {"X-Answer": "yes"}, "body": "done", "cookies": ["s=1"]}
    conn.request("POST", "/hb?x=1", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 202
    assert resp.getheader("X-Answer") == "yes"
    assert resp.getheader("Set-Cookie") == "s=1"
    assert resp.getheader("x-amzn-RequestId") == recorder.events[0]["requestContext"]["requestId"]
    assert resp.read() == b"done"
    event = recorder.events[0]
    assert event["rawPath"] == "/hb" and event["queryStringParameters"] == {"x": "1"}
    assert event["body"] == '{"a":1}'
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    conn.close()


def test_a_function_that_raises_is_a_502(server: FunctionUrlServer, recorder: Recorder, ca: TestCA) -> None:
    recorder.result = RuntimeError("boom")
    conn = connect(server, ca)
    conn.request("POST", "/", body=b"{}", headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 502
    assert b"boom" not in resp.read()
    assert server.counters.errors == 1
    conn.close()


def test_a_body_over_the_limit_is_refused_before_the_function(
    server: FunctionUrlServer, recorder: Recorder, ca: TestCA
) -> None:
    conn = connect(server, ca)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Length", str(7 * 1024 * 1024))
    conn.endheaders()
    assert conn.getresponse().status == 413
    assert recorder.events == []
    conn.close()


def test_stop_also_ends_keep_alive_connections(server: FunctionUrlServer, recorder: Recorder, ca: TestCA) -> None:
    conn = connect(server, ca)
    conn.request("POST", "/", body=b"{}", headers={"Content-Type": "application/json"})
    assert conn.getresponse().read() == b"ok"
    server.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        conn.request("POST", "/", body=b"{}", headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    assert len(recorder.events) == 1  # the second request never reached the function
    conn.close()


# --- the real heartbeat handler, against moto


@pytest.fixture
def watchdog(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, ca: TestCA
) -> Iterator[tuple[FunctionUrlServer, Keyring]]:
    import boto3
    from hfo_drill.aws_setup import directly, read_functions
    from hfo_drill.timescale import accelerate
    from hfo_watchdog.handlers import entry_points
    from hfo_watchdog.runtime import Container

    keyring_text = "drill-function-url-test-keyring-0123456789"
    session = boto3.session.Session()
    side = directly(session, keyring_text, "https://127.0.0.1:9/healthz", "test")
    read_functions(session, side)
    env, _ = accelerate(side.env("heartbeat"))
    for key, value in {**env, "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    handlers = entry_points(Container())
    server = FunctionUrlServer(
        handlers.heartbeat,
        lambda: LambdaContext.for_function(side.configs["heartbeat"]),
        ca.server_context(),
        url_id=side.url_id,
        region="us-east-1",
    ).start()
    yield server, Keyring.from_secret_string(keyring_text)
    server.stop()


@pytest.mark.moto
def test_the_real_handler_answers_a_signed_heartbeat_with_the_lease(
    watchdog: tuple[FunctionUrlServer, Keyring], ca: TestCA
) -> None:
    server, keyring = watchdog
    hb = Heartbeat("primary", time.time(), new_nonce(), 1, "stopped", 0, True)
    body = build_heartbeat(hb)
    conn = connect(server, ca)
    conn.request(
        "POST", "/", body=body, headers={"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: sign_heartbeat(keyring, body)}
    )
    resp = conn.getresponse()
    answer = resp.read()
    assert resp.status == 200, answer
    verify_lease_answer(keyring, resp.getheader(SIGNATURE_HEADER), answer)
    lease = parse_lease_answer(answer)
    assert lease.nonce == hb.nonce
    assert (lease.site, lease.epoch, lease.ttl_s) == ("primary", 1, 5)  # the accelerated TTL

    conn.request("POST", "/", body=body, headers={"Content-Type": CONTENT_TYPE})  # unsigned
    refused = conn.getresponse()
    assert refused.status == 401
    assert json.loads(refused.read())["error"] == "unsigned"
    assert server.counters.by_status == {200: 1, 401: 1}
    conn.close()
