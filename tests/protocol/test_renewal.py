"""Lease renewals over the probe path (hfo_protocol.renewal, docs/protocol.md#renewal): what the
watchdog signs and the health service accepts, and every specific refusal."""

from __future__ import annotations

import json

import pytest
from hfo_protocol import Keyring, ProtocolError
from hfo_protocol.heartbeat import sign_heartbeat
from hfo_protocol.nonce import new_nonce
from hfo_protocol.renewal import (
    MAX_RENEWAL_BYTES,
    MAX_TTL_S,
    REFUSALS,
    LeaseRenewal,
    build_renewal,
    build_renewal_ack,
    build_renewal_refusal,
    parse_renewal,
    read_renewal,
    sign_renewal,
)

RING = Keyring(active_kid="k2", keys={"k2": b"r" * 32, "k1": b"q" * 32})
OTHER = Keyring(active_kid="k9", keys={"k9": b"z" * 32})
NONCE = "N0nce-for-the-probe_0123456789ab"


def _renewal(**kw: object) -> LeaseRenewal:
    base: dict[str, object] = {
        "site": "primary",
        "epoch": 7,
        "nonce": NONCE,
        "ttl_s": 90.0,
        "issued_at": 1_800_000_000.25,
    }
    base.update(kw)
    return LeaseRenewal(**base)  # type: ignore[arg-type]


def _doc(**changes: object) -> bytes:
    doc = json.loads(build_renewal(_renewal()))
    for key, value in changes.items():
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def _code(body: bytes, keyring: Keyring = RING, header: str | None = None) -> str:
    with pytest.raises(ProtocolError) as info:
        read_renewal(keyring, sign_renewal(RING, body) if header is None else header, body)
    return info.value.code


def test_a_signed_renewal_round_trips() -> None:
    body = build_renewal(_renewal())
    assert json.loads(body) == {
        "v": 1,
        "purpose": "renewal",
        "site": "primary",
        "epoch": 7,
        "nonce": NONCE,
        "ttl_s": 90,
        "issued_at": "2027-01-15T08:00:00.250Z",
    }
    assert read_renewal(RING, sign_renewal(RING, body), body) == _renewal()
    assert parse_renewal(build_renewal(_renewal(ttl_s=12.5))).ttl_s == 12.5


def test_a_retired_key_still_verifies_and_an_unknown_one_is_named() -> None:
    body = build_renewal(_renewal())
    old = Keyring(active_kid="k1", keys={"k1": b"q" * 32})
    assert read_renewal(RING, sign_renewal(old, body), body).epoch == 7
    assert _code(body, header=sign_renewal(OTHER, body)) == "unknown_key"


@pytest.mark.parametrize(
    ("header_for", "code"),
    [
        (lambda body: None, "unsigned"),
        (lambda body: "", "unsigned"),
        (lambda body: "v1;kid=k2;sig=short", "bad_signature"),
        (lambda body: sign_renewal(RING, body + b" "), "bad_signature"),  # signed another body
        (lambda body: sign_heartbeat(RING, body), "bad_signature"),  # a heartbeat signature: wrong purpose
    ],
)
def test_bad_signatures_are_refused(header_for, code: str) -> None:  # type: ignore[no-untyped-def]
    body = build_renewal(_renewal())
    with pytest.raises(ProtocolError) as info:
        read_renewal(RING, header_for(body), body)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"purpose": "heartbeat"}, "wrong_purpose"),
        ({"purpose": ...}, "wrong_purpose"),
        ({"v": 2}, "malformed"),
        ({"v": True}, "malformed"),
        ({"site": "none"}, "malformed"),
        ({"site": "laptop"}, "malformed"),
        ({"epoch": 0}, "malformed"),
        ({"epoch": 7.0}, "malformed"),
        ({"epoch": "7"}, "malformed"),
        ({"epoch": 2**53}, "malformed"),
        ({"nonce": "short"}, "bad_nonce"),
        ({"nonce": NONCE + "\n"}, "bad_nonce"),
        ({"nonce": NONCE + "/"}, "bad_nonce"),
        ({"nonce": 12345678901234567890}, "bad_nonce"),
        ({"ttl_s": 0.5}, "bad_ttl"),
        ({"ttl_s": MAX_TTL_S + 0.001}, "bad_ttl"),
        ({"ttl_s": -90}, "bad_ttl"),
        ({"ttl_s": True}, "malformed"),
        ({"ttl_s": "90"}, "malformed"),
        ({"ttl_s": ...}, "malformed"),
        ({"issued_at": "yesterday"}, "malformed"),
        ({"issued_at": ...}, "malformed"),
    ],
)
def test_each_bad_field_gets_its_specific_refusal(changes: dict[str, object], code: str) -> None:
    assert _code(_doc(**changes)) == code


