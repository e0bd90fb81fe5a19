"""The heartbeat endpoint against the moto server: the documented check order, a refusal (status and
code) for every bad input with the table byte-for-byte unchanged, signed lease answers, and the
handover a heartbeat completes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from hfo_drill.aws_setup import create_standby_instance, instance_state
from hfo_drill.inbox import AlertInbox
from hfo_drill.lambda_runtime import function_url_event
from hfo_drill.moto_server import MotoServer
from hfo_protocol.heartbeat import build_heartbeat, parse_lease_answer, sign_heartbeat, verify_lease_answer
from hfo_protocol.keys import Keyring
from hfo_protocol.nonce import new_boot_id
from hfo_watchdog.commit import Effects
from hfo_watchdog.core.model import ControlState, Lease, LeaseSite, Mode, Phase, Policy, ProbeResult, Transition
from hfo_watchdog.ec2 import Ec2StandbyInstance, ec2_client
from hfo_watchdog.heartbeat import HeartbeatDeps, handle
from hfo_watchdog.notify import SnsNotifier
from hfo_watchdog.store import MAX_BOOTS, DynamoStateStore
from testsupport.aws_faults import FailingCalls
from testsupport.net import free_port
from testsupport.watchdog import (
    KEYRING,
    TABLE,
    JsonLog,
    create_table,
    heartbeat,
    scan_all,
    signed_heartbeat_event,
    sns_client,
)

pytestmark = pytest.mark.moto

POLICY = Policy(lease_ttl_s=60, heartbeat_interval_s=10, stop_grace_s=30, down_heartbeat_s=180)


@dataclass
class Endpoint:
    client: Any
    store: DynamoStateStore
    notifier: Any = None
    inbox: Any = None
    log: JsonLog = field(default_factory=JsonLog)
    standby: Any = None
    clock: Callable[[], float] = time.time

    def deps(self, **overrides: Any) -> HeartbeatDeps:
        fields: dict[str, Any] = {
            "store": self.store,
            "keyring": KEYRING,
            "policy": POLICY,
            "max_skew_s": 30,
            "effects": lambda: Effects(self.standby, self.notifier, self.log),
            "log": self.log,
            "clock": self.clock,
        }
        fields.update(overrides)
        return HeartbeatDeps(**fields)

    def post(self, event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        return handle(event, self.deps(**overrides))

    def table(self) -> list[dict[str, Any]]:
        return list(scan_all(self.client, TABLE))


@pytest.fixture
def endpoint(aws: MotoServer) -> Endpoint:
    client = create_table()
    inbox = AlertInbox.on_new_topic()
    return Endpoint(
        client=client,
        store=DynamoStateStore(client, TABLE, steady_gap_s=30, writer="heartbeat"),
        notifier=SnsNotifier(sns_client(2), inbox.topic_arn),
        inbox=inbox,
    )


def _refusal(answer: dict[str, Any]) -> tuple[int, str]:
    body = json.loads(answer["body"])
    assert body["v"] == 1 and body["accepted"] is False and body["message"]
    assert "x-hfo-signature" not in answer["headers"]  # refusals are not signed
    return answer["statusCode"], body["error"]


def test_accepted_heartbeat_gets_a_signed_lease_answer(endpoint: Endpoint) -> None:
    hb = heartbeat("primary", workload="running", epoch_seen=1, seq=42)
    answer = endpoint.post(signed_heartbeat_event(hb))
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    assert answer["headers"]["cache-control"] == "no-store"
    body = answer["body"].encode()
    verify_lease_answer(KEYRING, answer["headers"]["x-hfo-signature"], body)
    lease = parse_lease_answer(body)
    assert lease.nonce == hb.nonce
    assert (lease.site, lease.epoch, lease.ttl_s, lease.heartbeat_interval_s) == ("primary", 1, 60, 10)
    assert (lease.mode, lease.phase) == ("auto", "healthy")
    assert abs(lease.server_time - time.time()) < 5
    _, primary, standby = endpoint.store.load()
    assert primary is not None and primary.sent_at == pytest.approx(hb.sent_at, abs=0.001)
    assert (primary.workload, primary.epoch_seen, primary.count) == ("running", 1, 1)
    assert standby is None
    # The primary's first accepted heartbeat arms the watchdog: the control item records when.
    control = endpoint.store.load()[0]
    assert control.armed_at is not None and abs(control.armed_at - time.time()) < 5


def test_base64_bodies_and_charset_parameters_are_accepted(endpoint: Endpoint) -> None:
    hb = heartbeat("standby", workload="stopped")
    event = signed_heartbeat_event(hb, base64_body=True)
    event["headers"]["content-type"] = "application/json; charset=utf-8"
    answer = endpoint.post(event)
    assert answer["statusCode"] == 200, answer["body"]
    assert parse_lease_answer(answer["body"].encode()).nonce == hb.nonce


def test_the_answer_carries_the_stored_lease(endpoint: Endpoint) -> None:
    state = ControlState(
        armed_at=1.0,
        version=1,
        mode=Mode.AUTO,
        phase=Phase.ON_STANDBY,
        lease=Lease(LeaseSite.STANDBY, 5, time.time() - 100),
    )
    assert endpoint.store.save(0, state, None)
    answer = endpoint.post(signed_heartbeat_event(heartbeat("primary", workload="stopped", ready=True)))
    lease = parse_lease_answer(answer["body"].encode())
    assert (lease.site, lease.epoch, lease.phase) == ("standby", 5, "on_standby")


def _signed(body: bytes, keyring: Keyring = KEYRING, **headers: str) -> dict[str, Any]:
    return function_url_event(
        body, {"Content-Type": "application/json", "X-HFO-Signature": sign_heartbeat(keyring, body), **headers}
    )


def _signed_b64(body: bytes) -> dict[str, Any]:
    """Signed, and base64 in the event, as a Function URL delivers a body that is not UTF-8 text."""
    return {**_signed(body), "body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _hb_body(**fields: Any) -> bytes:
    doc = json.loads(build_heartbeat(heartbeat("primary")))
    doc.update(fields)
    for key in [k for k, v in fields.items() if v is _DROP]:
        del doc[key]
    return json.dumps(doc).encode()


_DROP = object()
OTHER_KEYRING = Keyring.from_secret_string("another-secret-entirely-0123456789-abcdef")
ROTATED = Keyring.from_secret_string(json.dumps({"active": "k9", "keys": {"k9": "k" * 40}}))


def _bad_events() -> list[tuple[str, Callable[[], dict[str, Any]], int, str]]:
    good = build_heartbeat(heartbeat("primary"))
    sig = sign_heartbeat(KEYRING, good)
    big = good + b" " * (4097 - len(good))
    return [
        (
            "GET",
            lambda: function_url_event(good, {"Content-Type": "application/json"}, method="GET"),
            405,
            "method_not_allowed",
        ),
        (
            "PUT even with a huge body",
            lambda: function_url_event(b"x" * 10000, method="PUT"),
            405,
            "method_not_allowed",
        ),
        ("4097 bytes, signed", lambda: _signed(big), 413, "too_large"),
        ("huge base64, unsigned", lambda: function_url_event(b"{" * 8000, base64_body=True), 413, "too_large"),
        (
            "text/plain",
            lambda: function_url_event(good, {"Content-Type": "text/plain", "X-HFO-Signature": sig}),
            415,
            "unsupported_media_type",
        ),
        ("no content type", lambda: function_url_event(good, {"X-HFO-Signature": sig}), 415, "unsupported_media_type"),
        ("unsigned", lambda: function_url_event(good, {"Content-Type": "application/json"}), 401, "unsigned"),
        (
            "empty signature",
            lambda: function_url_event(good, {"Content-Type": "application/json", "X-HFO-Signature": ""}),
            401,
            "unsigned",
        ),
        (
            "unsigned and malformed",
            lambda: function_url_event(b"{nope", {"Content-Type": "application/json"}),
            401,
            "unsigned",
        ),
        (
            "signature header malformed",
            lambda: function_url_event(good, {"Content-Type": "application/json", "X-HFO-Signature": "v1;sig=abc"}),
            401,
            "bad_signature",
        ),
        ("signed with another secret", lambda: _signed(good, OTHER_KEYRING), 401, "bad_signature"),
        ("signed with an unknown key id", lambda: _signed(good, ROTATED), 401, "unknown_key"),
        (
            "body changed after signing",
            lambda: function_url_event(
                good.replace(b'"ready":true', b'"ready":false'),
                {"Content-Type": "application/json", "X-HFO-Signature": sig},
            ),
            401,
            "bad_signature",
        ),
        (
            "bad base64",
            lambda: {**_signed(good), "body": "!!!not base64!!!", "isBase64Encoded": True},
            401,
            "bad_signature",
        ),
        (
            "bad base64 and text/plain: the content type is checked first",
            lambda: {
                **function_url_event(good, {"Content-Type": "text/plain", "X-HFO-Signature": sig}),
                "body": "!!!not base64!!!",
                "isBase64Encoded": True,
            },
            415,
            "unsupported_media_type",
        ),
        (
            "bad base64 and unsigned: the signature is checked first",
            lambda: {
                **function_url_event(good, {"Content-Type": "application/json"}),
                "body": "!!!not base64!!!",
                "isBase64Encoded": True,
            },
            401,
            "unsigned",
        ),
        (
            "a lone surrogate in the body, signed header",
            lambda: {**_signed(good), "body": good.decode() + "\ud800"},
            401,
            "bad_signature",
        ),
        (
            "a lone surrogate in the body, unsigned",
            lambda: {**function_url_event(good, {"Content-Type": "application/json"}), "body": "\udfff"},
            401,
            "unsigned",
        ),
        ("signed, nested 2000 deep", lambda: _signed(b"[" * 2000 + b"]" * 2000), 400, "malformed"),
        ("signed, never closed", lambda: _signed(b"[" * 4096), 400, "malformed"),
        (
            "signed, nested in a member",
            lambda: _signed(b'{"v":1,"site":' + b"[" * 1500 + b"]" * 1500 + b"}"),
            400,
            "malformed",
        ),
        ("signed, nonce ending in a newline", lambda: _signed(_hb_body(nonce="n" * 32 + "\n")), 400, "malformed"),
        ("signed, v true", lambda: _signed(_hb_body(v=True)), 400, "malformed"),
        ("signed, 41-digit seq", lambda: _signed(_hb_body(seq=10**40)), 400, "malformed"),
        ("signed, 41-digit epoch_seen", lambda: _signed(_hb_body(epoch_seen=10**40)), 400, "malformed"),
        ("signed, seq past 2^53-1", lambda: _signed(_hb_body(seq=2**53)), 400, "malformed"),
        ("signed, boot id too short", lambda: _signed(_hb_body(boot="short")), 400, "malformed"),
        (
            "signed, a member given twice",
            lambda: _signed(build_heartbeat(heartbeat("primary"))[:-1] + b',"site":"standby"}'),
            400,
            "malformed",
        ),
        ("signed, UTF-16 (base64 on the wire)", lambda: _signed_b64(good.decode().encode("utf-16")), 400, "malformed"),
        ("signed, not JSON", lambda: _signed(b"not json"), 400, "malformed"),
        ("signed, JSON array", lambda: _signed(b"[1,2]"), 400, "malformed"),
        ("signed, wrong version", lambda: _signed(_hb_body(v=2)), 400, "malformed"),
        ("signed, no nonce", lambda: _signed(_hb_body(nonce=_DROP)), 400, "malformed"),
        ("signed, short nonce", lambda: _signed(_hb_body(nonce="abc")), 400, "malformed"),
        ("signed, bad workload", lambda: _signed(_hb_body(workload="dancing")), 400, "malformed"),
        ("signed, sent_at not RFC 3339", lambda: _signed(_hb_body(sent_at="yesterday")), 400, "malformed"),
        ("signed, negative seq", lambda: _signed(_hb_body(seq=-1)), 400, "malformed"),
        ("signed, unknown site", lambda: _signed(_hb_body(site="tertiary")), 403, "unknown_site"),
        (
            "signed, unknown site and bad schema",
            lambda: _signed(_hb_body(site="tertiary", ready="yes")),
            400,
            "malformed",
        ),
        ("signed, 31 s old", lambda: _signed(_hb_body(sent_at=_ts(time.time() - 31))), 422, "stale"),
        ("signed, 31 s ahead", lambda: _signed(_hb_body(sent_at=_ts(time.time() + 31))), 422, "future"),
    ]


def _ts(t: float) -> str:
    from hfo_protocol.timefmt import format_ts

    return format_ts(t)


BAD = _bad_events()


_SEEDED: dict[str, Any] = {}


@pytest.fixture
def seeded(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    """A realistic table (control item, both site items, one history item), built once and reused
    while it is intact: refusals must leave it so, which each test checks."""
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    client = boto3.client("dynamodb")
    try:
        intact = scan_all(client, TABLE) == _SEEDED.get("items")
    except client.exceptions.ResourceNotFoundException:
        intact = False
    if not intact:
        moto.reset()
        client = create_table()
        endpoint = Endpoint(client=client, store=DynamoStateStore(client, TABLE, steady_gap_s=30))
        now = time.time()
        endpoint.post(signed_heartbeat_event(heartbeat("primary", now - 5)))
        endpoint.post(signed_heartbeat_event(heartbeat("standby", now - 5, workload="stopped")))
        armed = endpoint.store.load()[0]  # the primary's first heartbeat armed the watchdog
        state = ControlState(
            version=armed.version + 1,
            phase=Phase.HEALTHY,
            lease=Lease(LeaseSite.PRIMARY, 1, now - 100),
            armed_at=armed.armed_at,
        )
        t = Transition(Phase.HEALTHY, Phase.HEALTHY, state.lease, state.lease, ("seed",), now - 50)
        assert endpoint.store.save(armed.version, state, t)
        _SEEDED["items"] = scan_all(client, TABLE)
        assert len(_SEEDED["items"]) == 4
    return Endpoint(client=client, store=DynamoStateStore(client, TABLE, steady_gap_s=30))


@pytest.mark.parametrize(("name", "make", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_input_is_refused_without_changing_state(
    seeded: Endpoint, name: str, make: Callable[[], dict[str, Any]], status: int, code: str
) -> None:
    before = seeded.table()
    assert len(before) == 4
    answer = seeded.post(make())
    assert _refusal(answer) == (status, code), name
    assert seeded.table() == before
    [refused] = seeded.log.records("heartbeat_refused")
    assert refused["error"] == code


def test_replayed_and_older_heartbeats_are_refused(endpoint: Endpoint) -> None:
    hb = heartbeat("primary")
    assert endpoint.post(signed_heartbeat_event(hb))["statusCode"] == 200
    before = endpoint.table()
    assert _refusal(endpoint.post(signed_heartbeat_event(hb))) == (409, "replay")
    older = replace(hb, sent_at=hb.sent_at - 1, nonce="x" * 32)
    assert _refusal(endpoint.post(signed_heartbeat_event(older))) == (409, "replay")
    assert endpoint.table() == before


def test_unreachable_store_is_503_and_nothing_changes(endpoint: Endpoint, aws: MotoServer) -> None:
    dead = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.3, read_timeout=0.3, retries={"total_max_attempts": 1}),
    )
    before = endpoint.table()
    answer = endpoint.post(signed_heartbeat_event(heartbeat()), store=DynamoStateStore(dead, TABLE))
    assert _refusal(answer) == (503, "unavailable")
    assert endpoint.table() == before
    assert endpoint.log.records("heartbeat_unavailable")


def test_checks_run_in_the_documented_order(endpoint: Endpoint) -> None:
    """Each input breaks two rules; the earlier check in docs/protocol.md decides the answer."""
    bad_json = b"{" * 10
    cases = [
        (function_url_event(b"x" * 5000, {"Content-Type": "text/plain"}, method="GET"), "method_not_allowed"),
        (function_url_event(b"x" * 5000, {"Content-Type": "text/plain"}), "too_large"),
        (function_url_event(bad_json, {"Content-Type": "text/plain"}), "unsupported_media_type"),
        (function_url_event(bad_json, {"Content-Type": "application/json"}), "unsigned"),
        (_signed(_hb_body(site="tertiary", sent_at=_ts(time.time() - 100)), OTHER_KEYRING), "bad_signature"),
        (_signed(_hb_body(site="tertiary", sent_at=_ts(time.time() - 100))), "unknown_site"),
        (_signed(_hb_body(sent_at=_ts(time.time() - 100))), "stale"),
    ]
    for event, code in cases:
        assert _refusal(endpoint.post(event))[1] == code
    assert endpoint.table() == []


def test_a_heartbeat_completes_the_handback_and_stops_the_standby(endpoint: Endpoint) -> None:
    instance_id = create_standby_instance()
    boto3.client("ec2").start_instances(InstanceIds=[instance_id])
    endpoint.standby = Ec2StandbyInstance(ec2_client(2), instance_id, ())
    now = time.time()
    # Handing back: lease none at epoch 8; the primary heartbeats, the standby still reports running.
    state = ControlState(
        armed_at=1.0,
        version=3,
        mode=Mode.AUTO,
        phase=Phase.HANDING_BACK,
        phase_since=now - 2,
        lease=Lease(LeaseSite.NONE, 8, now - 2),
        last_probe=ProbeResult(ok=True, at=now - 1, http_status=200),
        probe_ok_streak=5,
    )
    assert endpoint.store.save(0, replace(state, version=1), None)
    assert endpoint.store.save(1, replace(state, version=2), None)
    running = endpoint.post(signed_heartbeat_event(heartbeat("standby", now - 1.5, workload="running", epoch_seen=8)))
    assert parse_lease_answer(running["body"].encode()).site == "none"
    primary = endpoint.post(signed_heartbeat_event(heartbeat("primary", now - 1, workload="stopped", epoch_seen=8)))
    assert parse_lease_answer(primary["body"].encode()).site == "none"  # the standby may still run: wait
    assert instance_state(instance_id) == "running"
    assert endpoint.store.load_control().version == 2
    # The standby acknowledges epoch 8 with its workload stopped: this very heartbeat completes the
    # handover, lease to the primary (epoch 9), and the standby is stopped.
    done = endpoint.post(signed_heartbeat_event(heartbeat("standby", now, workload="stopped", epoch_seen=8)))
    lease = parse_lease_answer(done["body"].encode())
    assert (lease.site, lease.epoch) == ("primary", 9)
    assert instance_state(instance_id) in ("stopping", "stopped")
    control = endpoint.store.load_control()
    assert control.lease.site == LeaseSite.PRIMARY and control.lease.epoch == 9
    [entry] = endpoint.store.history(5)
    assert entry.writer == "heartbeat" and entry.to_lease.epoch == 9
    assert any("standby acknowledged epoch 8" in r for r in entry.reasons)
    # Both signals were good (last probe ok, primary heartbeating): home and healthy, notified once.
    assert [m.key for m in endpoint.inbox.messages()] == ["transition:handing_back->healthy"]
    [decision] = endpoint.log.records("decision")
    assert decision["trigger"] == "heartbeat:standby" and decision["lease"] == "primary#9"


def test_a_handover_lost_to_a_concurrent_writer_answers_the_stored_lease(endpoint: Endpoint) -> None:
    now = time.time()
    state = ControlState(
        armed_at=1.0, version=1, phase=Phase.HANDING_BACK, phase_since=now - 2, lease=Lease(LeaseSite.NONE, 8, now - 2)
    )
    assert endpoint.store.save(0, state, None)
    endpoint.post(signed_heartbeat_event(heartbeat("standby", now - 1.5, workload="running", epoch_seen=8)))
    endpoint.post(signed_heartbeat_event(heartbeat("primary", now - 1, workload="stopped", epoch_seen=8)))
    assert endpoint.store.load_control().version == 1

    class Racing(DynamoStateStore):
        """The real store; just before this invocation's write, a tick moves the lease elsewhere."""

        def save(self, expected_version: int, new: ControlState, transition: Any, **kw: Any) -> bool:
            winner = replace(state, version=2, phase=Phase.ON_STANDBY, lease=Lease(LeaseSite.STANDBY, 9, now))
            assert endpoint.store.save(1, winner, None)
            return super().save(expected_version, new, transition, **kw)

    racing = Racing(endpoint.client, TABLE, steady_gap_s=30, writer="heartbeat")
    answer = endpoint.post(
        signed_heartbeat_event(heartbeat("standby", now, workload="stopped", epoch_seen=8)), store=racing
    )
    lease = parse_lease_answer(answer["body"].encode())
    assert (lease.site, lease.epoch) == ("standby", 9)  # what is stored, not what this invocation decided
    assert endpoint.log.records("lost_race") and endpoint.inbox.messages() == []


