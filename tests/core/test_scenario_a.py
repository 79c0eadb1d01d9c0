"""Tests for the dataset-level scenario-a tests (``core.scenario_a``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lm_eval_leakage.core import item_statistics, scenario_a


def test_poisson_binomial_matches_binomial_and_brute_force() -> None:
    p = np.full(50, 1 / 24)
    assert scenario_a.poisson_binomial_sf(5, p) == pytest.approx(sps.binom.sf(4, 50, 1 / 24))
    probs = [0.5, 0.1, 0.25]
    # brute force over the 8 outcomes
    brute = {k: 0.0 for k in range(4)}
    for bits in range(8):
        flags = [(bits >> i) & 1 for i in range(3)]
        brute[sum(flags)] += np.prod([q if f else 1 - q for f, q in zip(flags, probs)])
    assert scenario_a.poisson_binomial_sf(2, probs) == pytest.approx(brute[2] + brute[3])
    assert scenario_a.poisson_binomial_sf(0, probs) == 1.0
    assert scenario_a.poisson_binomial_sf(4, probs) == 0.0


def test_scenario_a_with_mixed_chance_levels() -> None:
    flags = [True, False, False, True, False, False]
    n = [24, 24, 120, 120, 2, 6]
    result = scenario_a.scenario_a(flags, n)
    assert result.rate == pytest.approx(2 / 6)
    assert result.chance == pytest.approx(np.mean([1 / 24, 1 / 24, 1 / 120, 1 / 120, 1 / 2, 1 / 6]))
    assert result.excess == pytest.approx(result.rate - result.chance)
    assert result.excess_ci[0] < result.excess < result.excess_ci[1]
    assert result.pvalue == pytest.approx(scenario_a.poisson_binomial_sf(2, 1 / np.array(n, dtype=float)))


def test_scenario_a_recovers_planted_leakage_within_interval() -> None:
    rng = np.random.default_rng(1)
    n_items, leaked_fraction = 2000, 0.3
    leaked = rng.random(n_items) < leaked_fraction
    flags = np.where(leaked, True, rng.random(n_items) < 1 / 24)
    result = scenario_a.scenario_a(flags, np.full(n_items, 24))
    true_excess = leaked.mean() * (1 - 1 / 24)
    assert result.excess_ci[0] <= true_excess <= result.excess_ci[1]
    assert result.pvalue < 1e-50


def test_scenario_a_empty_is_nan() -> None:
    assert math.isnan(scenario_a.scenario_a([], []).rate)


def test_rank_test_null_and_planted() -> None:
    rng = np.random.default_rng(2)
    null = item_statistics.batch_item_stats(rng.normal(size=(5000, 24)))
    result = scenario_a.rank_test(null["rank"], np.full(5000, 24))
    assert abs(result.zscore) < 4 and 0.0 < result.pvalue < 1.0
    scores = rng.normal(size=(500, 24))
    scores[:, 0] += 1.0
    planted = item_statistics.batch_item_stats(scores)
    assert scenario_a.rank_test(planted["rank"], np.full(500, 24)).pvalue < 1e-10
