"""Fixtures shared by the whole suite. Area-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hfo_drill.moto_server import MotoServer, moto_server
from testsupport.kube_apiserver import ControlPlane, start_control_plane


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


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager 1.20.2 on loopback, started on first use and
    stopped at the end of the session (also on failure and Ctrl-C). Skips loudly when not built
    (`make kube-apiserver`), fails under CI=true. Helpers: testsupport/kube_apiserver.py."""
    plane = start_control_plane(Path(tmp_path_factory.mktemp("kube")))
    try:
        yield plane
    finally:
        plane.stop()