def test_the_raw_request_body_is_what_is_verified(endpoint: Endpoint) -> None:
    """Re-serialising the JSON would break signatures over other spellings: the bytes are verified."""
    body = (
        b'{ "v": 1, "site": "primary", "sent_at": "'
        + _ts(time.time()).encode()
        + (b'", "nonce": "' + b"n" * 32 + b'", "seq": 1, "workload": "running", "epoch_seen": 1, "ready": true }')
    )
    answer = endpoint.post(_signed(body))
    assert answer["statusCode"] == 200, answer["body"]
    event = _signed(body)
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    assert _refusal(endpoint.post(event)) == (409, "replay")  # same sent_at: verified, then refused as a replay


# -- the replay guard across wall-clock steps (issue 10, bug 3) ------------------------------------


def _beat(endpoint: Endpoint, boot: str | None, seq: int, sent_at: float, **kw: Any) -> dict[str, Any]:
    return endpoint.post(signed_heartbeat_event(heartbeat("primary", sent_at, boot=boot, seq=seq)), **kw)


def test_a_backward_clock_step_within_one_agent_process_keeps_heartbeats_accepted(endpoint: Endpoint) -> None:
    boot, now = new_boot_id(), time.time()
    assert _beat(endpoint, boot, 1, now)["statusCode"] == 200
    assert _beat(endpoint, boot, 2, now + 10)["statusCode"] == 200
    # The agent's clock steps back 20 s: its heartbeats carry earlier sent_at, and a higher seq.
    for seq, sent_at in ((3, now - 10), (4, now - 9), (5, now - 0.5)):
        answer = _beat(endpoint, boot, seq, sent_at)
        assert answer["statusCode"] == 200, answer["body"]
    _, primary, _ = endpoint.store.load()
    assert primary is not None and primary.count == 5


