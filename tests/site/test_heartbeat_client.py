"""One heartbeat against the stand-in watchdog over real HTTPS (hfo_site.heartbeat_client)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from hfo_protocol import Keyring
from hfo_site.heartbeat_client import BeatKind, BeatResult, HeartbeatClient, make_ssl_context
from testsupport.net import free_port
from testsupport.site_watchdog import StandInWatchdog

pytestmark = pytest.mark.network


def _send(
    url: str,
    keyring: Keyring,
    ca_bundle: Path | None,
    timeout: float = 2.0,
    wall: Callable[[], float] = time.time,
    **fields: object,
) -> BeatResult:
    async def main() -> BeatResult:
        async with aiohttp.ClientSession() as session:
            client = HeartbeatClient(url, session, lambda: keyring, timeout, make_ssl_context(ca_bundle), wall=wall)
            args = {"site": "primary", "seq": 1, "workload": "running", "epoch_seen": 3, "ready": True, **fields}
            return await client.send(**args)

    return asyncio.run(main())


def test_accepted_heartbeat_carries_the_state_and_returns_the_verified_lease(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    watchdog.set_lease("primary", epoch=5)
    before = time.monotonic()
    result = _send(watchdog.url, keyring, ca_bundle, seq=42, workload="stopping", epoch_seen=4, ready=False)
    assert result.kind is BeatKind.ACCEPTED
    assert before <= result.sent_at_mono <= time.monotonic()
    assert result.answer is not None
    assert (result.answer.site, result.answer.epoch, result.answer.ttl_s) == ("primary", 5, 2)
    [received] = watchdog.accepted()
    hb = received.heartbeat
    assert (hb.site, hb.seq, hb.workload, hb.epoch_seen, hb.ready) == ("primary", 42, "stopping", 4, False)
    assert hb.nonce == result.answer.nonce
    assert abs(hb.sent_at - time.time()) < 5


@pytest.mark.parametrize(
    ("tamper", "code"), [("signature", "mismatch"), ("unsigned", "missing"), ("nonce", "wrong_nonce")]
)
def test_answers_that_do_not_verify_are_rejected(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path, tamper: str, code: str
) -> None:
    watchdog.update(tamper=tamper)
    result = _send(watchdog.url, keyring, ca_bundle)
    assert (result.kind, result.code, result.answer) == (BeatKind.BAD_ANSWER, code, None)
    assert not result.transient


def test_a_heartbeat_signed_with_another_key_is_refused(watchdog: StandInWatchdog, ca_bundle: Path) -> None:
    impostor = Keyring.from_secret_string("another-secret-that-is-long-enough-000")
    result = _send(watchdog.url, impostor, ca_bundle)
    assert (result.kind, result.code, result.http_status) == (BeatKind.REFUSED, "bad_signature", 401)
    assert not result.transient
    assert watchdog.accepted() == []


def test_unavailable_is_a_transient_refusal(watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path) -> None:
    watchdog.update(unavailable=True)
    result = _send(watchdog.url, keyring, ca_bundle)
    assert (result.kind, result.code, result.http_status) == (BeatKind.REFUSED, "unavailable", 503)
    assert result.transient


def test_a_skewed_clock_is_refused_as_stale_or_future(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    assert _send(watchdog.url, keyring, ca_bundle, wall=lambda: time.time() - 120).code == "stale"
    assert _send(watchdog.url, keyring, ca_bundle, wall=lambda: time.time() + 120).code == "future"


def test_a_repeated_send_time_is_refused_as_replay(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    frozen = time.time()
    assert _send(watchdog.url, keyring, ca_bundle, wall=lambda: frozen).kind is BeatKind.ACCEPTED
    again = _send(watchdog.url, keyring, ca_bundle, wall=lambda: frozen)
    assert (again.kind, again.code, again.http_status) == (BeatKind.REFUSED, "replay", 409)


def test_a_silent_watchdog_times_out_within_the_timeout(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    watchdog.update(silent_sites={"primary"})
    started = time.monotonic()
    result = _send(watchdog.url, keyring, ca_bundle, timeout=0.5)
    assert result.kind is BeatKind.TIMEOUT and result.transient
    assert time.monotonic() - started < 1.5


def test_an_untrusted_certificate_is_never_accepted(keyring: Keyring, ca_bundle: Path) -> None:
    other_ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    other_ca.issue_cert("127.0.0.1").configure_cert(context)
    impostor = StandInWatchdog(keyring, context).start()
    try:
        result = _send(impostor.url, keyring, ca_bundle)
        assert result.kind is BeatKind.NETWORK
        assert impostor.accepted() == []
    finally:
        impostor.close()


def test_nobody_listening_is_a_network_failure(keyring: Keyring, ca_bundle: Path) -> None:
    result = _send(f"https://127.0.0.1:{free_port()}/", keyring, ca_bundle)
    assert result.kind is BeatKind.NETWORK and result.transient
