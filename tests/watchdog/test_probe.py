"""HttpsProber against real HTTPS servers on 127.0.0.1 (throwaway CA): every failure class of
docs/protocol.md#probe, produced by a server that really behaves that way."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hfo_protocol.health import CONTENT_TYPE, HealthDocument, build_health_body, http_status_for, sign_health
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import SIGNATURE_HEADER
from hfo_watchdog.core.model import ProbeFailure, ProbeResult
from hfo_watchdog.probe import HttpsProber
from testsupport.https import Exchange, HttpsServer, SilentTcpServer, TestCA, unaccepting_port
from testsupport.net import free_port, wait_until

pytestmark = pytest.mark.network

SECRET = "probe-test-secret-0123456789-abcdefghijklmnop"
OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"
FAST = {"connect_timeout": 1.0, "read_timeout": 1.0}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring.from_secret_string(SECRET)


@pytest.fixture
def server(ca: TestCA) -> Iterator[HttpsServer]:
    with HttpsServer(ca.server_context()) as srv:
        yield srv


def make_prober(url: str, keyring: Keyring, ca_bundle: Path | str | None, **kwargs: Any) -> HttpsProber:
    options: dict[str, Any] = {**FAST, "max_body_bytes": 65536, "max_skew_s": 30.0}
    options.update(kwargs)
    return HttpsProber(url, keyring, ca_bundle=ca_bundle, **options)


@pytest.fixture
def prober(server: HttpsServer, ca: TestCA, keyring: Keyring) -> HttpsProber:
    return make_prober(server.url("/healthz"), keyring, ca.bundle)


def answer(
    keyring: Keyring,
    *,
    status: str = "pass",
    site: str = "primary",
    basis: str | None = None,
    skew_s: float = 0.0,
    body_nonce: str | None = None,
    sign_nonce: str | None = None,
    http: int | None = None,
    content_type: str = CONTENT_TYPE,
    signature: str | None = None,
) -> Callable[[Exchange], None]:
    """A health service: answers the request's nonce, signed, with the given deviations."""

    def behave(ex: Exchange) -> None:
        nonce = ex.request.param("nonce") or ""
        doc = HealthDocument(
            status=status,
            site=site,
            basis=basis or ("workload" if status == "pass" else "none"),
            time=time.time() + skew_s,
            nonce=body_nonce or nonce,
            lease_epoch=7,
        )
        body = build_health_body(doc)
        sig = signature if signature is not None else sign_health(keyring, sign_nonce or nonce, body)
        headers = {SIGNATURE_HEADER: sig, "Cache-Control": "no-store"} if sig else {"Cache-Control": "no-store"}
        ex.reply(http or http_status_for(status), body, headers, content_type=content_type)

    return behave


def assert_failure(result: ProbeResult, failure: ProbeFailure) -> None:
    assert not result.ok, result
    assert result.failure is failure, result
    assert result.detail, "a failed probe says why"
    assert SECRET not in result.detail and OTHER_SECRET not in result.detail
    assert result.latency_ms is not None and result.latency_ms >= 0


# --- good answers and not_pass ------------------------------------------------------------


