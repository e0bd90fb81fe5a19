"""The stand-in watchdog must refuse exactly what docs/protocol.md#heartbeat refuses, in order, and
change no state when it does: the agent tests are only as good as this stand-in."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hfo_protocol import SIGNATURE_HEADER, Keyring
from hfo_protocol.heartbeat import Heartbeat, build_heartbeat, parse_lease_answer, sign_heartbeat, verify_lease_answer
from hfo_protocol.nonce import new_nonce
from testsupport.site_watchdog import StandInWatchdog

pytestmark = pytest.mark.network


def _body(site: str = "primary", sent_at: float | None = None) -> bytes:
    hb = Heartbeat(site, time.time() if sent_at is None else sent_at, new_nonce(), 1, "running", 1, True)
    return build_heartbeat(hb)


def _post(url: str, ca_bundle: Path, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(ca_bundle))
    req = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, context=context, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status, {"body": resp.read(), "signature": resp.headers.get(SIGNATURE_HEADER)}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_refusals_in_the_documented_order(watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path) -> None:
    url = watchdog.url
    json_ct = {"Content-Type": "application/json"}
    good = _body()
    signed = {**json_ct, SIGNATURE_HEADER: sign_heartbeat(keyring, good)}
    cases = [
        ("GET", b"", {}, 405, "method_not_allowed"),
        ("POST", b"x" * 5000, {"Content-Type": "text/plain"}, 413, "too_large"),  # size before type
        ("POST", good, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ("POST", good, json_ct, 401, "unsigned"),
        ("POST", good + b" ", signed, 401, "bad_signature"),
        ("POST", b'{"v":1}', {**json_ct, SIGNATURE_HEADER: sign_heartbeat(keyring, b'{"v":1}')}, 400, "malformed"),
    ]
    other = _body(site="elsewhere")
    cases.append(("POST", other, {**json_ct, SIGNATURE_HEADER: sign_heartbeat(keyring, other)}, 403, "unknown_site"))
    old = _body(sent_at=time.time() - 60)
    cases.append(("POST", old, {**json_ct, SIGNATURE_HEADER: sign_heartbeat(keyring, old)}, 422, "stale"))
    for method, body, headers, status, code in cases:
        got_status, doc = _post(url, ca_bundle, body, headers, method)
        assert (got_status, doc.get("error"), doc.get("accepted")) == (status, code, False), code
    assert watchdog.accepted() == []
    assert watchdog.state.last_sent_at == {} and watchdog.state.last_seq == {}  # nothing refused moved a mark


def test_accepted_answer_is_signed_and_echoes_the_nonce(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    body = _body()
    status, out = _post(
        watchdog.url,
        ca_bundle,
        body,
        {"Content-Type": "application/json", SIGNATURE_HEADER: sign_heartbeat(keyring, body)},
    )
    assert status == 200
    verify_lease_answer(keyring, out["signature"], out["body"])
    assert parse_lease_answer(out["body"]).nonce == json.loads(body)["nonce"]
