"""A calibrated scenario-b detector: does one ordering of an item stand out more than chance allows?

Scenario b of Ni et al. (arXiv 2409.01790, Algorithm 2) asks whether *any* ordering of an item's
options stands out, because the benchmark may have been shuffled before it leaked. The paper flags
an item when an IsolationForest score of its best ordering is below a fixed delta, a rule that
flags many items a model never saw (docs/method.md, section 4). Here the threshold is replaced by a
p-value whose false-positive rate on unseen items is the nominal alpha: the studentised maximum of
the item's scores, against the mirror null (the other items' mirrored statistics) or a Gaussian
Monte Carlo table. Model, statistics, nulls, measured figures and limits: docs/method.md, section 6.
The machinery is in :mod:`scenario_b_statistics`; the statistics that were tried and not kept are
in :mod:`scenario_b_experimental`.

Pure module: numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from lm_eval_leakage.core.intervals import wilson_interval
from lm_eval_leakage.core.scenario_b_statistics import (
    MIN_MIRROR_ITEMS,
    REASON_ALL_EQUAL,
    REASON_EXACT_FIT,
    REASON_INVALID_ITEM,
    REASON_NON_FINITE,
    REASON_TOO_FEW,
    REASON_TOO_FEW_ITEMS,
    FittedItems,
    check_perms,
    fit_items,
    gaussian_pvalues,
    pool_groups,
    pooled_pvalues,
)

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_N_NULL",
    "DEFAULT_SEED",
    "MIN_MIRROR_ITEMS",
    "REASON_ALL_EQUAL",
    "REASON_EXACT_FIT",
    "REASON_INVALID_ITEM",
    "REASON_NON_FINITE",
    "REASON_TOO_FEW",
    "REASON_TOO_FEW_ITEMS",
    "ScenarioBResult",
    "ScenarioBSummary",
    "combine_item_statistics",
    "scenario_b_pvalue",
    "scenario_b_pvalues",
    "summarise_scenario_b",
]

Null = Literal["auto", "mirror", "gaussian"]
NullUsed = Literal["mirror", "gaussian", "reference", "mirror+gaussian"]

DEFAULT_METHOD: Final[str] = "studentised_max"
"""The statistic of the detector (why this one: docs/method.md, section 6.4)."""
DEFAULT_N_NULL: Final[int] = 50_000
DEFAULT_SEED: Final[int] = 0


@dataclass(frozen=True, eq=False)
class ScenarioBResult:
    """Per-item scenario-b statistics and p-values for a batch of items.

    Attributes:
        pvalue: One-sided p-value per item for "the standout ordering stands out more than an
            unseen item's orderings allow"; NaN where ``reason`` is not empty.
        statistic: ``T+`` per item (docs/method.md, section 6.2); NaN where invalid; ``+inf``
            when all residual variation sits in the two extreme orderings.
        decoy: ``T-`` per item, the mirror statistic used by the mirror null; NaN where invalid.
        outlier_ordering: Index of the standout ordering (the highest score for the default
            statistic); 0 is the original order; -1 where invalid.
        reason: Per item, why the p-value is NaN; ``""`` where valid.
        model: Per item, the fitted model (``"intercept"`` for the default statistic; the
            experimental ones also record ``"additive"`` or ``"gap"``); ``""`` where invalid.
        method: The statistic requested.
        null: The null actually used (``"auto"`` resolved; ``"mirror+gaussian"`` when large
            pools used the mirror null and small ones the Gaussian table).
        n_reference: Size of the smallest null sample behind a p-value: the Monte Carlo table
            size, the reference size, or for the mirror null the items of the pool (same model
            and number of orderings) minus one (0 when there was nothing to compare with).
    """

    pvalue: NDArray[np.float64]
    statistic: NDArray[np.float64]
    decoy: NDArray[np.float64]
    outlier_ordering: NDArray[np.int64]
    reason: tuple[str, ...]
    model: tuple[str, ...]
    method: str
    null: NullUsed
    n_reference: int


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


def check_inputs(scores: ArrayLike, perms: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``scores`` as a float ``(m, n)`` array and ``perms`` as int ``(n, k)`` or ``(m, n, k)``."""
    values = np.asarray(scores, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"scores must be 2-D (items, orderings), got shape {values.shape}")
    orderings = np.asarray(perms)
    if orderings.ndim not in (2, 3) or (orderings.ndim == 3 and len(orderings) != len(values)):
        raise ValueError(f"perms must be (n, k) or (items, n, k), got shape {orderings.shape}")
    return values, orderings.astype(np.int64, copy=False)


def too_few_orderings(m: int, method: str, null: NullUsed) -> ScenarioBResult:
    """The result for ``m`` items with fewer than 3 orderings: no p-value, one reason."""
    return ScenarioBResult(
        pvalue=np.full(m, np.nan),
        statistic=np.full(m, np.nan),
        decoy=np.full(m, np.nan),
        outlier_ordering=np.full(m, -1, dtype=np.int64),
        reason=(REASON_TOO_FEW,) * m,
        model=("",) * m,
        method=method,
        null=null,
        n_reference=0,
    )


def fitted_result(
    fitted: FittedItems, pvalue: NDArray[np.float64], method: str, null: NullUsed, n_reference: int
) -> ScenarioBResult:
    """Package per-item statistics and their p-values."""
    return ScenarioBResult(
        pvalue=pvalue,
        statistic=fitted.upper,
        decoy=fitted.lower,
        outlier_ordering=fitted.standout,
        reason=tuple(fitted.reasons),
        model=tuple(fitted.models),
        method=method,
        null=null,
        n_reference=n_reference,
    )


def apply_null(
    fitted: FittedItems, n: int, null: Null, n_null: int, rng: np.random.Generator | int
) -> tuple[NDArray[np.float64], NullUsed, int]:
    """P-values of fitted items (``n`` orderings each) under ``null``; updates their reasons."""
    model_of = np.array(fitted.models)
    if null == "gaussian":
        pvalue = np.full(len(model_of), np.nan)
        valid = np.flatnonzero(model_of != "")
        if valid.size:
            pvalue[valid] = gaussian_pvalues(fitted, valid, n_null, rng)
        return pvalue, "gaussian", n_null
    groups = pool_groups(model_of, np.full(len(model_of), n, dtype=np.int64))
    return pooled_pvalues(
        fitted.upper, fitted.lower, groups, lambda members: (gaussian_pvalues(fitted, members, n_null, rng), n_null),
        null, fitted.reasons,
    )


