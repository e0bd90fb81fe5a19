"""Hostile input to every parser of untrusted JSON and every pattern that validates untrusted text
(issue 10): each gets its documented refusal, never a crash and never an acceptance."""

from __future__ import annotations

import json

import pytest
from hfo_protocol import Keyring, ProtocolError, SignatureError, verify
from hfo_protocol.health import HealthDocument, build_health_body, parse_health_body
from hfo_protocol.heartbeat import (
    MAX_HEARTBEAT_BYTES,
    MAX_INT,
    Heartbeat,
    LeaseAnswer,
    build_heartbeat,
    build_lease_answer,
    parse_heartbeat,
    parse_lease_answer,
)
from hfo_protocol.keys import Keyring as KeyringClass
from hfo_protocol.nonce import check_nonce, new_boot_id, new_nonce
from hfo_protocol.timefmt import parse_ts

RING = Keyring(active_kid="k1", keys={"k1": b"k" * 32})
NONCE = new_nonce()


def _hb(**kw: object) -> Heartbeat:
    fields: dict[str, object] = {
        "site": "primary",
        "sent_at": 1_800_000_000.123,
        "nonce": NONCE,
        "seq": 7,
        "workload": "running",
        "epoch_seen": 3,
        "ready": True,
        "boot": new_boot_id(),
    }
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def _hb_doc(**changes: object) -> bytes:
    doc = json.loads(build_heartbeat(_hb()))
    doc.update(changes)
    return json.dumps(doc).encode()


def _answer_doc(**changes: object) -> bytes:
    body = build_lease_answer(LeaseAnswer(NONCE, 1_800_000_000.0, "primary", 4, 60, "auto", "healthy", 10))
    doc = json.loads(body)
    doc.update(changes)
    return json.dumps(doc).encode()


def _health_doc(**hfo_changes: object) -> bytes:
    body = build_health_body(HealthDocument("pass", "primary", "workload", 1_800_000_000.0, NONCE, 4))
    doc = json.loads(body)
    doc["hfo"].update(hfo_changes)
    return json.dumps(doc).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Each within the heartbeat's 4096-byte cap: closed arrays, arrays inside an object, never closed.
DEEP = [_nested(2000), b'{"v":1,"x":' + b"[" * 1500 + b"]" * 1500 + b"}", b"[" * MAX_HEARTBEAT_BYTES]


# -- bug 4: deeply nested JSON --------------------------------------------------------------------


@pytest.mark.parametrize("body", DEEP)
def test_deep_nesting_is_a_malformed_heartbeat(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(body)
    assert info.value.code == "malformed"


@pytest.mark.parametrize("body", DEEP)
def test_deep_nesting_is_a_malformed_lease_answer(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_lease_answer(body)
    assert info.value.code == "malformed"


@pytest.mark.parametrize("body", [*DEEP, _nested(60_000)])
def test_deep_nesting_is_not_a_health_document(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_health_body(body)
    assert info.value.code == "not_health_document"


# -- bug 5: patterns match the whole string -------------------------------------------------------


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " "])
def test_a_nonce_with_a_trailing_character_is_refused(suffix: str) -> None:
    with pytest.raises(ProtocolError):
        check_nonce(NONCE + suffix)
    with pytest.raises(ProtocolError):
        parse_heartbeat(_hb_doc(nonce=NONCE + suffix))
    with pytest.raises(ProtocolError):
        parse_lease_answer(_answer_doc(nonce=NONCE + suffix))
    with pytest.raises(ProtocolError):
        parse_health_body(_health_doc(nonce=NONCE + suffix))


def test_a_timestamp_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ProtocolError):
        parse_ts("2026-01-31T12:00:00.000Z\n", "sent_at")


def test_a_key_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="key id"):
        KeyringClass(active_kid="k1\n", keys={"k1\n": b"k" * 32})


@pytest.mark.parametrize("header", ["v1;kid=k1\n;sig=" + "A" * 43, "v1;kid=k1;sig=" + "A" * 43 + "\nX"])
def test_a_signature_header_is_matched_whole(header: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify(RING, header, "heartbeat", b"x")
    assert info.value.code == "malformed"


# -- smaller points: strict versions, bounded integers, duplicate members -----------------------


@pytest.mark.parametrize("v", [True, 1.0, "1", 2, None])
def test_only_the_integer_1_is_version_1(v: object) -> None:
    with pytest.raises(ProtocolError):
        parse_heartbeat(_hb_doc(v=v))
    with pytest.raises(ProtocolError):
        parse_lease_answer(_answer_doc(v=v))
    with pytest.raises(ProtocolError):
        parse_health_body(_health_doc(v=v))


@pytest.mark.parametrize("field", ["seq", "epoch_seen"])
@pytest.mark.parametrize("value", [MAX_INT + 1, 10**40, -1, 1.5, "1e999"])
def test_heartbeat_integers_are_bounded(field: str, value: object) -> None:
    if value == "1e999":  # parses as a float infinity
        body = _hb_doc(**{field: 0}).replace(f'"{field}": 0'.encode(), f'"{field}": 1e999'.encode())
    else:
        body = _hb_doc(**{field: value})
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(body)
    assert info.value.code == "malformed"


def test_the_largest_integer_is_accepted() -> None:
    assert parse_heartbeat(_hb_doc(seq=MAX_INT, epoch_seen=MAX_INT)).seq == MAX_INT


@pytest.mark.parametrize(
    "lease", [{"site": "primary", "epoch": 10**40, "ttl_s": 60}, {"site": "primary", "epoch": 1, "ttl_s": 10**30}]
)
def test_lease_answer_integers_are_bounded(lease: dict) -> None:
    with pytest.raises(ProtocolError):
        parse_lease_answer(_answer_doc(lease=lease))


def test_health_lease_epoch_is_bounded() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_health_body(_health_doc(leaseEpoch=10**40))
    assert info.value.code == "not_health_document"


def test_a_member_given_twice_is_refused() -> None:
    body = build_heartbeat(_hb())
    twice = body[:-1] + b',"site":"standby"}'
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(twice)
    assert info.value.code == "malformed"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_refused(constant: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_heartbeat(build_heartbeat(_hb()).replace(b'"seq":7', b'"seq":' + constant))


@pytest.mark.parametrize(
    "body",
    [
        '{"v":1}'.encode("utf-16"),  # JSON in another encoding: the wire format is UTF-8
        b'{"v":1,"site":"\xed\xa0\x80"}',  # an encoded lone surrogate is not UTF-8
    ],
)
def test_bodies_that_are_not_utf8_are_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(body)
    assert info.value.code == "malformed"


# -- the boot id (bug 3) ---------------------------------------------------------------------------


def test_boot_id_round_trips_and_is_optional_for_receivers() -> None:
    hb = _hb()
    assert parse_heartbeat(build_heartbeat(hb)) == hb
    legacy = json.loads(build_heartbeat(hb))
    del legacy["boot"]
    assert parse_heartbeat(json.dumps(legacy).encode()).boot is None


@pytest.mark.parametrize(
    "boot", ["short", "x" * 65, "has space 0123456789", "a" * 20 + "\n", 12345678901234567890, "", None]
)
def test_a_bad_boot_id_is_malformed(boot: object) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_heartbeat(_hb_doc(boot=boot))
    assert info.value.code == "malformed"


def test_boot_ids_are_random_per_call() -> None:
    ids = {new_boot_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(parse_heartbeat(build_heartbeat(_hb(boot=i))).boot == i for i in ids)
