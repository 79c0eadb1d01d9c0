"""A calibrated scenario-b detector: does one ordering of an item stand out more than chance allows?

Scenario b of Ni et al. (arXiv 2409.01790, Algorithm 2) asks whether *any* ordering of an item's
options stands out, because the benchmark may have been shuffled before it leaked. The paper flags
an item when an IsolationForest score of its best ordering is below a fixed delta, a rule that
flags many items a model never saw (docs/method.md, section 4). Here the threshold is replaced by a
p-value whose false-positive rate on unseen items is the nominal alpha. The default statistic,
slot agreement, is the correlation of the item's scores with the slots each ordering shares with
the best one; its null is made of other items, the run's control items or the mirror statistics of
the items under test. The studentised maximum is the other statistic, with a Gaussian Monte Carlo
table as well. Model, statistics, nulls, measured figures and limits: docs/method.md, section 6.
The machinery is in :mod:`scenario_b_statistics`; the statistics that were tried and not kept are
in :mod:`scenario_b_experimental`.

Pure module: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lm_eval_leakage.core.scenario_b_statistics import (
    MIN_MIRROR_ITEMS,
    REASON_ALL_EQUAL,
    REASON_EXACT_FIT,
    REASON_INVALID_ITEM,
    REASON_NO_CONTROL,
    REASON_NO_TABLE,
    REASON_NON_FINITE,
    REASON_TOO_FEW,
    REASON_TOO_FEW_ITEMS,
    SLOT_AGREEMENT,
    FittedItems,
    check_perms,
    control_pvalues,
    fit_items,
    gaussian_pvalues,
    pool_groups,
    pool_keys,
    pooled_pvalues,
    slot_agreement_design,
    studentised_max_design,
)
from lm_eval_leakage.core.scenario_b_summary import ScenarioBSummary, summarise_scenario_b

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_N_NULL",
    "DEFAULT_SEED",
    "METHODS",
    "MIN_MIRROR_ITEMS",
    "REASON_ALL_EQUAL",
    "REASON_EXACT_FIT",
    "REASON_INVALID_ITEM",
    "REASON_NON_FINITE",
    "REASON_NO_CONTROL",
    "REASON_NO_TABLE",
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
NullUsed = Literal["mirror", "gaussian", "reference", "mirror+gaussian", "control"]

DEFAULT_METHOD: Final[str] = SLOT_AGREEMENT
"""The statistic of the detector (why this one: docs/method.md, section 6.4)."""
METHODS: Final[dict[str, Callable[[NDArray[np.int64]], Any]]] = {
    SLOT_AGREEMENT: slot_agreement_design,
    "studentised_max": studentised_max_design,
}
"""The statistics :func:`scenario_b_pvalues` computes, and their designs."""
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
        null, fitted.reasons, lambda members: str(model_of[members[0]]),
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
        method: A key of :data:`METHODS`: ``"slot_agreement"`` (:data:`DEFAULT_METHOD`) or
            ``"studentised_max"``; the experimental statistics are in
            :func:`scenario_b_experimental.experimental_pvalues`.
        null: ``"mirror"``, ``"gaussian"``, or ``"auto"``: per model, mirror when at least
            ``MIN_MIRROR_ITEMS`` valid items share it or the statistic has no Gaussian table
            (``slot_agreement``: its items get NaN under ``"gaussian"``), else Gaussian.
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
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)} (others: scenario_b_experimental)")
    if null not in ("auto", "mirror", "gaussian"):
        raise ValueError(f"unknown null {null!r}")
    m, n = values.shape
    if n < 3:
        return too_few_orderings(m, method, "gaussian" if null == "auto" else null)
    check_perms(orderings, n)
    fitted = fit_items(values, orderings, METHODS[method])
    pvalue, resolved, n_reference = apply_null(fitted, n, null, n_null, rng)
    return fitted_result(fitted, pvalue, method, resolved, n_reference)


def combine_item_statistics(  # long: per-item inputs checked, then one of three nulls
    statistic: ArrayLike,
    decoy: ArrayLike,
    model: Sequence[str],
    gaussian_pvalue: ArrayLike,
    *,
    null: Null = "auto",
    method: str = DEFAULT_METHOD,
    n_null: int = DEFAULT_N_NULL,
    n_orderings: ArrayLike | None = None,
    control: tuple[ArrayLike, Sequence[str], ArrayLike] | None = None,
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
        control: ``(statistic, model, n_orderings)`` of control items (``core.control``: the
            same kind of text, which no training corpus can contain). Given, and with ``null``
            ``"auto"``, each item's ``T+`` is ranked against the control items' ``T+`` of the
            same model and number of orderings (the ``"control"`` null; ``n_orderings`` is then
            required). The control items are not under test, so however many items leaked, the
            null stays that of unseen text; pools without a control item get NaN and a reason.

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
    if control is not None and null == "auto":
        if n_orderings is None:
            raise ValueError("the control null needs n_orderings")
        pvalue, n_reference = _against_control(upper, model_of, counts, control, reasons)
        resolved = "control"
    elif null == "gaussian":
        pvalue = np.where(model_of != "", gaussian_of, np.nan)
        for i in np.flatnonzero((model_of != "") & np.isnan(gaussian_of)):
            reasons[i] = REASON_NO_TABLE
        resolved, n_reference = "gaussian", n_null
    else:
        pvalue, resolved, n_reference = pooled_pvalues(
            upper, lower, pool_groups(model_of, counts), lambda members: (gaussian_of[members], n_null),
            null, reasons, lambda members: str(model_of[members[0]]),
        )
    fitted = FittedItems(upper, lower, np.full(upper.size, -1, dtype=np.int64), reasons,
                         [str(name) for name in model_of], [], np.full(upper.size, -1, dtype=np.int64))
    return fitted_result(fitted, pvalue, method, resolved, n_reference)


def _against_control(
    upper: NDArray[np.float64],
    model_of: NDArray[Any],
    counts: NDArray[np.int64],
    control: tuple[ArrayLike, Sequence[str], ArrayLike],
    reasons: list[str],
) -> tuple[NDArray[np.float64], int]:
    """Items' p-values against the control items' ``T+`` of the same pool (see :func:`combine_item_statistics`)."""
    statistic = np.asarray(control[0], dtype=float)
    model = np.asarray(list(control[1]), dtype=object)
    n_orderings = np.asarray(control[2], dtype=np.int64)
    if not statistic.size == model.size == n_orderings.size:
        raise ValueError(f"control inputs differ in length: statistic {statistic.size}, model {model.size}, "
                         f"n_orderings {n_orderings.size}")
    usable = (model != "") & np.isfinite(statistic)
    kept, model, n_orderings = statistic[usable], model[usable], n_orderings[usable]
    reference = {key: kept[members] for key, members in
                 zip(pool_keys(model, n_orderings), pool_groups(model, n_orderings), strict=True)}
    return control_pvalues(upper, pool_groups(model_of, counts), pool_keys(model_of, counts), reference, reasons)


def scenario_b_pvalue(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    null: Literal["gaussian"] = "gaussian",
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> float:
    """Scenario-b p-value of one item: does its best ordering stand out more than chance?

    One item cannot estimate its own error law, so the statistic is the studentised maximum and
    the null its Gaussian Monte Carlo table (exact for Gaussian errors, optimistic for heavy
    tails); the default statistic (``slot_agreement``) has no null for one item. For a dataset
    prefer :func:`scenario_b_pvalues` or, with control items, the control null.

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
    result = scenario_b_pvalues(values[None, :], perms, method="studentised_max", null=null, n_null=n_null, rng=rng)
    return float(result.pvalue[0])
