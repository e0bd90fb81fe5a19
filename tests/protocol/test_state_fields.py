"""The state-handoff members of the heartbeat and the lease answer (docs/protocol.md#state-credentials):
what an agent sends to ask for credentials and to say which epoch's state it restored, and the
`state` object the watchdog gives the lease holder. Round trips, and a specific `malformed` for every
bad shape, with no secret value in any message or repr."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hfo_protocol import Keyring, ProtocolError
from hfo_protocol.heartbeat import (
    MAX_HEARTBEAT_BYTES,
    MAX_STATE_WORKLOADS,
    Heartbeat,
    LeaseAnswer,
    StateCredentials,
    build_heartbeat,
    build_lease_answer,
    parse_heartbeat,
    parse_lease_answer,
    sign_lease_answer,
    verify_lease_answer,
)
from hfo_protocol.nonce import new_boot_id, new_nonce

RING = Keyring(active_kid="default", keys={"default": b"z" * 32})
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLEtokenEXAMPLEtokenEXAMPLEtoken" * 20


def _hb(**kw: Any) -> Heartbeat:
    base: dict[str, Any] = dict(
        site="primary",
        sent_at=1_800_000_000.123,
        nonce=new_nonce(),
        seq=7,
        workload="running",
        epoch_seen=3,
        ready=True,
        boot=new_boot_id(),
    )
    base.update(kw)
    return Heartbeat(**base)


def _creds(**kw: Any) -> StateCredentials:
    base: dict[str, Any] = dict(
        bucket="hfo-state-123",
        region="eu-west-3",
        endpoint_url=None,
        epoch=9,
        site="standby",
        access_key_id="ASIAEXAMPLEEXAMPLE12",
        secret_access_key=SECRET,
        session_token=TOKEN,
        expires_at=1_800_000_900,
    )
    base.update(kw)
    return StateCredentials(**base)


def _answer(state: StateCredentials | None) -> LeaseAnswer:
    return LeaseAnswer(
        nonce=new_nonce(),
        server_time=1_800_000_001.0,
        site="standby",
        epoch=9,
        ttl_s=30,
        mode="auto",
        phase="on_standby",
        heartbeat_interval_s=10,
        state=state,
    )


def test_a_heartbeat_asking_for_state_and_naming_restored_epochs_round_trips() -> None:
    hb = _hb(state=True, state_restored=(("bot", 7), ("trader", 0)))
    body = build_heartbeat(hb)
    doc = json.loads(body)
    assert doc["state"] is True and doc["state_restored"] == {"bot": 7, "trader": 0}
    assert parse_heartbeat(body) == hb


def test_a_heartbeat_without_the_members_is_unchanged_on_the_wire() -> None:
    """Older watchdogs ignore unknown members; a heartbeat that asks nothing adds nothing."""
    body = build_heartbeat(_hb())
    assert b"state" not in body
    hb = parse_heartbeat(body)
    assert hb.state is False and hb.state_restored == ()


def test_sixteen_workloads_of_63_characters_fit_in_a_heartbeat() -> None:
    restored = tuple((f"{i:02d}" + "w" * 61, 2**53 - 1) for i in range(MAX_STATE_WORKLOADS))
    body = build_heartbeat(_hb(state=True, state_restored=restored))
    assert len(body) <= MAX_HEARTBEAT_BYTES
    assert parse_heartbeat(body).state_restored == restored


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("state", "yes", "state must be true or false"),
        ("state", 1, "state must be true or false"),
        ("state_restored", [], "state_restored must be an object"),
        ("state_restored", {"Bot": 1}, "must be a DNS label"),
        ("state_restored", {"-bot": 1}, "must be a DNS label"),
        ("state_restored", {"bot": -1}, "state_restored[bot] must be an integer"),
        ("state_restored", {"bot": 1.0}, "state_restored[bot] must be an integer"),
        ("state_restored", {"bot": True}, "state_restored[bot] must be an integer"),
        ("state_restored", {f"w{i}": 1 for i in range(MAX_STATE_WORKLOADS + 1)}, "at most 16"),
    ],
)
def test_bad_state_members_of_a_heartbeat_are_malformed(member: str, value: object, message: str) -> None:
    doc = json.loads(build_heartbeat(_hb()))
    doc[member] = value
    with pytest.raises(ProtocolError) as err:
        parse_heartbeat(json.dumps(doc).encode())
    assert err.value.code == "malformed" and message in err.value.message


def test_a_lease_answer_with_credentials_round_trips_signed() -> None:
    ans = _answer(_creds(endpoint_url="http://127.0.0.1:5000"))
    body = build_lease_answer(ans)
    verify_lease_answer(RING, sign_lease_answer(RING, body), body)
    parsed = parse_lease_answer(body)
    assert parsed == ans and parsed.state is not None
    assert json.loads(body)["state"]["session_token"] == TOKEN
    assert parse_lease_answer(build_lease_answer(_answer(None))).state is None


def test_credentials_never_show_their_secret_parts_in_repr() -> None:
    text = repr(_creds()) + repr(_answer(_creds()))
    assert SECRET not in text and TOKEN[:40] not in text and "ASIAEXAMPLE" not in text
    assert "hfo-state-123" in text and "epoch=9" in text


def test_credentials_for_another_lease_than_the_answer_are_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="for the lease the answer carries"):
        build_lease_answer(_answer(_creds(epoch=8)))
    doc = json.loads(build_lease_answer(_answer(_creds())))
    for key, value in (("epoch", 8), ("site", "primary")):
        bad = json.loads(json.dumps(doc))
        bad["state"][key] = value
        with pytest.raises(ProtocolError, match="for the lease the answer carries"):
            parse_lease_answer(json.dumps(bad).encode())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bucket", "Bad_Bucket", "state.bucket has the wrong form"),
        ("bucket", "", "state.bucket must be a non-empty string"),
        ("region", "mars", "state.region has the wrong form"),
        ("endpoint_url", "ftp://x", "state.endpoint_url must be an http(s) URL"),
        ("endpoint_url", 5, "state.endpoint_url must be a non-empty string"),
        ("epoch", 0, "state.epoch must be an integer from 1"),
        ("site", "none", "state.site must be one of"),
        ("access_key_id", "lower-case", "state.access_key_id has the wrong form"),
        ("secret_access_key", "x" * 257, "state.secret_access_key must be a non-empty string of at most 256"),
        ("secret_access_key", "a b", "state.secret_access_key must be printable, without whitespace"),
        ("session_token", None, "state.session_token must be a non-empty string"),
        ("expires_at", "soon", "state.expires_at must be an integer"),
    ],
)
def test_bad_credentials_in_an_answer_are_malformed_without_echoing_values(
    key: str, value: object, message: str
) -> None:
    doc = json.loads(build_lease_answer(_answer(_creds())))
    doc["state"][key] = value
    with pytest.raises(ProtocolError) as err:
        parse_lease_answer(json.dumps(doc).encode())
    assert err.value.code == "malformed" and message in err.value.message
    assert SECRET not in str(err.value) and TOKEN[:40] not in str(err.value)


def test_a_state_member_that_is_not_an_object_is_malformed() -> None:
    doc = json.loads(build_lease_answer(_answer(None)))
    doc["state"] = "credentials"
    with pytest.raises(ProtocolError, match="state must be an object"):
        parse_lease_answer(json.dumps(doc).encode())