def test_a_repeated_or_lower_seq_of_one_process_is_a_replay_whatever_its_sent_at(endpoint: Endpoint) -> None:
    boot, now = new_boot_id(), time.time()
    assert _beat(endpoint, boot, 7, now - 5)["statusCode"] == 200
    before = endpoint.table()
    for seq in (7, 6, 1):
        assert _refusal(_beat(endpoint, boot, seq, now)) == (409, "replay")  # a later sent_at does not help
    assert endpoint.table() == before
    assert _beat(endpoint, boot, 8, now)["statusCode"] == 200


def test_a_captured_heartbeat_of_a_previous_process_is_refused(endpoint: Endpoint) -> None:
    old, new, now = new_boot_id(), new_boot_id(), time.time()
    captured = signed_heartbeat_event(heartbeat("primary", now - 3, boot=old, seq=41))
    assert endpoint.post(captured)["statusCode"] == 200
    assert _beat(endpoint, old, 42, now - 2)["statusCode"] == 200
    # The agent restarts (a new process, a new boot id, seq from 1), then the capture is replayed.
    assert _beat(endpoint, new, 1, now - 1)["statusCode"] == 200
    assert _refusal(endpoint.post(captured)) == (409, "replay")
    assert _refusal(_beat(endpoint, old, 42, now)) == (409, "replay")


