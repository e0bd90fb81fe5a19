"""HttpsProber.renew and ProbeResult.nonce against the real health service (hfo_site.health_app)
served over HTTPS on 127.0.0.1 with a throwaway CA: the whole renewal path of
docs/protocol.md#renewal, from the probe that passed to the grant the agent's report receives."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hfo_protocol.keys import Keyring
from hfo_site.agent_status import AgentStatus, build_status, parse_status_answer
from hfo_site.checks import CheckRunner
from hfo_site.health_app import HealthState, make_public_app, make_status_app
from hfo_site.metrics import HealthMetrics
from hfo_site.ratelimit import RateLimiter
from hfo_site.secrets import SecretFile, parse_keyring, parse_token
from hfo_watchdog.core.model import Renewal
from hfo_watchdog.probe import HttpsProber
from testsupport.https import SilentTcpServer, TestCA
from testsupport.net import free_port

pytestmark = pytest.mark.network

SECRET = "renewal-test-secret-0123456789-abcdefghijkl"
OTHER_SECRET = "another-renewal-secret-0123456789-abcdefgh"


class LoopbackHealthService:
    """The health service's public and status apps on their own event loop in a thread: public
    over HTTPS (Funnel's side, as the watchdog sees it), status over plain loopback HTTP."""

    def __init__(self, ca: TestCA, tmp: Path) -> None:
        (tmp / "secret").write_text(SECRET)
        (tmp / "token").write_text("details-token-0123456789abcdef")
        metrics = HealthMetrics()
        runner = CheckRunner([], 5.0, 1.0, metrics)
        runner.results = {}  # no workload checks configured: the agent's word
        self.state = HealthState(
            site="primary",
            keyring=SecretFile(tmp / "secret", parse_keyring, "HFO_HMAC_SECRET_FILE"),
            token=SecretFile(tmp / "token", parse_token, "HFO_DETAILS_TOKEN_FILE"),
            runner=runner,
            limiter=RateLimiter(1000.0, 1000, 100),
            metrics=metrics,
            heartbeat_stale_s=30.0,
        )
        self.port, self.status_port = free_port(), free_port()
        self._ssl = ca.server_context()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "health service did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runners = []
        for app, port, ssl_context in (
            (make_public_app(self.state), self.port, self._ssl),
            (make_status_app(self.state), self.status_port, None),
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
            runners.append(runner)
        self._ready.set()
        await self._stop.wait()
        for runner in runners:
            await runner.cleanup()

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/healthz"

    def report(self, **changes: object) -> tuple[int, bytes]:
        """The agent's status report (default: primary holds epoch 7, running, heartbeat now)."""
        fields: dict[str, object] = {
            "site": "primary",
            "backend": "exec",
            "workload": "running",
            "ready": True,
            "lease_site": "primary",
            "lease_epoch": 7,
            "lease_held": True,
            "lease_remaining_s": 25.0,
            "heartbeat_age_s": 0.5,
            "reported_at": time.time(),
        }
        fields.update(changes)

        async def post() -> tuple[int, bytes]:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"http://127.0.0.1:{self.status_port}/agent-status",
                    data=build_status(AgentStatus(**fields)),  # type: ignore[arg-type]
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                return resp.status, await resp.read()

        return asyncio.run_coroutine_threadsafe(post(), self._loop).result(10)

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def health(ca: TestCA, tmp_path: Path) -> Iterator[LoopbackHealthService]:
    service = LoopbackHealthService(ca, tmp_path)
    service.report()
    try:
        yield service
    finally:
        service.close()


def prober_for(url: str, ca: TestCA, secret: str = SECRET, **kwargs: float) -> HttpsProber:
    options = {"connect_timeout": 1.0, "read_timeout": 1.0, **kwargs}
    return HttpsProber(url, Keyring.from_secret_string(secret), ca_bundle=ca.bundle, **options)  # type: ignore[arg-type]


def test_a_passed_probe_then_its_renewal_reaches_the_agent_as_time_remaining(
    health: LoopbackHealthService, ca: TestCA
) -> None:
    prober = prober_for(health.url(), ca)
    result = prober.probe()
    assert result.ok, result
    assert result.nonce is not None and len(result.nonce) == 32
    started = time.monotonic()
    outcome = prober.renew(Renewal(epoch=7, nonce=result.nonce, ttl_s=90.0))
    assert outcome.ok and outcome.error is None, outcome
    assert "until_in_s" in outcome.detail
    status, body = health.report()
    assert status == 200
    (grant,) = parse_status_answer(body)
    assert (grant.site, grant.epoch, grant.ttl_s) == ("primary", 7, 90.0)
    # Counted from when the probe was answered, not from now: never more than 90 s from the renewal.
    assert 90.0 - (time.monotonic() - started) - 2.0 <= grant.remaining_s <= 90.0
    # The grant stays pending (reports may be lost) and only shrinks.
    _, again = health.report()
    assert parse_status_answer(again)[0].remaining_s <= grant.remaining_s
    assert health.state.metrics.renewals.labels("accepted")._value.get() == 1


def test_each_nonce_renews_once(health: LoopbackHealthService, ca: TestCA) -> None:
    prober = prober_for(health.url(), ca)
    nonce = prober.probe().nonce
    assert nonce is not None
    assert prober.renew(Renewal(7, nonce, 90.0)).ok
    second = prober.renew(Renewal(7, nonce, 600.0))
    assert (second.ok, second.error) == (False, "http_status")
    assert "HTTP 409" in second.detail and "nonce_used" in second.detail
    _, body = health.report()
    assert parse_status_answer(body)[0].remaining_s <= 90.0  # the refused one changed nothing


def test_a_nonce_never_answered_with_pass_is_refused(health: LoopbackHealthService, ca: TestCA) -> None:
    prober = prober_for(health.url(), ca)
    outcome = prober.renew(Renewal(7, "N" * 32, 90.0))
    assert (outcome.ok, outcome.error) == (False, "http_status")
    assert "unknown_nonce" in outcome.detail
    # A probe that did not pass carries its nonce too, and that nonce renews nothing.
    health.report(heartbeat_age_s=None, lease_held=False, lease_remaining_s=None, workload="running")
    failed = prober.probe()
    assert not failed.ok and failed.nonce is not None
    outcome = prober.renew(Renewal(7, failed.nonce, 90.0))
    assert "unknown_nonce" in outcome.detail
    status, _ = health.report()
    assert status == 204  # no grant pending


def test_a_renewal_signed_with_another_key_is_refused(health: LoopbackHealthService, ca: TestCA) -> None:
    nonce = prober_for(health.url(), ca).probe().nonce
    assert nonce is not None
    outcome = prober_for(health.url(), ca, secret=OTHER_SECRET).renew(Renewal(7, nonce, 90.0))
    assert (outcome.ok, outcome.error) == (False, "http_status")
    assert "HTTP 401" in outcome.detail
    assert SECRET not in outcome.detail and OTHER_SECRET not in outcome.detail
    # The nonce is still usable by the real watchdog: a refusal changes no state.
    assert prober_for(health.url(), ca).renew(Renewal(7, nonce, 90.0)).ok


def test_a_renewal_for_an_epoch_older_than_the_agents_is_refused(health: LoopbackHealthService, ca: TestCA) -> None:
    prober = prober_for(health.url(), ca)
    nonce = prober.probe().nonce
    assert nonce is not None
    outcome = prober.renew(Renewal(6, nonce, 90.0))
    assert "HTTP 409" in outcome.detail and "old_epoch" in outcome.detail


def test_a_renewal_too_long_or_with_a_bad_nonce_is_not_sent(health: LoopbackHealthService, ca: TestCA) -> None:
    prober = prober_for(health.url(), ca)
    for renewal in (Renewal(7, "bad nonce!", 90.0), Renewal(7, "N" * 32, 3601.0), Renewal(0, "N" * 32, 90.0)):
        outcome = prober.renew(renewal)
        assert (outcome.ok, outcome.error) == (False, "error"), outcome
        assert outcome.detail.startswith("not sent")
    assert health.state.metrics.renewals.labels("accepted")._value.get() == 0


def test_transport_failures_are_classified_and_never_raise(ca: TestCA) -> None:
    refused = prober_for(f"https://127.0.0.1:{free_port()}/healthz", ca).renew(Renewal(7, "N" * 32, 90.0))
    assert (refused.ok, refused.error) == (False, "refused"), refused
    with SilentTcpServer() as silent:
        started = time.monotonic()
        slow = prober_for(silent.url("/healthz"), ca, connect_timeout=0.3, read_timeout=0.3).renew(
            Renewal(7, "N" * 32, 90.0)
        )
        assert (slow.ok, slow.error) == (False, "timeout"), slow
        assert time.monotonic() - started < 3.0  # the total deadline holds


def test_the_renewal_goes_to_the_probe_url_without_its_nonce(ca: TestCA, tmp_path: Path) -> None:
    from testsupport.https import HttpsServer

    with HttpsServer(ca.server_context()) as server:
        server.behaviour = lambda ex: ex.reply(409, json.dumps({"error": "unknown_nonce", "message": "m"}).encode(), {})
        prober = prober_for(server.url("/healthz?x=1&nonce=old-nonce-from-config"), ca)
        outcome = prober.renew(Renewal(7, "N" * 32, 90.0))
        assert outcome.error == "http_status" and "unknown_nonce" in outcome.detail
        (request,) = server.requests
        assert request.method == "POST" and request.path == "/healthz"
        assert request.query == {"x": ["1"]}
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-hfo-signature"].startswith("v1;kid=default;sig=")
        assert json.loads(request.body)["nonce"] == "N" * 32


def test_a_renewal_for_another_site_is_refused_and_changes_nothing(health: LoopbackHealthService, ca: TestCA) -> None:
    nonce = prober_for(health.url(), ca).probe().nonce
    assert nonce is not None
    other = HttpsProber(
        health.url(), Keyring.from_secret_string(SECRET), ca_bundle=ca.bundle, expected_site="standby"
    ).renew(Renewal(7, nonce, 90.0))
    assert (
        (other.ok, other.error) == (False, "http_status")
        and "HTTP 403" in other.detail
        and "wrong_site" in other.detail
    )
    assert health.report()[0] == 204  # nothing granted
    assert prober_for(health.url(), ca).renew(Renewal(7, nonce, 90.0)).ok  # the nonce was not used up
