from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lm_eval_leakage.core import stats


def test_item_stats_known_values() -> None:
    # original 3rd highest of 5: two orderings above it.
    item = stats.item_stats([1.0, 3.0, 2.0, 0.0, -1.0])
    assert item.ok and item.n_orderings == 5
    assert not item.original_first
    assert item.rank == pytest.approx(2 / 4)
    assert item.pvalue == pytest.approx(3 / 5)
    s = np.array([1.0, 3.0, 2.0, 0.0, -1.0])
    assert item.zscore == pytest.approx((1.0 - s.mean()) / s.std(ddof=1))
    assert item.gap_ratio == pytest.approx((3.0 - 2.0) / (3.0 - -1.0))
    assert item.best == 1


def test_original_on_top() -> None:
    item = stats.item_stats([5.0, 1.0, 2.0])
    assert item.original_first and item.rank == 0.0 and item.pvalue == pytest.approx(1 / 3)


def test_ties_count_as_flagged_and_are_conservative() -> None:
    item = stats.item_stats([2.0, 2.0, 1.0, 0.0])
    assert item.original_first  # Algorithm 1: >= every other
    assert item.rank == pytest.approx(0.5 / 3)
    assert item.pvalue == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    ("scores", "status"),
    [([1.0], "too_few"), ([1.0, np.nan], "nonfinite"), ([-np.inf, 1.0], "nonfinite"), ([2.0, 2.0, 2.0], "constant")],
)
def test_unusable_items_get_a_status_not_a_number(scores: list[float], status: str) -> None:
    item = stats.item_stats(scores)
    assert item.status == status and not item.ok
    assert math.isnan(item.rank) and math.isnan(item.pvalue) and not item.original_first


def test_rank_pvalue_uniform_under_exchangeable_scores() -> None:
    rng = np.random.default_rng(0)
    batch = stats.batch_item_stats(rng.normal(size=(20000, 24)))
    # The p-value is discrete uniform on {1/24, ..., 1}: P(p <= j/24) = j/24.
    for j in (1, 3, 6, 12):
        assert np.mean(batch["pvalue"] <= j / 24 + 1e-12) == pytest.approx(j / 24, abs=0.006)
    assert batch["rank"].mean() == pytest.approx(0.5, abs=0.005)
    assert batch["original_first"].mean() == pytest.approx(1 / 24, abs=0.004)


def test_poisson_binomial_matches_binomial_and_brute_force() -> None:
    p = np.full(50, 1 / 24)
    assert stats.poisson_binomial_sf(5, p) == pytest.approx(sps.binom.sf(4, 50, 1 / 24))
    probs = [0.5, 0.1, 0.25]
    # brute force over the 8 outcomes
    brute = {k: 0.0 for k in range(4)}
    for bits in range(8):
        flags = [(bits >> i) & 1 for i in range(3)]
        brute[sum(flags)] += np.prod([q if f else 1 - q for f, q in zip(flags, probs)])
    assert stats.poisson_binomial_sf(2, probs) == pytest.approx(brute[2] + brute[3])
    assert stats.poisson_binomial_sf(0, probs) == 1.0
    assert stats.poisson_binomial_sf(4, probs) == 0.0


def test_scenario_a_with_mixed_chance_levels() -> None:
    flags = [True, False, False, True, False, False]
    n = [24, 24, 120, 120, 2, 6]
    result = stats.scenario_a(flags, n)
    assert result.rate == pytest.approx(2 / 6)
    assert result.chance == pytest.approx(np.mean([1 / 24, 1 / 24, 1 / 120, 1 / 120, 1 / 2, 1 / 6]))
    assert result.excess == pytest.approx(result.rate - result.chance)
    assert result.excess_ci[0] < result.excess < result.excess_ci[1]
    assert result.pvalue == pytest.approx(stats.poisson_binomial_sf(2, 1 / np.array(n, dtype=float)))


def test_scenario_a_recovers_planted_leakage_within_interval() -> None:
    rng = np.random.default_rng(1)
    n_items, leaked_fraction = 2000, 0.3
    leaked = rng.random(n_items) < leaked_fraction
    flags = np.where(leaked, True, rng.random(n_items) < 1 / 24)
    result = stats.scenario_a(flags, np.full(n_items, 24))
    true_excess = leaked.mean() * (1 - 1 / 24)
    assert result.excess_ci[0] <= true_excess <= result.excess_ci[1]
    assert result.pvalue < 1e-50


def test_scenario_a_empty_is_nan() -> None:
    assert math.isnan(stats.scenario_a([], []).rate)


def test_wilson_interval_known_value() -> None:
    # 10 of 100, 95%: Wilson interval (0.0552, 0.1744) (standard textbook value).
    lo, hi = stats.wilson_interval(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-4) and hi == pytest.approx(0.1744, abs=1e-4)


def test_rank_test_null_and_planted() -> None:
    rng = np.random.default_rng(2)
    null = stats.batch_item_stats(rng.normal(size=(5000, 24)))
    result = stats.rank_test(null["rank"], np.full(5000, 24))
    assert abs(result.zscore) < 4 and 0.0 < result.pvalue < 1.0
    scores = rng.normal(size=(500, 24))
    scores[:, 0] += 1.0
    planted = stats.batch_item_stats(scores)
    assert stats.rank_test(planted["rank"], np.full(500, 24)).pvalue < 1e-10


def test_proportion_difference_newcombe_known_value() -> None:
    # Newcombe (1998), Table II example (56/70 vs 48/80): difference 0.2, method 10 gives
    # 0.0524 to 0.3339.
    result = stats.proportion_difference(56, 70, 48, 80)
    assert result.difference == pytest.approx(0.2)
    assert result.ci[0] == pytest.approx(0.0524, abs=2e-4) and result.ci[1] == pytest.approx(0.3339, abs=2e-4)
    assert math.isnan(stats.proportion_difference(1, 0, 1, 2).difference)


def test_mean_difference_covers_truth() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(400):
        result = stats.mean_difference(rng.normal(0.3, 1, 200), rng.normal(0.0, 1, 150))
        covered += result.ci[0] <= 0.3 <= result.ci[1]
    assert 0.92 <= covered / 400 <= 0.98