def test_boot_marks_are_kept_for_twice_the_skew_and_bounded(endpoint: Endpoint) -> None:
    clock = {"now": time.time()}
    start = clock["now"]
    tick = lambda: clock["now"]  # noqa: E731
    boots = [new_boot_id() for _ in range(MAX_BOOTS + 1)]
    for i, boot in enumerate(boots[:MAX_BOOTS]):
        clock["now"] = start + i
        assert _beat(endpoint, boot, 1, clock["now"], clock=tick)["statusCode"] == 200
    # A ninth agent process within 2 x 30 s of the first: refused, as a replay would be.
    clock["now"] = start + 59
    assert _refusal(_beat(endpoint, boots[-1], 1, clock["now"], clock=tick)) == (409, "replay")
    # The first process heartbeated 60 s ago: a copy of its heartbeats is stale by now, so it is
    # forgotten and the new process is accepted in its place.
    clock["now"] = start + 60.5
    assert _beat(endpoint, boots[-1], 1, clock["now"], clock=tick)["statusCode"] == 200
    [item] = [i for i in endpoint.table() if i["pk"]["S"] == "SITE"]
    assert boots[0] not in item["boots"]["M"] and boots[-1] in item["boots"]["M"]
    assert len(item["boots"]["M"]) == MAX_BOOTS
    stale = signed_heartbeat_event(heartbeat("primary", start, boot=boots[0], seq=1))
    assert _refusal(endpoint.post(stale, clock=tick)) == (422, "stale")