def test_signed_pass_for_our_nonce_is_ok(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    result = prober.probe()
    assert result.ok and result.failure is None
    assert result.http_status == 200
    assert "basis=workload" in result.detail and "leaseEpoch=7" in result.detail
    assert result.latency_ms is not None and result.latency_ms > 0
    assert abs(result.at - time.time()) < 5


def test_every_probe_sends_a_fresh_nonce_and_keeps_the_query(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    prober = make_prober(server.url("/healthz?details=0&nonce=stale-nonce-from-config"), keyring, ca.bundle)
    assert prober.probe().ok
    assert prober.probe().ok
    seen = server.requests_to("/healthz")
    assert len(seen) == 2
    nonces = [r.query["nonce"] for r in seen]
    assert all(len(n) == 1 and len(n[0]) == 32 for n in nonces), "exactly one nonce, 32 characters"
    assert nonces[0] != nonces[1]
    assert all(r.query["details"] == ["0"] for r in seen)
    assert all(r.method == "GET" for r in seen)


def test_injected_nonce_factory_and_clock_are_used(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    prober = make_prober(
        server.url("/healthz"), keyring, ca.bundle, nonce_factory=lambda: "N" * 20, clock=lambda: time.time() + 0.5
    )
    result = prober.probe()
    assert result.ok
    assert server.requests[0].param("nonce") == "N" * 20


@pytest.mark.parametrize(("status", "http"), [("warn", 200), ("fail", 503), ("fail", 200)])
def test_valid_warn_or_fail_answer_is_not_pass(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, status: str, http: int
) -> None:
    server.behaviour = answer(keyring, status=status, http=http)
    result = prober.probe()
    assert_failure(result, ProbeFailure.NOT_PASS)
    assert result.http_status == http
    assert f"status {status}" in result.detail


def test_503_without_a_valid_signed_fail_is_http_status(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    server.behaviour = answer(keyring, status="fail", signature="")  # unsigned fail
    result = prober.probe()
    assert_failure(result, ProbeFailure.HTTP_STATUS)
    assert result.http_status == 503 and "missing_signature" in result.detail
    server.behaviour = lambda ex: ex.reply(503, b"Service Unavailable", content_type="text/plain")
    assert_failure(prober.probe(), ProbeFailure.HTTP_STATUS)
    server.behaviour = answer(keyring, status="pass", http=503)  # signed, but pass on a 503
    assert_failure(prober.probe(), ProbeFailure.HTTP_STATUS)


# --- network-level failures ------------------------------------------------------------------


def test_closed_port_is_connect_refused(ca: TestCA, keyring: Keyring) -> None:
    prober = make_prober(f"https://127.0.0.1:{free_port()}/healthz", keyring, ca.bundle)
    result = prober.probe()
    assert_failure(result, ProbeFailure.CONNECT_REFUSED)
    assert result.http_status is None


def test_listener_that_never_accepts_is_connect_timeout(ca: TestCA, keyring: Keyring) -> None:
    with unaccepting_port() as port:
        prober = make_prober(f"https://127.0.0.1:{port}/healthz", keyring, ca.bundle, connect_timeout=0.3)
        started = time.monotonic()
        result = prober.probe()
        elapsed = time.monotonic() - started
    assert_failure(result, ProbeFailure.CONNECT_TIMEOUT)
    assert elapsed < 0.3 + 1.0, f"bounded by the connect timeout, took {elapsed:.2f}s"


def test_tcp_accepted_but_no_tls_is_timeout(ca: TestCA, keyring: Keyring) -> None:
    with SilentTcpServer() as silent:
        prober = make_prober(silent.url("/healthz"), keyring, ca.bundle, connect_timeout=0.3, read_timeout=0.3)
        started = time.monotonic()
        result = prober.probe()
        elapsed = time.monotonic() - started
        assert silent.accepted == 1
    assert_failure(result, ProbeFailure.TIMEOUT)
    assert elapsed < 0.6 + 1.0


def test_connected_but_no_answer_is_timeout(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = lambda ex: ex.wait(30)
    prober = make_prober(server.url("/healthz"), keyring, ca.bundle, read_timeout=0.4)
    result = prober.probe()
    assert_failure(result, ProbeFailure.TIMEOUT)
    assert len(server.requests) == 1, "the request was sent: connected, then no answer"


def _drip_body(ex: Exchange) -> None:
    body = b'{"status":"pass"}' * 20
    if ex.send_head(200, {"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body))}):
        ex.drip(body, 0.05)


def _drip_headers(ex: Exchange) -> None:
    ex.drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\nX-Padding: " + b"x" * 400, 0.05)


@pytest.mark.parametrize("behaviour", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_slow_drip_is_cut_at_the_total_deadline(
    server: HttpsServer, ca: TestCA, keyring: Keyring, behaviour: Callable[[Exchange], None]
) -> None:
    # Each byte arrives well within the read timeout, so only a total deadline can stop it;
    # left alone the drip would last 15+ seconds.
    prober = make_prober(server.url("/healthz"), keyring, ca.bundle, connect_timeout=0.5, read_timeout=0.7)
    server.behaviour = answer(keyring)
    assert prober.probe().ok, "the same prober works before the drip (no stale pooled connection)"
    server.behaviour = behaviour
    started = time.monotonic()
    result = prober.probe()
    elapsed = time.monotonic() - started
    assert_failure(result, ProbeFailure.TIMEOUT)
    assert "total deadline" in result.detail
    assert elapsed < 1.2 + 1.0, f"connect+read is 1.2s; the drip held the probe {elapsed:.2f}s"
    server.behaviour = answer(keyring)
    assert prober.probe().ok, "and works again after it"


@pytest.mark.parametrize("status", [500, 502, 404, 204])
def test_error_status_is_http_status(server: HttpsServer, prober: HttpsProber, status: int) -> None:
    server.behaviour = lambda ex: ex.reply(
        status, b"" if status == 204 else b"<h1>Bad Gateway</h1>", content_type="text/html"
    )
    result = prober.probe()
    assert_failure(result, ProbeFailure.HTTP_STATUS)
    assert result.http_status == status


def test_error_status_is_classified_without_waiting_for_the_body(
    server: HttpsServer, ca: TestCA, keyring: Keyring
) -> None:
    def behave(ex: Exchange) -> None:
        if ex.send_head(502, {"Content-Type": "text/html", "Content-Length": "100000"}):
            ex.drip(b"<html>" * 100, 0.05)  # a slow error page

    server.behaviour = behave
    result = make_prober(server.url("/healthz"), keyring, ca.bundle, read_timeout=5.0).probe()
    assert_failure(result, ProbeFailure.HTTP_STATUS)
    assert result.http_status == 502
    assert result.latency_ms is not None and result.latency_ms < 3000, "the slow error body was not awaited"


def test_redirect_is_not_followed(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    def behave(ex: Exchange) -> None:
        if ex.request.path == "/elsewhere":
            answer(keyring)(ex)
        else:
            ex.reply(302, b"", {"Location": server.url("/elsewhere")})

    server.behaviour = behave
    result = prober.probe()
    assert_failure(result, ProbeFailure.REDIRECT)
    assert result.http_status == 302
    assert server.requests_to("/elsewhere") == [], "the redirect target was never asked"


def test_unresolvable_name_is_dns(ca: TestCA, keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests stay on loopback, so no query goes to a real resolver: the resolver answers
    # NXDOMAIN for this one name exactly as getaddrinfo reports it, everything else resolves.
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host, *args, **kwargs):
        if host == "hfo-primary.invalid":
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    result = make_prober("https://hfo-primary.invalid/healthz", keyring, ca.bundle).probe()
    assert_failure(result, ProbeFailure.DNS)
    assert asked, "the probe really tried to resolve the name"


# --- TLS ---------------------------------------------------------------------------------------


def test_certificate_from_another_ca_is_tls(ca: TestCA, keyring: Keyring, tmp_path: Path) -> None:
    stranger = TestCA(tmp_path)
    with HttpsServer(stranger.server_context(), answer(keyring)) as impostor:
        result = make_prober(impostor.url("/healthz"), keyring, ca.bundle).probe()
        assert impostor.requests == [], "no request is sent over an unverified connection"
    assert_failure(result, ProbeFailure.TLS)
    assert "certificate" in result.detail.lower()


def test_certificate_for_another_host_is_tls(ca: TestCA, keyring: Keyring) -> None:
    with HttpsServer(ca.server_context("other-host.example"), answer(keyring)) as wrong_name:
        result = make_prober(wrong_name.url("/healthz"), keyring, ca.bundle).probe()
        assert wrong_name.requests == []
    assert_failure(result, ProbeFailure.TLS)


def test_system_trust_store_does_not_trust_a_private_ca(server: HttpsServer, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    result = make_prober(server.url("/healthz"), keyring, None).probe()
    assert_failure(result, ProbeFailure.TLS)


# --- body size and document shape ------------------------------------------------------------


def _stream_forever(done: list[bool]) -> Callable[[Exchange], None]:
    def behave(ex: Exchange) -> None:
        # No Content-Length: the body ends only when the connection closes.
        if ex.send_head(200, {"Content-Type": CONTENT_TYPE}):
            chunk = b" " * 65536
            for _ in range(4096):  # 256 MiB at most
                if not ex.write(chunk):
                    break
        done.append(True)

    return behave


def test_endless_body_is_too_large_and_reading_stops_early(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    done: list[bool] = []
    server.behaviour = _stream_forever(done)
    prober = make_prober(server.url("/healthz"), keyring, ca.bundle, max_body_bytes=65536)
    result = prober.probe()
    assert_failure(result, ProbeFailure.TOO_LARGE)
    assert result.http_status == 200
    wait_until(lambda: bool(done), timeout=10, what="server noticing the client went away")
    # What the server got into the kernel: the cap plus socket buffers, far from 256 MiB.
    assert server.bytes_sent < 16 * 1024 * 1024, server.bytes_sent


def test_declared_length_over_the_cap_is_too_large_without_reading(
    server: HttpsServer, ca: TestCA, keyring: Keyring
) -> None:
    def behave(ex: Exchange) -> None:
        ex.send_head(200, {"Content-Type": CONTENT_TYPE, "Content-Length": str(10 * 1024 * 1024)})
        ex.wait(30)  # never sends the body: reading it would time out instead

    server.behaviour = behave
    result = make_prober(server.url("/healthz"), keyring, ca.bundle, max_body_bytes=1024).probe()
    assert_failure(result, ProbeFailure.TOO_LARGE)
    assert "Content-Length" in result.detail


def test_body_at_the_cap_is_read_one_byte_over_is_too_large(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    # A real answer's size (fixed-width timestamp, 32-character nonce).
    size = len(build_health_body(HealthDocument("pass", "primary", "workload", time.time(), "n" * 32, 7)))
    url = server.url("/healthz")
    exact = make_prober(url, keyring, ca.bundle, max_body_bytes=size, nonce_factory=lambda: "n" * 32)
    assert exact.probe().ok
    short = make_prober(url, keyring, ca.bundle, max_body_bytes=size - 1, nonce_factory=lambda: "n" * 32)
    assert_failure(short.probe(), ProbeFailure.TOO_LARGE)


def test_html_page_with_200_is_not_a_health_document(server: HttpsServer, prober: HttpsProber) -> None:
    server.behaviour = lambda ex: ex.reply(200, b"<html><body>It works!</body></html>", content_type="text/html")
    assert_failure(prober.probe(), ProbeFailure.NOT_HEALTH_DOCUMENT)


def test_right_body_with_wrong_content_type_is_not_a_health_document(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    server.behaviour = answer(keyring, content_type="application/json")
    result = prober.probe()
    assert_failure(result, ProbeFailure.NOT_HEALTH_DOCUMENT)
    assert "content type" in result.detail


def test_content_type_parameters_are_accepted(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    server.behaviour = answer(keyring, content_type="Application/Health+JSON; charset=utf-8")
    assert prober.probe().ok


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"status":"pass"}', b'{"status":"ok","hfo":{"v":1}}'],
    ids=["malformed", "array", "no-hfo", "bad-status"],
)
def test_malformed_documents_are_not_health_documents(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, body: bytes
) -> None:
    def behave(ex: Exchange) -> None:
        sig = sign_health(keyring, ex.request.param("nonce") or "", body)  # even signed
        ex.reply(200, body, {SIGNATURE_HEADER: sig}, content_type=CONTENT_TYPE)

    server.behaviour = behave
    assert_failure(prober.probe(), ProbeFailure.NOT_HEALTH_DOCUMENT)


def test_pass_with_basis_none_is_not_a_health_document(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    server.behaviour = answer(keyring, status="pass", basis="none")
    assert_failure(prober.probe(), ProbeFailure.NOT_HEALTH_DOCUMENT)


# --- signatures, replays, origin, freshness ----------------------------------------------------


def test_unsigned_answer_is_missing_signature(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    server.behaviour = answer(keyring, signature="")
    assert_failure(prober.probe(), ProbeFailure.MISSING_SIGNATURE)


def test_answer_signed_with_another_key_is_bad_signature(server: HttpsServer, prober: HttpsProber) -> None:
    server.behaviour = answer(Keyring.from_secret_string(OTHER_SECRET))
    result = prober.probe()
    assert_failure(result, ProbeFailure.BAD_SIGNATURE)
    assert "mismatch" in result.detail


@pytest.mark.parametrize(
    "header", ["v1;kid=default;sig=short", "v0;kid=default;sig=" + "A" * 43, "v1;kid=k9;sig=" + "A" * 43]
)
def test_malformed_or_unknown_key_signature_is_bad_signature(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, header: str
) -> None:
    server.behaviour = answer(keyring, signature=header)
    assert_failure(prober.probe(), ProbeFailure.BAD_SIGNATURE)


def test_rotated_keyring_verifies_with_any_listed_key(server: HttpsServer, ca: TestCA) -> None:
    old = Keyring(active_kid="k1", keys={"k1": SECRET.encode()})
    rotated = Keyring(active_kid="k2", keys={"k2": OTHER_SECRET.encode(), "k1": SECRET.encode()})
    server.behaviour = answer(old)  # the site still signs with the previous key
    assert make_prober(server.url("/healthz"), rotated, ca.bundle).probe().ok


def test_recorded_answer_served_again_is_replay(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    recorded: dict[str, Any] = {}

    def record_then_replay(ex: Exchange) -> None:
        if not recorded:
            nonce = ex.request.param("nonce") or ""
            doc = HealthDocument("pass", "primary", "workload", time.time(), nonce, 7)
            recorded["body"] = build_health_body(doc)
            recorded["sig"] = sign_health(keyring, nonce, recorded["body"])
        ex.reply(200, recorded["body"], {SIGNATURE_HEADER: recorded["sig"]}, content_type=CONTENT_TYPE)

    server.behaviour = record_then_replay
    assert prober.probe().ok, "the first answer was genuine"
    result = prober.probe()
    assert_failure(result, ProbeFailure.REPLAY)
    assert "another nonce" in result.detail


def test_signed_for_our_nonce_but_body_names_another_is_replay(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    server.behaviour = answer(keyring, body_nonce="Z" * 32)
    result = prober.probe()
    assert_failure(result, ProbeFailure.REPLAY)
    assert "hfo.nonce" in result.detail


def test_answer_from_the_standby_is_wrong_site(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    server.behaviour = answer(keyring, site="standby")
    result = prober.probe()
    assert_failure(result, ProbeFailure.WRONG_SITE)
    assert "standby" in result.detail


def test_expected_site_is_configurable(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = answer(keyring, site="standby")
    assert make_prober(server.url("/healthz"), keyring, ca.bundle, expected_site="standby").probe().ok


@pytest.mark.parametrize("skew_s", [-120.0, 120.0], ids=["old", "future"])
def test_answer_outside_the_skew_is_stale(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, skew_s: float
) -> None:
    server.behaviour = answer(keyring, skew_s=skew_s)
    result = prober.probe()
    assert_failure(result, ProbeFailure.STALE)
    assert "allowed 30s" in result.detail


def test_skew_is_measured_on_the_injected_clock(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    server.behaviour = answer(keyring)
    late_clock = make_prober(server.url("/healthz"), keyring, ca.bundle, clock=lambda: time.time() + 45)
    assert_failure(late_clock.probe(), ProbeFailure.STALE)
    tolerant = make_prober(server.url("/healthz"), keyring, ca.bundle, clock=lambda: time.time() + 45, max_skew_s=60)
    assert tolerant.probe().ok


def test_classes_are_checked_in_protocol_order(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    # wrong site AND stale AND not pass: wrong_site comes first
    server.behaviour = answer(keyring, site="standby", skew_s=-300, status="warn")
    assert prober.probe().failure is ProbeFailure.WRONG_SITE
    # stale AND not pass: stale first
    server.behaviour = answer(keyring, skew_s=-300, status="warn")
    assert prober.probe().failure is ProbeFailure.STALE
    # unsigned AND from the wrong site: missing_signature first
    server.behaviour = answer(keyring, site="standby", signature="")
    assert prober.probe().failure is ProbeFailure.MISSING_SIGNATURE
    # a redirect with an endless body: redirect first
    server.behaviour = lambda ex: ex.reply(301, b"x" * 200000, {"Location": "/"}, content_type="text/html")
    assert prober.probe().failure is ProbeFailure.REDIRECT


# --- robustness and construction -------------------------------------------------------------


def test_never_raises_on_an_unforeseen_error(server: HttpsServer, ca: TestCA, keyring: Keyring) -> None:
    def broken_nonce() -> str:
        raise RuntimeError("entropy pool on fire")

    result = make_prober(server.url("/healthz"), keyring, ca.bundle, nonce_factory=broken_nonce).probe()
    assert_failure(result, ProbeFailure.ERROR)
    invalid = make_prober(server.url("/healthz"), keyring, ca.bundle, nonce_factory=lambda: "bad nonce!")
    assert_failure(invalid.probe(), ProbeFailure.ERROR)
    assert server.requests == [], "no request goes out without a valid nonce"


def test_repr_and_details_never_hold_the_secret(server: HttpsServer, prober: HttpsProber, keyring: Keyring) -> None:
    assert SECRET not in repr(prober) and SECRET not in str(vars(prober))
    server.behaviour = answer(Keyring.from_secret_string(OTHER_SECRET))
    assert SECRET not in prober.probe().detail


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://laptop.example/healthz"}, "https"),
        ({"url": "https:///healthz"}, "host"),
        ({"url": "https://user:pw@laptop.example/healthz"}, "credentials"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"read_timeout": float("nan")}, "read_timeout"),
        ({"connect_timeout": 120}, "at most"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_skew_s": 0}, "max_skew_s"),
        ({"expected_site": "elsewhere"}, "expected_site"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        ({"keyring": SECRET}, "Keyring"),
    ],
)
def test_bad_constructor_arguments_are_refused_clearly(keyring: Keyring, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"url": "https://laptop.example/healthz", "keyring": keyring}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message) as info:
        HttpsProber(**args)
    assert SECRET not in str(info.value)


# --- adversarial answers (issue 10) -------------------------------------------------------------


def _signed_reply(keyring: Keyring, body_for: Callable[[str], bytes], **headers: str) -> Callable[[Exchange], None]:
    def behave(ex: Exchange) -> None:
        nonce = ex.request.param("nonce") or ""
        body = body_for(nonce)
        sig = sign_health(keyring, nonce, body)
        ex.reply(200, body, {SIGNATURE_HEADER: sig, **headers}, content_type=CONTENT_TYPE)

    return behave


@pytest.mark.parametrize("pieces", [2, 7])
def test_an_answer_in_pieces_is_read_whole(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, pieces: int
) -> None:
    def behave(ex: Exchange) -> None:
        nonce = ex.request.param("nonce") or ""
        doc = HealthDocument("pass", "primary", "workload", time.time(), nonce, 7)
        body = build_health_body(doc)
        ex.send_head(
            200,
            {
                "Content-Type": CONTENT_TYPE,
                "Content-Length": str(len(body)),
                SIGNATURE_HEADER: sign_health(keyring, nonce, body),
            },
        )
        step = -(-len(body) // pieces)
        for start in range(0, len(body), step):
            ex.write(body[start : start + step])
            ex.wait(0.05)

    server.behaviour = behave
    result = prober.probe()
    assert result.ok, result


@pytest.mark.parametrize(
    "body_for",
    [
        lambda nonce: b"[" * 60_000 + b"]" * 5_000,  # within the 64 KiB cap, nested too deeply to parse
        lambda nonce: b'{"status":"pass","hfo":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_deeply_nested_json_is_not_a_health_document(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring, body_for: Callable[[str], bytes]
) -> None:
    """Issue 10, bug 4: RecursionError was classed `error` (an unforeseen failure of the prober)."""
    server.behaviour = _signed_reply(keyring, body_for)
    assert_failure(prober.probe(), ProbeFailure.NOT_HEALTH_DOCUMENT)


def test_a_nonce_echoed_with_a_trailing_newline_is_not_a_health_document(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    def body_for(nonce: str) -> bytes:
        return build_health_body(HealthDocument("pass", "primary", "workload", time.time(), nonce + "\n", 7))

    server.behaviour = _signed_reply(keyring, body_for)
    assert_failure(prober.probe(), ProbeFailure.NOT_HEALTH_DOCUMENT)


def test_an_answer_head_over_the_client_limits_is_too_large(
    server: HttpsServer, prober: HttpsProber, keyring: Keyring
) -> None:
    """150 header lines (http.client reads at most 100) used to be classed `timeout`."""
    many = {f"X-Filler-{i}": "x" for i in range(150)}
    server.behaviour = _signed_reply(keyring, lambda n: b"{}", **many)
    assert_failure(prober.probe(), ProbeFailure.TOO_LARGE)

    def long_line(ex: Exchange) -> None:
        ex.reply(200, b"{}", {"X-Long": "y" * 70_000}, content_type=CONTENT_TYPE)

    server.behaviour = long_line
    assert_failure(prober.probe(), ProbeFailure.TOO_LARGE)
