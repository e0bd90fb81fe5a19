"""Per-client token buckets with bounded memory, and the client address behind a trusted proxy."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved, one bucket per client key.

    At most ``max_clients`` buckets are kept; the least recently seen client is forgotten first
    (it comes back with a full bucket, so a flood from many addresses is bounded by
    ``max_clients * burst`` plus the rate, never by memory).
    """

    def __init__(
        self, rate: float, burst: int, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be > 0, burst and max_clients >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, key: str) -> float:
        """Take one token for ``key``. Return 0.0 when allowed, else seconds until a token is due."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        self._buckets.move_to_end(key)
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate


def client_address(peer: str | None, header_values: Sequence[str], trusted: Iterable[Network]) -> str:
    """The address a request is accounted to.

    ``header_values`` are the lines of the client address header (e.g. X-Forwarded-For), in the
    order received. They count only when the peer is a trusted proxy, and then only the last
    entry of the last line: that is what the nearest proxy wrote (a proxy that appends a line of
    its own leaves the client's lines above it; Tailscale's serve proxy replaces the header with
    exactly one line). Anything unparsable falls back to the peer.
    """
    peer = peer or "unknown"
    if not header_values:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in net for net in trusted):
        return peer
    candidate = header_values[-1].rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer
