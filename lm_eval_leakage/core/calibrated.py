"""A calibrated scenario-b detector: does one ordering of an item stand out more than chance allows?

Scenario b of Ni et al. (arXiv 2409.01790, Algorithm 2) asks whether *any* ordering of an item's
options stands out, because the benchmark may have been shuffled before it leaked. The paper flags
an item when an IsolationForest score of the best ordering is below a fixed delta; that rule is
uncalibrated (METHOD.md section 4, weakness 3: it flags 20-50% of items from a model that never saw
them). This module replaces the threshold by a p-value whose false-positive rate on unseen items is
the nominal alpha (issue 3, item 4).

Model of an unseen item. With ``perms[j, p]`` the original option shown at position ``p`` in
ordering ``j``, the score (summed log-likelihood) of ordering ``j`` is taken to be::

    score_j = mu + sum_p beta[perms[j, p], p] + eps_j

``beta[o, p]`` absorbs "option o reads better in slot p" effects, e.g. "None of these" liking the
last slot; ``eps`` is the rest. Under no leakage the law of the scores is taken to be symmetric
about its centre (``beta`` and ``eps`` as likely to push one way as the other), which is what the
default mirror null needs.

Statistics (``method``):

* ``"studentised_max"`` (the default): ``T+ = (max_j score_j - mean) / sd`` over the item's
  orderings (Grubbs' statistic), mirrored by ``T- = (mean - min_j score_j) / sd``.
* ``"additive_residual"``: fit the additive model above by least squares (column space of
  dimension (k-1)^2 + 1, i.e. 10 for k = 4, leaving 14 residual degrees of freedom of 24). Let
  ``a`` and ``b`` be the orderings with the largest and smallest internally studentised residuals.
  Refit without both, predict them, and studentise by the refit's residual scale::

      T+ = (y_a - yhat_a) / (s_(-ab) * sqrt(1 + x_a' (X_(-ab)' X_(-ab))^+ x_a))
      T- = (yhat_b - y_b) / (s_(-ab) * sqrt(1 + x_b' (X_(-ab)' X_(-ab))^+ x_b))

  computed in closed form from the full fit (with ``M = I - H`` the residual maker and
  ``J = {a, b}``: prediction residuals ``M_JJ^-1 r_J``, their variances ``sigma^2 diag(M_JJ^-1)``,
  residual sum of squares ``RSS - r_J' M_JJ^-1 r_J`` on ``df - 2`` degrees of freedom; when a
  sampled design makes ``r_a`` and ``r_b`` perfectly correlated, ``M_JJ`` has rank 1 and its
  pseudo-inverse is used, on ``df - 1`` degrees of freedom). Exactly invariant to ``mu`` and
  ``beta``: it detects a bump on *one* ordering that the position effects cannot explain.
* ``"gap_ratio"``: ``(max - second) / (max - min)``, mirrored by ``(second lowest - min) /
  (max - min)``.

Under a sign flip of the scores ``T+`` and ``T-`` swap, so for a symmetric law they share one
distribution; a leaked ordering, which pushes scores up, raises ``T+`` far more than ``T-``.

Choice of the default. The additive residual is the most powerful statistic against a single
bumped ordering (simulated power in ``tests/test_calibrated.py``), but real memorisation is not a
single bump. In the controlled-contamination runs (``docs/validation.md``; SmolLM2-135M fine-tuned
on 30 of 60 MMLU items in their original order), the additive model explained 91% of the
variance of a leaked item's 24 scores after 10 epochs (83% for clean items): a memorised option
gains in its own slot whatever surrounds it, which is an option-at-position effect, so the fit
absorbs the leak. ROC AUC of leaked against clean items at epochs 0/1/2/3/5/10: studentised max
.52/.46/.61/.71/.84/.93, additive residual .53/.55/.54/.52/.51/.55. On 200 unseen MMLU items
(SmolLM2-135M, the README's run) the mirror null flagged 2.0% with the studentised max and 9.0%
with the additive residual at alpha = 0.05.

Nulls.

* ``"mirror"`` (batch default): the ``T-`` values of the *other* items of the batch are a sample
  from the null law of ``T+``, whatever the (symmetric) error distribution, heavy tails included:
  ``p_i = (1 + #{l != i: T-_l >= T+_i}) / m``. Exactly uniform on {1/m, ..., 1} when items are
  independent and share one symmetric error law; calibrated on average over items otherwise.
  Items are pooled only with items of the same fitted model and number of orderings, since the
  law of ``T+`` depends on both (i.i.d. normal scores, 24- and 120-ordering items pooled
  together: 0.5% and 9% flagged; pooled apart: 5% each).
* ``"gaussian"``: a Monte Carlo table of ``T+`` under i.i.d. Gaussian errors, which depends only on
  the design (the orderings shown), not on the item: built once per design and reused. Exact when
  the errors are Gaussian; anti-conservative for heavy-tailed errors (t with 3 df: 15% flagged at
  alpha = 0.05). The only null available for a single item. For the studentised max it is
  conservative on real scores, whose position effects give flatter tails than Gaussian noise
  (0.5% flagged at alpha = 0.05 on the 200 unseen MMLU items above).
* ``"reference"``: ``T+`` values of a control set the caller supplies (e.g. items no corpus can
  contain, issue 3 item 5), scored with the same method and design. Needs no symmetry.

Fallbacks of ``"additive_residual"`` when the orderings cannot identify the additive model (sampled orderings: fewer than
``MIN_RESIDUAL_DF`` residual degrees of freedom): the same deleted-pair statistic with an
intercept-only model (no position effects), if there are at least 4 orderings; with 3 orderings,
the gap ratio. The model used is recorded per item.

Limits (simulated with ``scripts/bench_calibrated.py --candidates``, k = 4, alpha = 0.05):

* Mirror null with many leaked items (additive residual): a leaked item's ``T-`` is slightly smaller than a clean
  one's, so the decoy sample thins and clean items' false-positive rate rises: 0.05 with 5% of
  items leaked, 0.06-0.07 with 50% leaked by a bump of 5-8 noise sd.
* Right-skewed errors break every mirror null (i.i.d. lognormal scores: 0.67). On SmolLM2-135M and
  20 real MMLU items, the pooled studentised residuals had skewness -0.09 (Gaussian 95% range
  +-0.17) and lighter tails than Gaussian, and ``T+`` and ``T-`` had equal means (2.00, 2.06).
  On 200 items: pooled skewness of the standardised scores -0.05; studentised max ``T+`` and
  ``T-`` means 1.84 and 1.89 (two-sample KS p = 0.33).
* Effects beyond the additive model (which option follows which) make the Gaussian table
  conservative (0.024 with strong adjacency effects); the mirror null stays at 0.05.
* Orderings that render the same text (duplicate options, METHOD.md section 4 item 5) get equal
  scores, not independent errors: collapse them, or expect a conservative test.

Pure module: numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from lm_eval_leakage.core.stats import wilson_interval

Method = Literal["additive_residual", "studentised_max", "gap_ratio"]
Null = Literal["auto", "mirror", "gaussian", "reference"]
Model = Literal["additive", "intercept", "gap"]

METHODS: Final[tuple[Method, ...]] = ("additive_residual", "studentised_max", "gap_ratio")
DEFAULT_METHOD: Final[Method] = "studentised_max"
"""The statistic used when none is named (why: "Choice of the default" in the module docstring)."""
MIN_RESIDUAL_DF: Final[int] = 5
"""Residual degrees of freedom the additive fit needs (3 are left after deleting the extreme pair)."""
MIN_MIRROR_ITEMS: Final[int] = 200
"""``null="auto"`` uses the mirror null in each pool (valid items sharing a fitted model and a number
of orderings) of at least this many items, and the Gaussian table in smaller pools."""
DEFAULT_N_NULL: Final[int] = 50_000
DEFAULT_SEED: Final[int] = 0

REASON_TOO_FEW: Final[str] = "fewer than 3 orderings"
REASON_NON_FINITE: Final[str] = "non-finite score"
REASON_ALL_EQUAL: Final[str] = "all scores equal"
REASON_EXACT_FIT: Final[str] = "scores fit the model exactly (no residual variation)"
REASON_TOO_FEW_ITEMS: Final[str] = "fewer than 2 valid items for the mirror null"
REASON_INVALID_ITEM: Final[str] = "the item had no valid statistic"

_EXACT_FIT_RTOL: Final[float] = 1e-18  # residual SS below this fraction of the total SS is zero
_LEVERAGE_ATOL: Final[float] = 1e-10  # an ordering with 1 - h_jj below this is fitted exactly
_CHUNK_VALUES: Final[int] = 1 << 22  # Monte Carlo draws per chunk (32 MiB of float64)


@dataclass(frozen=True, eq=False)
class ScenarioBResult:
    """Per-item scenario-b statistics and p-values for a batch of items.

    Attributes:
        pvalue: One-sided p-value per item for "the standout ordering stands out more than an
            unseen item's orderings allow"; NaN where ``reason`` is not empty.
        statistic: ``T+`` per item (see the module docstring); NaN where invalid; ``+inf`` when
            all residual variation sits in the two extreme orderings.
        decoy: ``T-`` per item, the mirror statistic used by the mirror null; NaN where invalid.
        outlier_ordering: Index of the standout ordering (largest studentised residual, or the
            highest score for the raw-score methods); 0 is the original order; -1 where invalid.
        reason: Per item, why the p-value is NaN; ``""`` where valid.
        model: Per item, the fitted model: ``"additive"``, ``"intercept"`` (too few orderings to
            identify position effects) or ``"gap"`` (3 orderings); ``""`` where invalid.
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
    method: Method
    null: Literal["mirror", "gaussian", "reference", "mirror+gaussian"]
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


