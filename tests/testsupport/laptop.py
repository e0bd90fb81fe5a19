"""The sites as the drill runs them, for tests that need a real laptop: `hfo-site health` and
`hfo-site agent` (exec backend, the drill's stand-in bot as the workload) as child processes,
the health service behind the drill's Funnel stand-in (TLS with a test CA), and the standby's
agent ready to be started. The agents heartbeat to whatever `heartbeat_url` names: the real
heartbeat handler behind the drill's Function URL server, or tests/testsupport/site_watchdog.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hfo_drill.funnel import FunnelProxy
from hfo_drill.net import free_port
from hfo_drill.proc import Child
from hfo_drill.sites import Site, SiteFiles, SiteTiming
from hfo_protocol.keys import Keyring
from hfo_watchdog.probe import HttpsProber

from testsupport.https import TestCA
from testsupport.net import wait_until

BOT_PERIOD_S = 1.0


@dataclass
class Sites:
    files: SiteFiles
    funnel: FunnelProxy
    primary: Site  # the laptop: health service and agent (started)
    standby: Site  # the standby's agent (not started)
    children: list[Child]

    @property
    def health_url(self) -> str:
        """The laptop's health endpoint as the watchdog probes it: through the Funnel stand-in."""
        return self.funnel.url


def _private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def wait_healthy(url: str, keyring: Keyring, ca_bundle: Path, timeout_s: float = 30.0) -> None:
    """Until the watchdog's own prober calls `url` healthy (bounded)."""
    prober = HttpsProber(url, keyring, ca_bundle=str(ca_bundle), connect_timeout=1.0, read_timeout=2.0)
    wait_until(lambda: prober.probe().ok, timeout=timeout_s, interval=0.2, what=f"a healthy probe of {url}")


@contextmanager
def real_sites(
    directory: Path,
    keyring_text: str,
    ca: TestCA,
    heartbeat_url: str,
    *,
    heartbeat_interval_s: float = 1.0,
    stop_grace_s: float = 1.0,
    funnel_port: int = 0,
) -> Iterator[Sites]:
    """Start the laptop (its health service answers /livez when this yields); stop everything on
    the way out. `ca` issues the Funnel stand-in's certificate and is the agents' CA bundle."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    files = SiteFiles(
        keyring=_private(directory / "hmac-keyring", keyring_text),
        details_token=_private(directory / "details-token", secrets.token_urlsafe(24)),
        ca_bundle=ca.bundle,
        ledger=directory / "ledger.txt",
        logs=logs,
    )
    timing = SiteTiming(heartbeat_interval_s=heartbeat_interval_s, stop_grace_s=stop_grace_s, bot_period_s=BOT_PERIOD_S)
    children: list[Child] = []
    health_port = free_port()
    funnel = FunnelProxy(ca.server_context(), backend_port=health_port).start(funnel_port)
    primary = Site(
        "primary", files, timing, heartbeat_url, with_health=True, health_port=health_port, register=children.append
    )
    standby = Site("standby", files, timing, heartbeat_url, with_health=False, register=children.append)
    try:
        primary.start()
        primary.wait_ready(30)
        yield Sites(files, funnel, primary, standby, children)
    finally:
        for child in reversed(children):
            child.terminate(3.0)
        funnel.stop()


@contextmanager
def idle_laptop(directory: Path, keyring_text: str, funnel_port: int = 0) -> Iterator[tuple[str, Path]]:
    """A real laptop that is up and does not hold the lease (a stand-in watchdog gives it to the
    standby), so its health endpoint answers `pass` (basis `ready`). Yields the health URL as the
    watchdog probes it (on `funnel_port` when given) and the CA bundle that verifies it."""
    from testsupport.site_watchdog import standin_watchdog

    ca = TestCA(directory)
    keyring = Keyring.from_secret_string(keyring_text)
    with standin_watchdog(keyring, ca.server_context()) as watchdog:
        watchdog.set_lease("standby")
        with real_sites(directory, keyring_text, ca, watchdog.url, funnel_port=funnel_port) as sites:
            wait_healthy(sites.health_url, keyring, ca.bundle)
            yield sites.health_url, ca.bundle