def test_heartbeats_without_a_boot_id_keep_the_sent_at_rule(endpoint: Endpoint) -> None:
    """Agents older than the boot id: their heartbeats are judged as before (sent_at must grow)."""
    now = time.time()
    assert _beat(endpoint, None, 1, now - 2)["statusCode"] == 200
    assert _refusal(_beat(endpoint, None, 2, now - 2)) == (409, "replay")
    assert _beat(endpoint, None, 1, now - 1)["statusCode"] == 200  # seq means nothing to them
    assert _beat(endpoint, new_boot_id(), 1, now - 20)["statusCode"] == 200  # a new agent beside it


# -- a refusal changes no state, whichever store call fails (issue 10, bug 6) ----------------------


def _handing_back(endpoint: Endpoint) -> tuple[str, float]:
    """The handback of test_a_heartbeat_completes_the_handback_and_stops_the_standby, one
    heartbeat short: the next stopped heartbeat of the standby completes it."""
    instance_id = create_standby_instance()
    boto3.client("ec2").start_instances(InstanceIds=[instance_id])
    endpoint.standby = Ec2StandbyInstance(ec2_client(2), instance_id, ())
    now = time.time()
    state = ControlState(
        armed_at=1.0,
        version=1,
        phase=Phase.HANDING_BACK,
        phase_since=now - 2,
        lease=Lease(LeaseSite.NONE, 8, now - 2),
        last_probe=ProbeResult(ok=True, at=now - 1, http_status=200),
        probe_ok_streak=5,
    )
    assert endpoint.store.save(0, state, None)
    endpoint.post(signed_heartbeat_event(heartbeat("standby", now - 1.5, workload="running", epoch_seen=8)))
    endpoint.post(signed_heartbeat_event(heartbeat("primary", now - 1, workload="stopped", epoch_seen=8)))
    return instance_id, now


