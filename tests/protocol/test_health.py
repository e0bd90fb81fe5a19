import json

import pytest
from hfo_protocol import Keyring, ProtocolError, SignatureError
from hfo_protocol.health import (
    HealthDocument,
    build_health_body,
    http_status_for,
    parse_health_body,
    sign_health,
    verify_health,
)
from hfo_protocol.nonce import new_nonce

RING = Keyring(active_kid="default", keys={"default": b"x" * 32})


def _doc(**kw):
    base = dict(status="pass", site="primary", basis="workload", time=1_800_000_000.5, nonce=new_nonce(), lease_epoch=4)
    base.update(kw)
    return HealthDocument(**base)


def test_round_trip_keeps_every_field():
    doc = _doc(checks={"workload:ready": [{"status": "pass"}]})
    parsed = parse_health_body(build_health_body(doc))
    assert parsed == doc


def test_document_follows_ietf_format():
    body = json.loads(build_health_body(_doc(status="warn")))
    assert body["status"] == "warn"
    assert body["serviceId"] == "hfo-health"
    assert "checks" not in body  # details only in the token-gated answer


def test_signature_binds_the_nonce():
    doc = _doc()
    body = build_health_body(doc)
    header = sign_health(RING, doc.nonce, body)
    verify_health(RING, header, doc.nonce, body)
    with pytest.raises(SignatureError):
        verify_health(RING, header, new_nonce(), body)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"[]",
        b'{"status": "ok"}',
        b'{"status": "pass"}',
        b'{"status": "pass", "hfo": {"v": 1, "site": "primary", "basis": "workload", "time": "yesterday"}}',
        b'{"status": "pass", "hfo": {"v": 1, "site": "primary", "basis": "bogus", "time": "2026-01-01T00:00:00Z"}}',
        b"\xff\xfe",
    ],
)
def test_anything_else_is_not_a_health_document(body):
    with pytest.raises(ProtocolError) as info:
        parse_health_body(body)
    assert info.value.code == "not_health_document"


def test_http_status_mapping():
    assert [http_status_for(s) for s in ("pass", "warn", "fail")] == [200, 200, 503]
