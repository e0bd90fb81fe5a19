"""Fixtures shared by the whole suite. Area-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hfo_drill.moto_server import MotoServer, moto_server


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto server for the session; use ``aws`` to get a clean account per test."""
    with moto_server() as server:
        yield server


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A clean emulated AWS account, with boto3 pointed at it through the environment."""
    moto.reset()
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    return moto