def test_the_read_failing_refuses_the_heartbeat_without_a_trace(endpoint: Endpoint) -> None:
    """The point the issue names: the store read that came after the site item's write failed,
    and the handler answered 503 with the site item already written."""
    endpoint.post(signed_heartbeat_event(heartbeat("primary", time.time() - 1)))
    before = endpoint.table()
    client = boto3.client("dynamodb")
    faults = FailingCalls(client, fail_operations={"BatchGetItem"})
    answer = endpoint.post(signed_heartbeat_event(heartbeat("primary")), store=DynamoStateStore(client, TABLE))
    assert _refusal(answer) == (503, "unavailable")
    assert faults.failed and endpoint.table() == before


@pytest.mark.parametrize(
    ("fail_at", "fails"), [(1, "BatchGetItem: the read"), (2, "the record"), (3, "the handover's control write")]
)
def test_a_store_failure_at_any_call_refuses_without_a_trace_or_accepts(
    endpoint: Endpoint, fail_at: int, fails: str
) -> None:
    """The heartbeat that completes a handback makes three store calls: one read, the record
    (a transaction with the control item's version check), the handover's control write.
    Whichever one fails: a refusal leaves the table as it was, and an accepted heartbeat is
    answered with a lease no site can act on wrongly (the stored one, or `none` at the epoch
    read: the handover waits for the next heartbeat or tick)."""
    _handing_back(endpoint)
    before = endpoint.table()
    client = boto3.client("dynamodb")
    faults = FailingCalls(client, fail={fail_at})
    store = DynamoStateStore(client, TABLE, steady_gap_s=30, writer="heartbeat")
    answer = endpoint.post(
        signed_heartbeat_event(heartbeat("standby", time.time(), workload="stopped", epoch_seen=8)), store=store
    )
    assert faults.failed == [faults.calls[fail_at - 1]]  # this call, and only it, failed
    if answer["statusCode"] != 200:
        assert _refusal(answer) == (503, "unavailable")
        assert endpoint.table() == before, faults.calls
        return
    lease = parse_lease_answer(answer["body"].encode())
    stored = endpoint.store.load_control().lease
    assert (lease.site, lease.epoch) in ((stored.site.value, stored.epoch), ("none", 8)), faults.calls
    _, _, standby = endpoint.store.load()
    assert standby is not None and standby.workload == "stopped"  # the accepted heartbeat is recorded
    assert fail_at == 3 and (lease.site, lease.epoch) == ("none", 8)  # only the handover could fail after the record
    assert endpoint.store.load_control().lease.site == LeaseSite.NONE
    [deferred] = endpoint.log.records("handover_deferred")
    assert deferred["site"] == "standby"
