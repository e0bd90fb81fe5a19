"""Interval arithmetic on [start, end) spans of seconds: what the simulator's figures are made of."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Span = tuple[float, float]


def union(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def clip(spans: Iterable[Span], lo: float, hi: float) -> list[Span]:
    return [(max(s, lo), min(e, hi)) for s, e in spans if min(e, hi) > max(s, lo)]


def length(spans: Iterable[Span]) -> float:
    return sum(e - s for s, e in union(spans))


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Where both unions hold."""
    a, b = union(a), union(b)
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def complement(spans: Sequence[Span], lo: float, hi: float) -> list[Span]:
    """Where none holds, within [lo, hi)."""
    out: list[Span] = []
    at = lo
    for s, e in clip(union(spans), lo, hi):
        if s > at:
            out.append((at, s))
        at = max(at, e)
    if at < hi:
        out.append((at, hi))
    return out