def scenario_b_pvalues(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    method: str = DEFAULT_METHOD,
    null: Null = "auto",
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> ScenarioBResult:
    """Scenario-b p-values for many items with the same number of orderings.

    Formula, assumptions and nulls: docs/method.md, section 6. Source: the scenario-b question of
    Ni et al. (arXiv 2409.01790, Algorithm 2), with the IsolationForest threshold replaced by a
    calibrated test.

    Args:
        scores: ``(m, n)`` summed log-likelihoods; ``scores[i, j]`` is item ``i`` in ordering
            ``j``; ordering 0 is the original.
        perms: ``(n, k)`` orderings shared by all items, or ``(m, n, k)`` per item;
            ``perms[..., j, p]`` is the original option shown at position ``p`` in ordering ``j``.
        method: Only ``"studentised_max"`` (:data:`DEFAULT_METHOD`); the experimental statistics
            are in :func:`scenario_b_experimental.experimental_pvalues`.
        null: ``"mirror"``, ``"gaussian"``, or ``"auto"``: per model, mirror when at least
            ``MIN_MIRROR_ITEMS`` valid items share it, else Gaussian.
        n_null: Monte Carlo table size for the Gaussian null (one table per design, cached when
            ``rng`` is a seed).
        rng: Seed or generator for the Gaussian table; nothing else is random.

    Returns:
        A :class:`ScenarioBResult`. Items get a NaN p-value with a reason, never an error, when
        they have fewer than 3 orderings, a non-finite score, all scores equal, or (mirror null)
        no other valid item to compare with.

    Raises:
        ValueError: On malformed shapes or orderings, an unknown method or null.
    """
    values, orderings = check_inputs(scores, perms)
    if method != DEFAULT_METHOD:
        raise ValueError(f"unknown method {method!r}; choose {DEFAULT_METHOD!r} (others: scenario_b_experimental)")
    if null not in ("auto", "mirror", "gaussian"):
        raise ValueError(f"unknown null {null!r}")
    m, n = values.shape
    if n < 3:
        return too_few_orderings(m, method, "gaussian" if null == "auto" else null)
    check_perms(orderings, n)
    fitted = fit_items(values, orderings)
    pvalue, resolved, n_reference = apply_null(fitted, n, null, n_null, rng)
    return fitted_result(fitted, pvalue, method, resolved, n_reference)


def combine_item_statistics(
    statistic: ArrayLike,
    decoy: ArrayLike,
    model: Sequence[str],
    gaussian_pvalue: ArrayLike,
    *,
    null: Null = "auto",
    method: str = DEFAULT_METHOD,
    n_null: int = DEFAULT_N_NULL,
    n_orderings: ArrayLike | None = None,
) -> ScenarioBResult:
    """Dataset-level p-values from per-item results computed one item at a time.

    lm-eval scores each item on its own (``process_results``) and only sees all items at
    aggregation. Each item's ``T+``, ``T-``, fitted model and Gaussian-null p-value (from
    single-item :func:`scenario_b_pvalues` calls) are enough to apply the mirror null afterwards:
    the same p-values :func:`scenario_b_pvalues` gives for the whole batch at once.

    Args:
        statistic: ``T+`` per item (NaN where invalid).
        decoy: ``T-`` per item.
        model: Fitted model per item (``""`` where invalid).
        gaussian_pvalue: Gaussian-null p-value per item, used when the null resolves to Gaussian.
        null: ``"mirror"``, ``"gaussian"``, or ``"auto"`` (per pool: mirror when it has at
            least ``MIN_MIRROR_ITEMS`` items, else each item's ``gaussian_pvalue``).
        method: The statistic the items were computed with (recorded in the result).
        n_null: Size of the Gaussian tables behind ``gaussian_pvalue``.
        n_orderings: Orderings scored per item. The mirror null pools ``T-`` only over items
            with the same count (``T+`` of 24 and of 120 orderings follow different laws, as
            on CMB); ``None`` pools every item of a model together.

    Returns:
        A :class:`ScenarioBResult` (``outlier_ordering`` is -1: not known at this level).
    """
    upper = np.asarray(statistic, dtype=float)
    lower = np.asarray(decoy, dtype=float)
    model_of = np.asarray(list(model), dtype=object)
    gaussian_of = np.asarray(gaussian_pvalue, dtype=float)
    counts = (np.zeros(upper.size, dtype=np.int64) if n_orderings is None
              else np.asarray(n_orderings, dtype=np.int64))
    if not upper.size == lower.size == model_of.size == gaussian_of.size == counts.size:
        raise ValueError(
            f"per-item inputs differ in length: statistic {upper.size}, decoy {lower.size}, "
            f"model {model_of.size}, gaussian_pvalue {gaussian_of.size}, n_orderings {counts.size}"
        )
    reasons = ["" if name else REASON_INVALID_ITEM for name in model_of]
    resolved: NullUsed
    if null == "gaussian":
        pvalue = np.where(model_of != "", gaussian_of, np.nan)
        resolved, n_reference = "gaussian", n_null
    else:
        pvalue, resolved, n_reference = pooled_pvalues(
            upper, lower, pool_groups(model_of, counts), lambda members: (gaussian_of[members], n_null),
            null, reasons,
        )
    fitted = FittedItems(upper, lower, np.full(upper.size, -1, dtype=np.int64), reasons,
                         [str(name) for name in model_of], [], np.full(upper.size, -1, dtype=np.int64))
    return fitted_result(fitted, pvalue, method, resolved, n_reference)


def scenario_b_pvalue(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    null: Literal["gaussian"] = "gaussian",
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> float:
    """Scenario-b p-value of one item: does its standout ordering stand out more than chance?

    One item cannot estimate its own error law, so the null is the Gaussian Monte Carlo table
    (exact for Gaussian errors, optimistic for heavy tails). For a dataset prefer
    :func:`scenario_b_pvalues`, whose default mirror null holds for any symmetric error law.

    Args:
        scores: ``(n,)`` summed log-likelihoods, ordering 0 = original.
        perms: ``(n, k)`` orderings, ``perms[j, p]`` = original option at position ``p``.
        null: ``"gaussian"`` (the only null for one item).
        n_null: See :func:`scenario_b_pvalues`.
        rng: See :func:`scenario_b_pvalues`.

    Returns:
        The p-value in (0, 1], or NaN for fewer than 3 orderings, a non-finite score or all
        scores equal (``scenario_b_pvalues(...).reason`` says which).
    """
    values = np.asarray(scores, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"scores must be 1-D for one item, got shape {values.shape}")
    if null != "gaussian":
        raise ValueError('a single item needs null="gaussian"')
    result = scenario_b_pvalues(values[None, :], perms, null=null, n_null=n_null, rng=rng)
    return float(result.pvalue[0])


def summarise_scenario_b(
    result: ScenarioBResult, *, alpha: float = 0.05, confidence: float = 0.95
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
