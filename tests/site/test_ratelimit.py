"""Token buckets and the client address behind a trusted proxy (hfo_site.ratelimit)."""

from __future__ import annotations

import ipaddress

import pytest
from hfo_site.ratelimit import RateLimiter, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.acquire("a") == pytest.approx(0.25)  # half a token so far, a refusal does not spend it
    clock.now += 0.25
    assert limiter.acquire("a") == 0.0
    clock.now += 100
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0  # refill caps at the burst


def test_clients_have_their_own_buckets_and_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=3, clock=clock)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0
    for key in ("c", "d", "e"):
        limiter.acquire(key)
    assert len(limiter) == 3  # the least recently seen were forgotten
    assert limiter.acquire("a") == 0.0  # a forgotten client starts with a full bucket


TRUSTED = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("127.0.0.1/32"))


@pytest.mark.parametrize(
    ("peer", "lines", "expected"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),  # untrusted peer: header ignored
        ("100.100.1.1", ["198.51.100.7"], "198.51.100.7"),  # trusted proxy: header used
        ("100.100.1.1", ["1.1.1.1, 198.51.100.7"], "198.51.100.7"),  # right-most: what the proxy wrote
        ("100.100.1.1", ["1.1.1.1", "198.51.100.7"], "198.51.100.7"),  # a line appended by the proxy
        ("100.100.1.1", ["1.1.1.1", "9.9.9.9, 198.51.100.7"], "198.51.100.7"),
        ("100.100.1.1", ["198.51.100.7", "not-an-ip"], "100.100.1.1"),  # never the client's own line
        ("100.100.1.1", ["not-an-ip"], "100.100.1.1"),
        ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        (None, ["198.51.100.7"], "unknown"),
    ],
)
def test_client_address(peer: str | None, lines: list[str], expected: str) -> None:
    assert client_address(peer, lines, TRUSTED) == expected
