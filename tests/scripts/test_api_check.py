"""The comparison of ``scripts/api_check.py`` (API run against ``hf`` run), on the golden run's items."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from support.make_golden import GOLDEN
from support.scripts import load_script

api_check = load_script("api_check")


@pytest.fixture(scope="module")
def items():
    return api_check.load_run(GOLDEN / "run", "leak_mmlu").items


def _with_scores(items, change):
    return [dataclasses.replace(item, scores=change(np.asarray(item.scores, float))) for item in items]


def test_a_monotone_change_of_the_scores_keeps_the_rankings(items) -> None:
    shifted = _with_scores(items, lambda s: 1.5 * s - 0.3)
    comparisons = api_check.compare_items(shifted, items)
    assert len(comparisons) == len(items)
    assert all(c.spearman == pytest.approx(1.0) and c.same_top for c in comparisons)
    assert max(c.max_abs_diff for c in comparisons) > 0
    assert api_check.agree(comparisons, 0.9, 0.8)
    assert f"same top ordering {len(items)}/{len(items)}" in api_check.summary(comparisons)


def test_reversed_scores_disagree(items) -> None:
    comparisons = api_check.compare_items(_with_scores(items, lambda s: -s), items)
    assert all(c.spearman == pytest.approx(-1.0) and not c.same_top for c in comparisons)
    assert not api_check.agree(comparisons, 0.9, 0.8)


def test_equal_scores_give_no_correlation_and_disagree(items) -> None:
    comparisons = api_check.compare_items(_with_scores(items, np.zeros_like), items)
    assert all(math.isnan(c.spearman) for c in comparisons)
    assert not api_check.agree(comparisons, 0.9, 0.0)


def test_runs_of_different_items_are_refused(items) -> None:
    with pytest.raises(ValueError, match="different items"):
        api_check.compare_items(items[1:], items)
    with pytest.raises(ValueError, match="one leak_cmmlu run"):
        api_check.load_run(GOLDEN / "run", "leak_cmmlu")


def test_the_metrics_line_sets_lm_evals_figures_side_by_side() -> None:
    run = api_check.load_run(GOLDEN / "run", "leak_mmlu")
    line = api_check.metrics_line(run, run)
    value = f"{run.logged['orig_rank']:.3f}"
    assert f"orig_rank {value} / {value}" in line
    assert all(name in line for name in api_check.REPORTED_METRICS)
