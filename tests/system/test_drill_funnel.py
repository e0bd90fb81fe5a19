"""The Funnel stand-in with real TLS in front of a real plain-HTTP health service, probed by the
watchdog's real prober: relay, 502 when the service is down, reset while dark, back again."""

from __future__ import annotations

import http.client
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hfo_drill.funnel import FunnelProxy
from hfo_protocol.health import CONTENT_TYPE, HealthDocument, build_health_body, sign_health
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import SIGNATURE_HEADER
from hfo_watchdog.core.model import ProbeFailure
from hfo_watchdog.probe import HttpsProber
from testsupport.https import TestCA
from testsupport.net import free_port

pytestmark = pytest.mark.network

KEYRING = Keyring.from_secret_string("drill-funnel-test-secret-0123456789abcdef")


class Laptop:
    """A plain-HTTP signed health service on 127.0.0.1 (what Funnel forwards to)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                outer.requests += 1
                nonce = parse_qs(urlsplit(self.path).query)["nonce"][0]
                doc = HealthDocument(
                    status="pass", site="primary", basis="workload", time=time.time(), nonce=nonce, lease_epoch=1
                )
                body = build_health_body(doc)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.send_header(SIGNATURE_HEADER, sign_health(KEYRING, nonce, body))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


@pytest.fixture
def funnel(ca: TestCA) -> Iterator[FunnelProxy]:
    proxy = FunnelProxy(ca.server_context(), backend_port=free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def laptop(funnel: FunnelProxy) -> Iterator[Laptop]:
    server = Laptop(funnel.backend_port)
    yield server
    server.stop()


def probe(funnel: FunnelProxy, ca: TestCA) -> Any:
    return HttpsProber(funnel.url, KEYRING, connect_timeout=2, read_timeout=2, ca_bundle=ca.bundle).probe()


def test_relays_the_probe_to_the_laptop_over_tls(funnel: FunnelProxy, laptop: Laptop, ca: TestCA) -> None:
    result = probe(funnel, ca)
    assert result.ok, result.detail
    assert laptop.requests == 1
    assert funnel.counters.relayed == 1


def test_answers_502_when_the_laptop_is_down(funnel: FunnelProxy, ca: TestCA) -> None:
    result = probe(funnel, ca)  # nothing listens on the backend port
    assert not result.ok
    assert result.failure is ProbeFailure.HTTP_STATUS
    assert result.http_status == 502
    assert funnel.counters.bad_gateway == 1


def test_dark_resets_connections_and_cuts_open_ones_then_relays_again(
    funnel: FunnelProxy, laptop: Laptop, ca: TestCA
) -> None:
    client_tls = ssl.create_default_context(cafile=str(ca.bundle))
    kept = http.client.HTTPSConnection("127.0.0.1", funnel.port, context=client_tls, timeout=5)
    kept.request("GET", "/healthz?nonce=" + "k" * 32)
    assert kept.getresponse().read()  # a keep-alive connection, open through the proxy

    funnel.set_dark(True)
    result = probe(funnel, ca)
    assert not result.ok
    assert result.failure is ProbeFailure.CONNECT_REFUSED  # a reset, classed with a refusal
    assert funnel.counters.reset >= 1
    with pytest.raises((OSError, http.client.HTTPException)):
        kept.request("GET", "/healthz?nonce=" + "m" * 32)  # the open connection was cut too
        kept.getresponse().read()
    kept.close()
    assert laptop.requests == 1  # nothing reached the laptop while dark

    funnel.set_dark(False)
    assert probe(funnel, ca).ok
    assert laptop.requests == 2


def test_stop_closes_the_port(ca: TestCA) -> None:
    proxy = FunnelProxy(ca.server_context(), backend_port=free_port()).start()
    port = proxy.port
    proxy.stop()
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RuntimeError, match="not running"):
        proxy.set_dark(True)
