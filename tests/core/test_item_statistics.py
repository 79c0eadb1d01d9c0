"""Tests for the per-item statistics (``core.item_statistics``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_leakage.core import item_statistics


def test_item_stats_known_values() -> None:
    # original 3rd highest of 5: two orderings above it.
    item = item_statistics.item_stats([1.0, 3.0, 2.0, 0.0, -1.0])
    assert item.ok and item.n_orderings == 5
    assert not item.original_first
    assert item.rank == pytest.approx(2 / 4)
    assert item.pvalue == pytest.approx(3 / 5)
    s = np.array([1.0, 3.0, 2.0, 0.0, -1.0])
    assert item.zscore == pytest.approx((1.0 - s.mean()) / s.std(ddof=1))
    assert item.gap_ratio == pytest.approx((3.0 - 2.0) / (3.0 - -1.0))
    assert item.best == 1


def test_original_on_top() -> None:
    item = item_statistics.item_stats([5.0, 1.0, 2.0])
    assert item.original_first and item.rank == 0.0 and item.pvalue == pytest.approx(1 / 3)


def test_ties_count_as_flagged_and_are_conservative() -> None:
    item = item_statistics.item_stats([2.0, 2.0, 1.0, 0.0])
    assert item.original_first  # Algorithm 1: >= every other
    assert item.rank == pytest.approx(0.5 / 3)
    assert item.pvalue == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    ("scores", "status"),
    [([1.0], "too_few"), ([1.0, np.nan], "nonfinite"), ([-np.inf, 1.0], "nonfinite"), ([2.0, 2.0, 2.0], "constant")],
)
def test_unusable_items_get_a_status_not_a_number(scores: list[float], status: str) -> None:
    item = item_statistics.item_stats(scores)
    assert item.status == status and not item.ok
    assert math.isnan(item.rank) and math.isnan(item.pvalue) and not item.original_first


def test_rank_pvalue_uniform_under_exchangeable_scores() -> None:
    rng = np.random.default_rng(0)
    batch = item_statistics.batch_item_stats(rng.normal(size=(20000, 24)))
    # The p-value is discrete uniform on {1/24, ..., 1}: P(p <= j/24) = j/24.
    for j in (1, 3, 6, 12):
        assert np.mean(batch["pvalue"] <= j / 24 + 1e-12) == pytest.approx(j / 24, abs=0.006)
    assert batch["rank"].mean() == pytest.approx(0.5, abs=0.005)
    assert batch["original_first"].mean() == pytest.approx(1 / 24, abs=0.004)
