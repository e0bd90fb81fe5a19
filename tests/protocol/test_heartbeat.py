import json

import pytest
from hfo_protocol import Keyring, ProtocolError
from hfo_protocol.heartbeat import (
    MAX_HEARTBEAT_BYTES,
    REFUSALS,
    Heartbeat,
    LeaseAnswer,
    build_heartbeat,
    build_lease_answer,
    build_refusal,
    parse_heartbeat,
    parse_lease_answer,
    sign_heartbeat,
    sign_lease_answer,
    verify_heartbeat,
    verify_lease_answer,
)
from hfo_protocol.nonce import new_nonce

RING = Keyring(active_kid="default", keys={"default": b"y" * 32})


def _hb(**kw):
    base = dict(
        site="primary",
        sent_at=1_800_000_000.123,
        nonce=new_nonce(),
        seq=7,
        workload="running",
        epoch_seen=3,
        ready=True,
    )
    base.update(kw)
    return Heartbeat(**base)


def test_heartbeat_round_trip_and_signature():
    hb = _hb()
    body = build_heartbeat(hb)
    verify_heartbeat(RING, sign_heartbeat(RING, body), body)
    assert parse_heartbeat(body) == hb


def test_lease_answer_round_trip_and_purpose():
    ans = LeaseAnswer(
        nonce=new_nonce(),
        server_time=1_800_000_001.0,
        site="standby",
        epoch=9,
        ttl_s=90,
        mode="auto",
        phase="on_standby",
        heartbeat_interval_s=10,
    )
    body = build_lease_answer(ans)
    verify_lease_answer(RING, sign_lease_answer(RING, body), body)
    assert parse_lease_answer(body) == ans
    with pytest.raises(ProtocolError):
        verify_heartbeat(RING, sign_lease_answer(RING, body), body)


def _mutated(**changes):
    doc = json.loads(build_heartbeat(_hb()))
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "malformed"),
        (_mutated(v=2), "malformed"),
        (_mutated(site="laptop"), "unknown_site"),
        (_mutated(workload="dancing"), "malformed"),
        (_mutated(seq=-1), "malformed"),
        (_mutated(epoch_seen=True), "malformed"),
        (_mutated(ready="yes"), "malformed"),
        (_mutated(sent_at="2026-01-01 00:00:00"), "malformed"),
        (_mutated(nonce="short"), "malformed"),
        (b"{" + b" " * MAX_HEARTBEAT_BYTES + b"}", "too_large"),
    ],
)
def test_bad_heartbeats_get_a_specific_code(body, code):
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(body)
    assert info.value.code == code
    assert code in REFUSALS


def test_refusal_status_codes():
    assert build_refusal("replay", "seen")[0] == 409
    assert build_refusal("stale", "old")[0] == 422
    status, body = build_refusal("unsigned", "no signature")
    assert status == 401
    assert json.loads(body) == {"v": 1, "accepted": False, "error": "unsigned", "message": "no signature"}
