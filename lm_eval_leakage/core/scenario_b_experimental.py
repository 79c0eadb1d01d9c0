"""Experimental scenario-b statistics, kept to reproduce the figures that chose the default.

Not used by the pipeline. :func:`experimental_pvalues` runs the scenario-b test of
:mod:`scenario_b` with one of:

* ``"additive_residual"``: fits the additive option-at-position model to the item's scores, and
  studentises the largest and smallest residuals after refitting without both (the deleted-pair
  statistic). Most powerful against a single bumped ordering, but blind to memorisation, which
  raises each option in its own slot (docs/method.md, section 6.4). With too few orderings to
  identify the model it falls back to an intercept-only model, and with 3 orderings to the gap
  ratio (the model used is recorded per item).
* ``"gap_ratio"``: ``(max - second) / (max - min)``, mirrored by ``(second lowest - min) /
  (max - min)``.
* ``"studentised_max"``: the default statistic, as in :func:`scenario_b.scenario_b_pvalues`.

and, besides the mirror and Gaussian nulls, ``null="reference"``: the ``T+`` values of a control
set scored with the same statistic and orderings. ``scripts/bench_calibrated.py --candidates``
prints their simulated false-positive rates and power. Formulas: docs/method.md, section 6.5.

Pure module: numpy only.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lm_eval_leakage.core.scenario_b import (
    DEFAULT_N_NULL,
    DEFAULT_SEED,
    ScenarioBResult,
    apply_null,
    check_inputs,
    fitted_result,
    too_few_orderings,
)
from lm_eval_leakage.core.scenario_b_statistics import (
    Design,
    Statistics,
    check_perms,
    fit_items,
    intercept_design,
    remember,
    studentised_max_design,
    upper_tail_pvalues,
)

Method = Literal["additive_residual", "studentised_max", "gap_ratio"]
METHODS: Final[tuple[Method, ...]] = ("additive_residual", "studentised_max", "gap_ratio")
MIN_RESIDUAL_DF: Final[int] = 5
"""Residual degrees of freedom the additive fit needs (3 are left after deleting the extreme pair)."""

_EXACT_FIT_RTOL: Final[float] = 1e-18  # residual SS below this fraction of the total SS is zero
_LEVERAGE_ATOL: Final[float] = 1e-10  # an ordering with 1 - h_jj below this is fitted exactly
_DESIGNS: dict[tuple[bytes, tuple[int, ...], str], Design] = {}


def deleted_pair(scores: NDArray[np.float64], design: Design) -> Statistics:
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


def gap_ratio(scores: NDArray[np.float64], design: Design) -> Statistics:
    """``(max - second) / (max - min)`` and its mirror ``(second lowest - min) / (max - min)``."""
    ordered = np.sort(scores, axis=1)
    spread = ordered[:, -1] - ordered[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (ordered[:, -1] - ordered[:, -2]) / spread
        lower = (ordered[:, 1] - ordered[:, 0]) / spread
    return upper, lower, np.argmax(scores, axis=1), spread <= 0.0


def _orthonormal_basis(columns: NDArray[np.float64]) -> NDArray[np.float64]:
    left, singular, _ = np.linalg.svd(columns, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * max(columns.shape) * np.finfo(float).eps * 10))
    return left[:, :rank]


def _additive_design(perms: NDArray[np.int64]) -> Design:
    """The additive model's design, or the intercept-only fallback with too few residual df."""
    n, k = perms.shape
    indicators = (perms[:, :, None] == np.arange(k)).reshape(n, k * k).astype(float)
    basis = _orthonormal_basis(np.column_stack([np.ones(n), indicators]))
    if n - basis.shape[1] < MIN_RESIDUAL_DF:
        return intercept_design(n, "deleted_pair", deleted_pair)
    canonical = np.ascontiguousarray(perms[np.lexsort(perms.T[::-1])])
    return Design(
        model="additive",
        statistic="deleted_pair",
        basis=basis,
        residual_diag=1.0 - np.sum(basis**2, axis=1),
        residual_df=n - basis.shape[1],
        null_key=("additive", canonical.tobytes(), canonical.shape),
        compute=deleted_pair,
    )


def design_for(perms: NDArray[np.int64], method: Method) -> Design:
    """The (cached) design of ``method`` on the orderings ``perms``."""
    key = (perms.tobytes(), perms.shape, method)
    if key in _DESIGNS:
        return _DESIGNS[key]
    n = perms.shape[0]
    if method == "gap_ratio" or (method == "additive_residual" and n < 4):
        design = Design("gap", "gap", np.zeros((n, 0)), np.ones(n), n - 1, ("gap", n), gap_ratio)
    elif method == "studentised_max":
        design = studentised_max_design(perms)
    else:
        design = _additive_design(perms)
    remember(_DESIGNS, key, design)
    return design


def experimental_pvalues(
    scores: ArrayLike,
    perms: ArrayLike,
    *,
    method: Method = "additive_residual",
    null: Literal["auto", "mirror", "gaussian", "reference"] = "auto",
    reference: ArrayLike | None = None,
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | int = DEFAULT_SEED,
) -> ScenarioBResult:
    """Scenario-b p-values with an experimental statistic or the reference null.

    Arguments and result as :func:`scenario_b.scenario_b_pvalues`, plus ``method`` (one of
    :data:`METHODS`) and ``reference``: ``T+`` values of unseen control items (the ``statistic``
    of their result, same method and orderings), required for, and only used by,
    ``null="reference"``. The additive residual also gives NaN with a reason for scores the
    model fits exactly.

    Raises:
        ValueError: On malformed shapes or orderings, an unknown method or null, or
            ``null="reference"`` without a non-empty reference free of NaN.
    """
    values, orderings = check_inputs(scores, perms)
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
        return too_few_orderings(m, method, "gaussian" if null == "auto" else null)
    check_perms(orderings, n)
    fitted = fit_items(values, orderings, lambda group: design_for(group, method))
    if ref is None:
        pvalue, resolved, n_reference = apply_null(fitted, n, null, n_null, rng)  # type: ignore[arg-type]
        return fitted_result(fitted, pvalue, method, resolved, n_reference)
    pvalue = np.full(m, np.nan)
    valid = np.array(fitted.models) != ""
    pvalue[valid] = upper_tail_pvalues(fitted.upper[valid], ref)
    return fitted_result(fitted, pvalue, method, "reference", ref.size)
