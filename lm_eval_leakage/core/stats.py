"""Compatibility re-exports of the per-item and dataset statistics, for modules not yet moved.

The statistics now live in :mod:`item_statistics` (per item), :mod:`intervals` (Wilson intervals,
observed-minus-control differences) and :mod:`scenario_a` (Algorithm 1's dataset test and the
mean-rank test). Import from those; delete this module once nothing imports it.
"""

from __future__ import annotations

from lm_eval_leakage.core.intervals import Difference, mean_difference, proportion_difference, wilson_interval
from lm_eval_leakage.core.item_statistics import (
    STATUS_REASONS,
    ItemStats,
    Status,
    batch_item_stats,
    item_stats,
    item_status,
)
from lm_eval_leakage.core.scenario_a import RankTest, ScenarioA, poisson_binomial_sf, rank_test, scenario_a

__all__ = [
    "STATUS_REASONS",
    "Difference",
    "ItemStats",
    "RankTest",
    "ScenarioA",
    "Status",
    "batch_item_stats",
    "item_stats",
    "item_status",
    "mean_difference",
    "poisson_binomial_sf",
    "proportion_difference",
    "rank_test",
    "scenario_a",
    "wilson_interval",
]
