"""The dataset-level best case of ``scripts/search_scenario_b.py``: known answers on hand-made values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from support.scripts import load_script

search = load_script("search_scenario_b")


def test_auc_counts_ties_half() -> None:
    assert search.auc(np.array([2.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_best_case_p_values_from_the_mix_advantage() -> None:
    clean = np.arange(20, dtype=float)  # 95th percentile 18.05: one clean value (19) above it
    leaked = np.array([100.0, 100.0, 100.0, 100.0, -1.0])  # AUC (4 * 20 + 0) / (5 * 20) = 0.8
    out = search.dataset_best_case(leaked, clean)
    n, advantage = 25, 5 / 25 * (0.8 - 0.5)
    assert out["rank_infinite"] == pytest.approx(stats.norm.sf(advantage * np.sqrt(12 * n)))
    assert out["rank_equal"] == pytest.approx(stats.norm.sf(advantage / np.sqrt((2 * n + 1) / (12 * n * n))))
    assert out["count_95"] == pytest.approx(stats.binom.sf(4, n, 0.05))  # 5 above: four leaked, one clean
    assert out["rank_infinite"] < out["rank_equal"]  # an estimated null costs power


def test_no_leak_gives_no_evidence() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=400)
    out = search.dataset_best_case(values[:40], values[40:])
    assert all(p > 0.05 for p in out.values())