def test_unknown_members_are_ignored_like_in_every_message() -> None:
    assert parse_renewal(_doc(note="added later")) == _renewal()


def test_the_ttl_bounds_are_those_of_the_watchdog() -> None:
    assert MAX_TTL_S == 3600  # the watchdog's upper bound for its probe lease TTL
    assert parse_renewal(build_renewal(_renewal(ttl_s=MAX_TTL_S))).ttl_s == MAX_TTL_S
    assert parse_renewal(build_renewal(_renewal(ttl_s=1))).ttl_s == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"v":1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"not json",
        b"\xff\xfe{}",
        b'{"v":1,"v":1}',
        b'{"v":NaN}',
        b"[]",
    ],
)
def test_hostile_json_is_a_clear_refusal(body: bytes) -> None:
    code = _code(body)
    assert code in ("malformed", "too_large")


def test_a_body_over_the_cap_is_refused_before_its_signature_is_checked() -> None:
    body = b'{"v":1,"pad":"' + b"x" * MAX_RENEWAL_BYTES + b'"}'
    assert _code(body, header="") == "too_large"


def test_refusals_and_ack() -> None:
    assert {REFUSALS[c] for c in ("unsigned", "bad_signature", "unknown_key")} == {401}
    status, body = build_renewal_refusal("nonce_used", "already renewed once")
    assert status == 409
    assert json.loads(body) == {"v": 1, "accepted": False, "error": "nonce_used", "message": "already renewed once"}
    assert json.loads(build_renewal_ack(7, NONCE, 88.12345)) == {
        "v": 1,
        "accepted": True,
        "epoch": 7,
        "nonce": NONCE,
        "until_in_s": 88.123,
    }
    with pytest.raises(KeyError):
        build_renewal_refusal("no_such_code", "")


def test_fresh_nonces_are_valid_renewal_nonces() -> None:
    nonce = new_nonce()
    assert parse_renewal(build_renewal(_renewal(nonce=nonce))).nonce == nonce


def test_the_examples_in_the_docs_are_what_the_code_reads_and_writes() -> None:
    import re

    from hfo_site.agent_status import parse_status_answer
    from testsupport.tools import REPO_ROOT

    page = (REPO_ROOT / "docs" / "protocol.md").read_text()
    section = page[page.index("## Renewal") : page.index("## Lease endpoint")]
    (renewal,) = re.findall(r'^\s*(\{"epoch".*"purpose":"renewal".*\})$', section, re.MULTILINE)
    parsed = parse_renewal(renewal.replace("<N>", NONCE).encode())
    assert (parsed.site, parsed.epoch, parsed.ttl_s) == ("primary", 7, 90.0)
    (grants,) = re.findall(r'`(\{"grants".*?\})`', section)
    assert parse_status_answer(grants.encode())[0].remaining_s == 88.5
    (ack,) = re.findall(r'`(\{"accepted":true.*?\})`', section)
    assert json.loads(ack.replace("<N>", NONCE)).keys() == json.loads(build_renewal_ack(7, NONCE, 1.0)).keys()
    assert set(REFUSALS) <= set(re.findall(r"`([a-z_]+)`", section))  # every refusal code is documented
