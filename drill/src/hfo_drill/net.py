"""Loopback networking shared by the drill, the benchmarks and the tests."""

from __future__ import annotations

import socket
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_ok(url: str, timeout_s: float = 1.0) -> bool:
    """True when a GET of `url` (plain HTTP on loopback) answers 200 within the timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback only
            return bool(resp.status == 200)
    except OSError:
        return False