# ---------------------------------------------------------------------------------------------
# Designs: the column space of the additive model for one set of orderings.
# ---------------------------------------------------------------------------------------------


_Statistic = Literal["deleted_pair", "grubbs", "gap"]


@dataclass(frozen=True, eq=False)
class _Design:
    model: Model
    statistic: _Statistic
    basis: NDArray[np.float64]  # (n, r) orthonormal basis of the model's column space
    residual_diag: NDArray[np.float64]  # (n,) diagonal of M = I - basis @ basis.T
    residual_df: int
    null_key: Hashable  # identifies the null law of the statistic (row order does not matter)


_DESIGNS: dict[tuple[bytes, tuple[int, ...], str], _Design] = {}
_NULL_TABLES: dict[tuple[Hashable, str, int, int | None], NDArray[np.float64]] = {}
_CACHE_LIMIT: Final[int] = 256


def _remember(cache: dict[Any, Any], key: Hashable, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _orthonormal_basis(columns: NDArray[np.float64]) -> NDArray[np.float64]:
    left, singular, _ = np.linalg.svd(columns, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * max(columns.shape) * np.finfo(float).eps * 10))
    return left[:, :rank]


def _design(perms: NDArray[np.int64], method: Method) -> _Design:
    key = (perms.tobytes(), perms.shape, method)
    if key in _DESIGNS:
        return _DESIGNS[key]
    n, k = perms.shape
    design: _Design
    if method == "gap_ratio" or (method == "additive_residual" and n < 4):
        design = _Design("gap", "gap", np.zeros((n, 0)), np.ones(n), n - 1, ("gap", n))
    elif method == "studentised_max":
        design = _intercept_design(n, "grubbs")
    else:
        indicators = (perms[:, :, None] == np.arange(k)).reshape(n, k * k).astype(float)
        basis = _orthonormal_basis(np.column_stack([np.ones(n), indicators]))
        if n - basis.shape[1] >= MIN_RESIDUAL_DF:
            canonical = np.ascontiguousarray(perms[np.lexsort(perms.T[::-1])])
            design = _Design(
                model="additive",
                statistic="deleted_pair",
                basis=basis,
                residual_diag=1.0 - np.sum(basis**2, axis=1),
                residual_df=n - basis.shape[1],
                null_key=("additive", canonical.tobytes(), canonical.shape),
            )
        else:
            design = _intercept_design(n, "deleted_pair")
    _remember(_DESIGNS, key, design)
    return design


