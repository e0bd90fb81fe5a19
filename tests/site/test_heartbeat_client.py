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
from hfo_site.heartbeat_client import MAX_ANSWER_BYTES, BeatKind, BeatResult, HeartbeatClient, make_ssl_context
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


def _client_beats(url: str, keyring: Keyring, ca_bundle: Path, beats: list[tuple[int, float]]) -> list[BeatResult]:
    """One HeartbeatClient (one agent process: one boot id) sending (seq, wall clock offset) beats."""

    async def main() -> list[BeatResult]:
        offset = [0.0]
        async with aiohttp.ClientSession() as session:
            client = HeartbeatClient(
                url, session, lambda: keyring, 2.0, make_ssl_context(ca_bundle), wall=lambda: time.time() + offset[0]
            )
            out = []
            for seq, shift in beats:
                offset[0] = shift
                out.append(await client.send("primary", seq, "running", 1, True))
            return out

    return asyncio.run(main())


def test_a_repeated_seq_of_one_agent_process_is_refused_as_replay(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    first, again = _client_beats(watchdog.url, keyring, ca_bundle, [(5, 0.0), (5, 1.0)])
    assert first.kind is BeatKind.ACCEPTED
    assert (again.kind, again.code, again.http_status) == (BeatKind.REFUSED, "replay", 409)


def test_a_backward_step_of_the_wall_clock_keeps_heartbeats_accepted(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    results = _client_beats(watchdog.url, keyring, ca_bundle, [(1, 0.0), (2, -20.0), (3, -19.5)])
    assert [r.kind for r in results] == [BeatKind.ACCEPTED] * 3
    boots = {r.heartbeat.boot for r in watchdog.accepted()}
    assert len(boots) == 1 and None not in boots  # every heartbeat of one process carries its boot id


@pytest.mark.parametrize("split", [(2, 0.05), (5, 0.05), (40, 0.01)])
def test_an_answer_written_in_pieces_is_read_whole(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path, split: tuple[int, float]
) -> None:
    """Issue 10, bug 1: one read() returned only the first piece, and the answer failed as mismatch."""
    watchdog.update(split_answer=split)
    for _ in range(3):
        result = _send(watchdog.url, keyring, ca_bundle)
        assert (result.kind, result.code) == (BeatKind.ACCEPTED, ""), result


def test_an_answer_over_the_cap_is_refused_in_pieces_or_whole(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path
) -> None:
    watchdog.update(pad_answer=MAX_ANSWER_BYTES)
    assert (_send(watchdog.url, keyring, ca_bundle).kind, _send(watchdog.url, keyring, ca_bundle).code) == (
        BeatKind.BAD_ANSWER,
        "too_large",
    )
    watchdog.update(split_answer=(8, 0.01))
    result = _send(watchdog.url, keyring, ca_bundle)
    assert (result.kind, result.code) == (BeatKind.BAD_ANSWER, "too_large")


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (409, b"[" * 12000, BeatKind.HTTP_ERROR),  # a refusal body nested too deeply to parse
        (503, b'{"accepted":false,"error":"unavailable","message":"x","error":"replay"}', BeatKind.HTTP_ERROR),
        (200, b"[" * 12000, BeatKind.BAD_ANSWER),
        (409, b'{"v":1,"accepted":false,"error":"replay","message":"' + b"m" * 300 + b'"}', BeatKind.REFUSED),
    ],
)
def test_hostile_answers_are_classified_never_raised(
    watchdog: StandInWatchdog, keyring: Keyring, ca_bundle: Path, status: int, body: bytes, kind: BeatKind
) -> None:
    """Issue 10, bug 4: a deeply nested refusal body raised RecursionError out of send(), which
    ended the agent's heartbeat loop."""
    watchdog.update(raw_answer=(status, body))
    result = _send(watchdog.url, keyring, ca_bundle)
    assert result.kind is kind, result
    assert len(result.detail) <= 200


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
