"""Tests for the intervals and control differences (``core.intervals``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lm_eval_leakage.core import intervals


def test_wilson_interval_known_value() -> None:
    # 10 of 100, 95%: Wilson interval (0.0552, 0.1744) (standard textbook value).
    lo, hi = intervals.wilson_interval(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-4) and hi == pytest.approx(0.1744, abs=1e-4)


def test_proportion_difference_newcombe_known_value() -> None:
    # Newcombe (1998), Table II example (56/70 vs 48/80): difference 0.2, method 10 gives
    # 0.0524 to 0.3339.
    result = intervals.proportion_difference(56, 70, 48, 80)
    assert result.difference == pytest.approx(0.2)
    assert result.ci[0] == pytest.approx(0.0524, abs=2e-4) and result.ci[1] == pytest.approx(0.3339, abs=2e-4)
    assert math.isnan(intervals.proportion_difference(1, 0, 1, 2).difference)


def test_mean_difference_covers_truth() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(400):
        result = intervals.mean_difference(rng.normal(0.3, 1, 200), rng.normal(0.0, 1, 150))
        covered += result.ci[0] <= 0.3 <= result.ci[1]
    assert 0.92 <= covered / 400 <= 0.98


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (1, 10), (15, 200), (200, 200), (7, 13)])
@pytest.mark.parametrize("confidence", [0.95, 1 - 0.1 / 3])
def test_clopper_pearson_equals_scipys_exact_interval(successes: int, n: int, confidence: float) -> None:
    expected = sps.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="exact")
    got = intervals.clopper_pearson_interval(successes, n, confidence=confidence)
    assert got == pytest.approx((expected.low, expected.high), abs=1e-10)
    assert all(np.isnan(intervals.clopper_pearson_interval(0, 0)))