def _intercept_design(n: int, statistic: _Statistic) -> _Design:
    return _Design(
        model="intercept",
        statistic=statistic,
        basis=np.full((n, 1), n**-0.5),
        residual_diag=np.full(n, 1.0 - 1.0 / n),
        residual_df=n - 1,
        null_key=("intercept", statistic, n),
    )


# ---------------------------------------------------------------------------------------------
# Statistics, vectorised over items that share one design.
# ---------------------------------------------------------------------------------------------


def _deleted_pair(
    scores: NDArray[np.float64], design: _Design
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    """``T+``, ``T-``, standout ordering and exact-fit mask for the deleted-pair statistic."""
    basis, diag = design.basis, design.residual_diag
    residuals = scores - (scores @ basis) @ basis.T
    rss = np.einsum("ij,ij->i", residuals, residuals)
    centred = scores - scores.mean(axis=1, keepdims=True)
    exact = rss <= _EXACT_FIT_RTOL * np.einsum("ij,ij->i", centred, centred)

    free = diag > _LEVERAGE_ATOL  # orderings the fit does not reproduce exactly
    studentised = residuals / np.sqrt(np.where(free, diag, 1.0))
    a = np.argmax(np.where(free, studentised, -np.inf), axis=1)
    b = np.argmin(np.where(free, studentised, np.inf), axis=1)
    rows = np.arange(len(scores))
    r_a, r_b = residuals[rows, a], residuals[rows, b]
    m_aa, m_bb = diag[a], diag[b]
    m_ab = np.where(a == b, m_aa, -np.einsum("ij,ij->i", basis[a], basis[b]))
    # (Pseudo-)inverse of M_JJ, J = {a, b}. When the two residuals are perfectly correlated (a
    # design where swapping two options is all that separates two orderings), M_JJ has rank 1,
    # its pseudo-inverse is M_JJ / trace^2, and the refit loses 1 degree of freedom, not 2.
    det = m_aa * m_bb - m_ab**2
    singular = det <= 1e-9 * m_aa * m_bb
    trace_sq = (m_aa + m_bb) ** 2
    safe_det = np.where(singular, 1.0, det)
    p_aa = np.where(singular, m_aa / trace_sq, m_bb / safe_det)
    p_bb = np.where(singular, m_bb / trace_sq, m_aa / safe_det)
    p_ab = np.where(singular, m_ab / trace_sq, -m_ab / safe_det)
    df_rest = design.residual_df - np.where(singular, 1, 2)

    pred_a = p_aa * r_a + p_ab * r_b  # prediction residuals of a and b from the refit
    pred_b = p_ab * r_a + p_bb * r_b
    rss_rest = np.maximum(rss - (r_a * pred_a + r_b * pred_b), 0.0)
    scale = np.sqrt(rss_rest / df_rest)
    upper_num = pred_a / np.sqrt(p_aa)
    lower_num = -pred_b / np.sqrt(p_bb)
    tiny = scale <= 1e-12 * np.sqrt(rss / design.residual_df)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = np.where(tiny, np.copysign(np.inf, upper_num), upper_num / scale)
        lower = np.where(tiny, np.copysign(np.inf, lower_num), lower_num / scale)
    return upper, lower, a, exact


def _grubbs(
    scores: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    mean = scores.mean(axis=1)
    sd = scores.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (scores.max(axis=1) - mean) / sd
        lower = (mean - scores.min(axis=1)) / sd
    return upper, lower, np.argmax(scores, axis=1), sd <= 0.0


def _gap_ratio(
    scores: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    ordered = np.sort(scores, axis=1)
    spread = ordered[:, -1] - ordered[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (ordered[:, -1] - ordered[:, -2]) / spread
        lower = (ordered[:, 1] - ordered[:, 0]) / spread
    return upper, lower, np.argmax(scores, axis=1), spread <= 0.0


def _statistics(
    scores: NDArray[np.float64], design: _Design
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    if design.statistic == "gap":
        return _gap_ratio(scores)
    if design.statistic == "grubbs":
        return _grubbs(scores)
    return _deleted_pair(scores, design)


# ---------------------------------------------------------------------------------------------
# Nulls.
# ---------------------------------------------------------------------------------------------


def _gaussian_table(design: _Design, n_null: int, rng: np.random.Generator | int) -> NDArray[np.float64]:
    """Sorted ``T+`` of ``n_null`` items with i.i.d. standard normal scores on ``design``."""
    seed = None if isinstance(rng, np.random.Generator) else int(rng)
    key = (design.null_key, design.statistic, n_null, seed)
    if seed is not None and key in _NULL_TABLES:
        return _NULL_TABLES[key]
    generator = np.random.default_rng(rng)
    n = design.residual_diag.shape[0]
    rows = max(1, _CHUNK_VALUES // n)
    parts = []
    for start in range(0, n_null, rows):
        draws = generator.standard_normal((min(rows, n_null - start), n))
        parts.append(_statistics(draws, design)[0])
    table = np.sort(np.concatenate(parts))
    table.setflags(write=False)
    if seed is not None:
        _remember(_NULL_TABLES, key, table)
    return table


def _upper_tail_pvalues(
    statistic: NDArray[np.float64], null_sorted: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``(1 + #{null >= t}) / (N + 1)``: the Monte Carlo p-value, never 0."""
    count = null_sorted.size - np.searchsorted(null_sorted, statistic, side="left")
    return np.asarray((1.0 + count) / (null_sorted.size + 1.0), dtype=np.float64)


def _mirror_pvalues(upper: NDArray[np.float64], lower: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(1 + #{l != i: T-_l >= T+_i}) / m`` over the ``m`` items given."""
    m = upper.size
    ordered = np.sort(lower)
    count = m - np.searchsorted(ordered, upper, side="left") - (lower >= upper)
    return (1.0 + count) / m


def _pool_groups(model: NDArray[Any], n_orderings: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Valid items that share a fitted model and a number of orderings (one law of ``T+`` each)."""
    valid = model != ""
    keys = sorted({(str(name), int(n)) for name, n in zip(model[valid], n_orderings[valid], strict=True)})
    return [np.flatnonzero(valid & (model == name) & (n_orderings == n)) for name, n in keys]


def _pooled_pvalues(
    upper: NDArray[np.float64],
    lower: NDArray[np.float64],
    groups: list[NDArray[np.int64]],
    gaussian: Callable[[NDArray[np.int64]], tuple[NDArray[np.float64], int]],
    null: Literal["auto", "mirror"],
    reasons: list[str],
) -> tuple[NDArray[np.float64], Literal["mirror", "gaussian", "mirror+gaussian"], int]:
    """Mirror-null p-values within each pool group (T+ laws differ across models and ``n``).

    ``null="auto"`` uses the mirror null in groups of at least ``MIN_MIRROR_ITEMS`` items and
    ``gaussian`` (a callable ``members -> p-values``) in the others; ``"mirror"`` uses it in
    every group (a group of one item gets NaN and a reason). Returns the p-values, the null(s)
    used, and the smallest null sample behind a p-value (the conservative size for intervals).
    """
    pvalue = np.full(upper.size, np.nan)
    used: set[str] = set()
    sizes: list[int] = []
    for members in groups:
        if null == "auto" and members.size < MIN_MIRROR_ITEMS:
            pvalue[members], size = gaussian(members)
            used.add("gaussian")
        elif members.size == 1:
            reasons[members[0]] = REASON_TOO_FEW_ITEMS
            continue
        else:
            pvalue[members] = _mirror_pvalues(upper[members], lower[members])
            size = members.size - 1
            used.add("mirror")
        sizes.append(size)
    if not used:  # no valid item: what the null would have been
        used.add("gaussian" if null == "auto" else "mirror")
    resolved = "mirror+gaussian" if len(used) == 2 else used.pop()
    return pvalue, resolved, min(sizes, default=0)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def _check_perms(perms: NDArray[np.int64], n: int) -> None:
    if perms.shape[-2] != n:
        raise ValueError(f"perms has {perms.shape[-2]} orderings but scores have {n}")
    k = perms.shape[-1]
    if not np.array_equal(np.sort(perms, axis=-1), np.broadcast_to(np.arange(k), perms.shape)):
        raise ValueError("every row of perms must be a permutation of 0..k-1")


def scenario_b_pvalues(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    method: Method = DEFAULT_METHOD,
    null: Null = "auto",
    reference: ArrayLike | None = None,
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> ScenarioBResult:
    """Scenario-b p-values for many items with the same number of orderings.

    Formula, assumptions and nulls: see the module docstring. Source: the scenario-b question of
    Ni et al. (arXiv 2409.01790, Algorithm 2), with the IsolationForest threshold replaced by a
    calibrated test (issue 3, item 4).

    Args:
        scores: ``(m, n)`` summed log-likelihoods; ``scores[i, j]`` is item ``i`` in ordering
            ``j``; ordering 0 is the original.
        perms: ``(n, k)`` orderings shared by all items, or ``(m, n, k)`` per item;
            ``perms[..., j, p]`` is the original option shown at position ``p`` in ordering ``j``.
        method: ``"studentised_max"`` (default, :data:`DEFAULT_METHOD`), ``"additive_residual"``
            or ``"gap_ratio"``.
        null: ``"mirror"``, ``"gaussian"``, ``"reference"``, or ``"auto"``: per model, mirror
            when at least ``MIN_MIRROR_ITEMS`` valid items share it, else Gaussian.
        reference: ``T+`` values of unseen control items (the ``statistic`` of their result,
            same method and orderings); required for, and only used by, ``null="reference"``.
        n_null: Monte Carlo table size for the Gaussian null (one table per design, cached when
            ``rng`` is a seed).
        rng: Seed or generator for the Gaussian table; nothing else is random.

    Returns:
        A :class:`ScenarioBResult`. Items get a NaN p-value with a reason, never an error, when
        they have fewer than 3 orderings, a non-finite score, all scores equal, scores the model
        fits exactly, or (mirror null) no other valid item to compare with.

    Raises:
        ValueError: On malformed shapes or orderings, an unknown method or null, or
            ``null="reference"`` without a non-empty finite reference.
    """
    values = np.asarray(scores, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"scores must be 2-D (items, orderings), got shape {values.shape}")
    orderings = np.asarray(perms)
    if orderings.ndim not in (2, 3) or (orderings.ndim == 3 and len(orderings) != len(values)):
        raise ValueError(f"perms must be (n, k) or (items, n, k), got shape {orderings.shape}")
    orderings = orderings.astype(np.int64, copy=False)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if null not in ("auto", "mirror", "gaussian", "reference"):
        raise ValueError(f"unknown null {null!r}")
    ref: NDArray[np.float64] | None = None
    if null == "reference":
        if reference is None:
            raise ValueError('null="reference" needs the reference statistics')
        ref = np.sort(np.asarray(reference, dtype=float).ravel())
        if ref.size == 0 or np.isnan(ref).any():
            raise ValueError("reference must be a non-empty array without NaN")

    m, n = values.shape
    if n < 3:
        return ScenarioBResult(
            pvalue=np.full(m, np.nan),
            statistic=np.full(m, np.nan),
            decoy=np.full(m, np.nan),
            outlier_ordering=np.full(m, -1, dtype=np.int64),
            reason=(REASON_TOO_FEW,) * m,
            model=("",) * m,
            method=method,
            null="gaussian" if null == "auto" else null,
            n_reference=0,
        )
    _check_perms(orderings, n)

    reasons = _screen(values)
    upper = np.full(m, np.nan)
    lower = np.full(m, np.nan)
    standout = np.full(m, -1, dtype=np.int64)
    models = [""] * m
    fitted: list[tuple[_Design, NDArray[np.int64]]] = []
    for group_perms, members in _design_groups(orderings, np.array([not r for r in reasons])):
        design = _design(group_perms, method)
        up, low, idx, exact = _statistics(values[members], design)
        for i in members[exact]:
            reasons[i] = REASON_EXACT_FIT
        kept = members[~exact]
        upper[kept], lower[kept], standout[kept] = up[~exact], low[~exact], idx[~exact]
        for i in kept:
            models[i] = design.model
        fitted.append((design, kept))
    model_of = np.array(models)
    design_of = np.full(m, -1, dtype=np.int64)  # index into ``fitted``
    for index, (_, members) in enumerate(fitted):
        design_of[members] = index

    def gaussian(members: NDArray[np.int64]) -> tuple[NDArray[np.float64], int]:
        out = np.full(members.size, np.nan)
        for key in np.unique(design_of[members]):
            chosen = design_of[members] == key
            out[chosen] = _upper_tail_pvalues(upper[members[chosen]], _gaussian_table(fitted[key][0], n_null, rng))
        return out, n_null

    pvalue = np.full(m, np.nan)
    resolved: Literal["mirror", "gaussian", "reference", "mirror+gaussian"]
    if null == "reference":
        assert ref is not None
        valid = model_of != ""
        pvalue[valid] = _upper_tail_pvalues(upper[valid], ref)
        resolved, n_reference = "reference", ref.size
    elif null == "gaussian":
        valid = np.flatnonzero(model_of != "")
        if valid.size:
            pvalue[valid], _ = gaussian(valid)
        resolved, n_reference = "gaussian", n_null
    else:
        groups = _pool_groups(model_of, np.full(m, n, dtype=np.int64))
        pvalue, resolved, n_reference = _pooled_pvalues(upper, lower, groups, gaussian, null, reasons)
    return ScenarioBResult(
        pvalue=pvalue,
        statistic=upper,
        decoy=lower,
        outlier_ordering=standout,
        reason=tuple(reasons),
        model=tuple(models),
        method=method,
        null=resolved,
        n_reference=n_reference,
    )


def combine_item_statistics(
    statistic: ArrayLike,
    decoy: ArrayLike,
    model: Sequence[str],
    gaussian_pvalue: ArrayLike,
    *,
    null: Literal["auto", "mirror", "gaussian"] = "auto",
    method: Method = DEFAULT_METHOD,
    n_null: int = DEFAULT_N_NULL,
    n_orderings: ArrayLike | None = None,
) -> ScenarioBResult:
    """Dataset-level p-values from per-item results computed one item at a time.

    lm-eval scores each item on its own (``process_results``) and only sees all items at
    aggregation. Each item's ``T+``, ``T-``, fitted model and Gaussian-null p-value (from
    :func:`scenario_b_pvalue`-style single-item calls) are enough to apply the mirror null
    afterwards: the same p-values :func:`scenario_b_pvalues` gives for the whole batch at once.

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
    resolved: Literal["mirror", "gaussian", "mirror+gaussian"]
    if null == "gaussian":
        pvalue = np.where(model_of != "", gaussian_of, np.nan)
        resolved, n_reference = "gaussian", n_null
    else:
        pvalue, resolved, n_reference = _pooled_pvalues(
            upper, lower, _pool_groups(model_of, counts), lambda members: (gaussian_of[members], n_null),
            null, reasons,
        )
    return ScenarioBResult(
        pvalue=pvalue,
        statistic=upper,
        decoy=lower,
        outlier_ordering=np.full(upper.size, -1, dtype=np.int64),
        reason=tuple(reasons),
        model=tuple(str(name) for name in model_of),
        method=method,
        null=resolved,
        n_reference=n_reference,
    )


def _screen(values: NDArray[np.float64]) -> list[str]:
    """Per item: ``""`` when usable, else why not (non-finite score, all scores equal)."""
    finite = np.all(np.isfinite(values), axis=1)
    safe = np.where(finite[:, None], values, 0.0)
    magnitude = np.maximum(np.max(np.abs(safe), axis=1), 1.0)
    equal = finite & (np.ptp(safe, axis=1) <= 1e-12 * magnitude)
    return [
        REASON_NON_FINITE if not ok else (REASON_ALL_EQUAL if same else "")
        for ok, same in zip(finite, equal, strict=True)
    ]


def _design_groups(
    orderings: NDArray[np.int64], usable: NDArray[np.bool_]
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Usable items grouped by the orderings they were shown: ``[(perms, item indices), ...]``."""
    if orderings.ndim == 2:
        members = np.flatnonzero(usable)
        return [(orderings, members)] if members.size else []
    _, first, inverse = np.unique(
        orderings.reshape(len(orderings), -1), axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.ravel()
    groups = [(orderings[i], np.flatnonzero(usable & (inverse == g))) for g, i in enumerate(first)]
    return [(perms, members) for perms, members in groups if members.size]


def scenario_b_pvalue(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    method: Method = DEFAULT_METHOD,
    null: Literal["gaussian", "reference"] = "gaussian",
    reference: ArrayLike | None = None,
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> float:
    """Scenario-b p-value of one item: does its standout ordering stand out more than chance?

    One item cannot estimate its own error law, so the null is the Gaussian Monte Carlo table
    (exact for Gaussian errors, optimistic for heavy tails) or a caller-supplied reference. For a
    dataset prefer :func:`scenario_b_pvalues`, whose default mirror null holds for any symmetric
    error law. Formula: see the module docstring.

    Args:
        scores: ``(n,)`` summed log-likelihoods, ordering 0 = original.
        perms: ``(n, k)`` orderings, ``perms[j, p]`` = original option at position ``p``.
        method: See :func:`scenario_b_pvalues`.
        null: ``"gaussian"`` or ``"reference"``.
        reference: See :func:`scenario_b_pvalues`.
        n_null: See :func:`scenario_b_pvalues`.
        rng: See :func:`scenario_b_pvalues`.

    Returns:
        The p-value in (0, 1], or NaN for fewer than 3 orderings, a non-finite score, all scores
        equal, or scores the model fits exactly (``scenario_b_pvalues(...).reason`` says which).
    """
    values = np.asarray(scores, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"scores must be 1-D for one item, got shape {values.shape}")
    if null not in ("gaussian", "reference"):
        raise ValueError('a single item needs null="gaussian" or null="reference"')
    result = scenario_b_pvalues(
        values[None, :],
        perms,
        method=method,
        null=null,
        reference=reference,
        n_null=n_null,
        rng=rng,
    )
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

    Args:
        result: Output of :func:`scenario_b_pvalues`.
        alpha: Nominal level of the per-item test, in (0, 1).
        confidence: Interval level, in (0, 1).

    Returns:
        A :class:`ScenarioBSummary`.

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
    excess_low = excess - math.hypot(flagged - low, null_high - alpha)
    excess_high = excess + math.hypot(high - flagged, alpha - null_low)
    se = math.sqrt(alpha * (1.0 - alpha) * (1.0 / n_valid + 1.0 / n_ref))
    return ScenarioBSummary(
        n_items=len(pvalues),
        n_valid=n_valid,
        n_excluded=len(pvalues) - n_valid,
        n_flagged=n_flagged,
        alpha=alpha,
        confidence=confidence,
        flagged_fraction=flagged,
        flagged_low=low,
        flagged_high=high,
        excess=excess,
        excess_low=excess_low,
        excess_high=excess_high,
        pvalue=float(stats.norm.sf(excess / se)),
        null=result.null,
    )
