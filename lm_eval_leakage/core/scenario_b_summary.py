"""Dataset-level figures of the calibrated scenario-b test: flagged fraction, excess over alpha, intervals.

Re-exported by :mod:`scenario_b`, where the per-item p-values come from.

Pure module: numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lm_eval_leakage.core.intervals import wilson_interval

__all__ = ["ScenarioBSummary", "summarise_scenario_b"]


@dataclass(frozen=True)
class ScenarioBSummary:
    """Dataset-level scenario-b figures.

    Attributes:
        n_items: Items in the batch.
        n_valid: Items with a p-value.
        n_excluded: Items without one (``n_items - n_valid``).
        n_flagged: Valid items with ``p < alpha``.
        alpha: Nominal level; the expected flagged fraction when no item leaked.
        confidence: Confidence level of the intervals.
        flagged_fraction: ``n_flagged / n_valid``.
        flagged_low: Lower Wilson bound of the flagged fraction.
        flagged_high: Upper Wilson bound of the flagged fraction.
        excess: ``flagged_fraction - alpha``, the flagged fraction beyond the calibrated level.
        excess_low: Lower bound of ``excess`` (Newcombe's hybrid Wilson interval, which also
            counts the sampling error of the null when it was estimated from ``n_reference``
            values).
        excess_high: Upper bound of ``excess``.
        pvalue: One-sided p-value of "flagged fraction > alpha" (normal approximation with the
            same two variance terms).
        null: The null behind the item p-values.
    """

    n_items: int
    n_valid: int
    n_excluded: int
    n_flagged: int
    alpha: float
    confidence: float
    flagged_fraction: float
    flagged_low: float
    flagged_high: float
    excess: float
    excess_low: float
    excess_high: float
    pvalue: float
    null: str


def summarise_scenario_b(
    result: Any, *, alpha: float = 0.05, confidence: float = 0.95
) -> ScenarioBSummary:
    """Flagged fraction, its excess over the calibrated level, and intervals.

    ``flagged = #{p_i < alpha} / n_valid``; under no leakage its expectation is at most ``alpha``
    (exactly ``alpha`` up to the granularity of the null sample). ``excess = flagged - alpha``.
    Intervals: Wilson for ``flagged``; for ``excess``, Newcombe's hybrid score interval for a
    difference of proportions, combining the Wilson interval of ``flagged`` (``n_valid`` items)
    with the Wilson interval of the null's own level (``n_reference`` null values: the mirror
    decoys, the Monte Carlo table, or the reference), because the null threshold is itself
    estimated. The one-sided p-value uses the normal approximation with the same two variances.

    Raises:
        ValueError: If no item has a p-value, or ``alpha``/``confidence`` lie outside (0, 1).
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError("alpha and confidence must lie in (0, 1)")
    pvalues = np.asarray(result.pvalue, dtype=float)
    valid = np.isfinite(pvalues)
    n_valid = int(valid.sum())
    if n_valid == 0:
        reasons = sorted({reason for reason in result.reason if reason})
        raise ValueError(f"no item has a scenario-b p-value (reasons: {reasons})")
    n_flagged = int(np.sum(pvalues[valid] < alpha))
    flagged = n_flagged / n_valid
    low, high = wilson_interval(n_flagged, n_valid, confidence=confidence)
    n_ref = max(result.n_reference, 1)
    null_low, null_high = wilson_interval(alpha * n_ref, n_ref, confidence=confidence)
    excess = flagged - alpha
    se = math.sqrt(alpha * (1.0 - alpha) * (1.0 / n_valid + 1.0 / n_ref))
    return ScenarioBSummary(
        n_items=len(pvalues), n_valid=n_valid, n_excluded=len(pvalues) - n_valid, n_flagged=n_flagged,
        alpha=alpha, confidence=confidence, flagged_fraction=flagged, flagged_low=low, flagged_high=high,
        excess=excess,
        excess_low=excess - math.hypot(flagged - low, null_high - alpha),
        excess_high=excess + math.hypot(high - flagged, alpha - null_low),
        pvalue=float(stats.norm.sf(excess / se)),
        null=result.null,
    )
