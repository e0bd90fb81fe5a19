"""Means and 95th percentiles over runs, each with a 95 % confidence interval.

- mean: normal approximation, mean +- 1.96 s / sqrt(n) (s the sample standard deviation);
- 95th percentile: the sample quantile (linear interpolation between order statistics), and the
  distribution-free interval between the order statistics whose ranks bracket it with at least
  95 % binomial probability (the classic order-statistic interval for a quantile). With fewer than
  about 60 runs the upper end is the largest run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    mean: float
    mean_lo: float
    mean_hi: float
    p95: float
    p95_lo: float
    p95_hi: float
    worst: float
    n: int

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "mean": round(self.mean, 3),
            "mean_ci95": [round(self.mean_lo, 3), round(self.mean_hi, 3)],
            "p95": round(self.p95, 3),
            "p95_ci95": [round(self.p95_lo, 3), round(self.p95_hi, 3)],
            "worst": round(self.worst, 3),
            "n": self.n,
        }


def quantile(sorted_values: Sequence[float], q: float) -> float:
    n = len(sorted_values)
    if n == 1:
        return sorted_values[0]
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), in log space (n up to a few thousand)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    total = 0.0
    logp, logq = math.log(p), math.log1p(-p)
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * logp + (n - i) * logq)
    return min(1.0, total)


def quantile_ci(sorted_values: Sequence[float], q: float, level: float = 0.95) -> tuple[float, float]:
    """Order statistics x(l) <= x(u) (1-based ranks) with P(x(l) <= true quantile <= x(u)) >= level."""
    lo_rank, hi_rank = _ranks(len(sorted_values), q, level)
    return sorted_values[lo_rank - 1], sorted_values[hi_rank - 1]


@functools.lru_cache(maxsize=64)
def _ranks(n: int, q: float, level: float) -> tuple[int, int]:
    alpha = (1 - level) / 2
    lo_rank = 1
    for r in range(n, 0, -1):  # largest l with P(B <= l-1) <= alpha
        if _binom_cdf(r - 1, n, q) <= alpha:
            lo_rank = r
            break
    hi_rank = n
    for r in range(1, n + 1):  # smallest u with P(B <= u-1) >= 1 - alpha
        if _binom_cdf(r - 1, n, q) >= 1 - alpha:
            hi_rank = r
            break
    return lo_rank, hi_rank


def estimate(values: Sequence[float]) -> Estimate:
    if not values:
        raise ValueError("no runs to estimate from")
    n = len(values)
    xs = sorted(float(v) for v in values)
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n)
    lo, hi = quantile_ci(xs, 0.95)
    return Estimate(mean, mean - half, mean + half, quantile(xs, 0.95), lo, hi, xs[-1], n)
