"""Fixtures of the site tests (health service, agent, backends): secrets on disk, a CA for the
stand-in watchdog's HTTPS, the stand-in watchdog itself, and the stand-in bot."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from hfo_protocol import Keyring
from testsupport.site_helpers import SECRET, TOKEN, BotStub
from testsupport.site_watchdog import StandInWatchdog, standin_watchdog


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_secret_string(SECRET)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "hmac-secret"
    path.write_text(SECRET)
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "details-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def watchdog(keyring: Keyring, server_ssl: ssl.SSLContext) -> Iterator[StandInWatchdog]:
    with standin_watchdog(keyring, server_ssl) as wd:
        yield wd


@pytest.fixture
def bot() -> Iterator[BotStub]:
    stub = BotStub()
    try:
        yield stub
    finally:
        stub.close()
