"""Means and 95th percentiles with their 95 % confidence intervals."""

from __future__ import annotations

import random

import pytest
from failover import stats


def test_a_constant_has_no_uncertainty():
    e = stats.estimate([5.0] * 100)
    assert (e.mean, e.mean_lo, e.mean_hi, e.p95, e.p95_lo, e.p95_hi, e.worst, e.n) == (5, 5, 5, 5, 5, 5, 5, 100)


def test_the_intervals_hold_the_truth_about_as_often_as_they_say():
    rng = random.Random(1)
    hits_mean = hits_p95 = 0
    trials = 300
    true_p95 = 1.6448536269514722  # standard normal
    for _ in range(trials):
        e = stats.estimate([rng.gauss(0, 1) for _ in range(100)])
        hits_mean += e.mean_lo <= 0 <= e.mean_hi
        hits_p95 += e.p95_lo <= true_p95 <= e.p95_hi
    assert 0.90 <= hits_mean / trials <= 0.99
    assert 0.90 <= hits_p95 / trials <= 1.0


def test_the_quantile_interpolates_and_its_interval_brackets_it():
    xs = sorted(float(i) for i in range(1, 101))
    assert stats.quantile(xs, 0.95) == pytest.approx(95.05)
    lo, hi = stats.quantile_ci(xs, 0.95)
    assert lo <= 95.05 <= hi and hi <= 100


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="no runs"):
        stats.estimate([])
