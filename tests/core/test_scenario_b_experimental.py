"""Tests for the experimental scenario-b statistics (``core.scenario_b_experimental``).

Figures measured when the tests were written (alpha = 0.05, 20,000 items, k = 4, 24 orderings):

* additive residual, mirror null: false-positive rate 0.051 (i.i.d. normal), 0.049 (i.i.d. t(3)),
  0.050 (additive position effects, tau = 2, + normal), 0.049 (+ t(3)); Gaussian null: 0.051,
  0.155, 0.050, 0.154;
* power against one ordering bumped by delta noise sd in 5% of items (the additive residual's
  case), normal noise: delta = 3: 0.17, delta = 5: 0.54, delta = 8: 0.97 (additive residual);
* power against a memorised order (each trained option gains 3 noise sd in its own slot, 10% of
  items): studentised max 0.67, additive residual 0.05 (blind to it by construction).
  ``python scripts/bench_calibrated.py --candidates`` prints the simulated tables.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from numpy.typing import NDArray
from support.simulation import (
    N_ITEMS,
    N_ORDERINGS,
    NULLS,
    PERMS,
    K,
    check_gaussian_null,
    check_mirror_null,
    null_scores,
    position_effects,
)

from lm_eval_leakage.core.scenario_b import (
    DEFAULT_METHOD,
    REASON_ALL_EQUAL,
    REASON_EXACT_FIT,
    REASON_NON_FINITE,
    summarise_scenario_b,
)
from lm_eval_leakage.core.scenario_b import scenario_b_pvalues as production_pvalues
from lm_eval_leakage.core.scenario_b_experimental import experimental_pvalues as scenario_b_pvalues

ALPHA = 0.05
ADDITIVE = "additive_residual"


def _design_matrix(perms: NDArray[np.int64]) -> NDArray[np.float64]:
    n, k = perms.shape
    indicators = (perms[:, :, None] == np.arange(k)).reshape(n, k * k)
    return np.column_stack([np.ones(n), indicators]).astype(float)


@pytest.mark.parametrize(
    ("kind", "seed", "method"),
    [(kind, 100 + i, ADDITIVE) for i, kind in enumerate(NULLS)],
)
def test_mirror_null_is_calibrated_for_the_additive_residual(kind: str, seed: int, method: str) -> None:
    result = scenario_b_pvalues(null_scores(kind, seed), PERMS, method=method)  # type: ignore[arg-type]
    assert result.null == "mirror" and result.method == method
    assert set(result.model) == ({"additive"} if method == ADDITIVE else {"intercept"})
    check_mirror_null(result, ALPHA)


@pytest.mark.parametrize(
    ("kind", "seed", "method"), [("additive_normal", 201, ADDITIVE)]
)
def test_gaussian_null_is_exact_for_gaussian_errors(kind: str, seed: int, method: str) -> None:
    check_gaussian_null(functools.partial(scenario_b_pvalues, method=method), kind, seed, ALPHA)


@pytest.mark.parametrize("method", ["gap_ratio"])
def test_raw_score_methods_are_calibrated_under_iid_mirror(method: str) -> None:
    result = scenario_b_pvalues(null_scores("iid_t3", 203, m=10_000), PERMS, method=method)
    assert abs(np.mean(result.pvalue < ALPHA) - ALPHA) < 0.01


@pytest.mark.parametrize(("where", "seed"), [("original", 300), ("random", 301)])
def test_planted_single_bump_is_detected_by_the_additive_residual(where: str, seed: int) -> None:
    """One ordering bumped by 6 noise sd on top of position effects: the additive residual's case."""
    rng = np.random.default_rng(seed)
    m, delta, share = N_ITEMS, 6.0, 0.1
    scores = position_effects(rng, m, tau=1.0) + rng.standard_normal((m, N_ORDERINGS))
    leaked = rng.random(m) < share
    rows = np.zeros(m, dtype=int) if where == "original" else rng.integers(0, N_ORDERINGS, m)
    scores[leaked, rows[leaked]] += delta
    result = scenario_b_pvalues(scores, PERMS, method=ADDITIVE)
    flagged = result.pvalue < ALPHA
    power = flagged[leaked].mean()
    assert power > 0.65, power  # measured 0.75-0.77
    assert abs(flagged[~leaked].mean() - ALPHA) < 0.015
    hits = flagged & leaked
    assert np.mean(result.outlier_ordering[hits] == rows[hits]) > 0.99


def test_statistic_matches_explicit_refit() -> None:
    """Closed-form deleted-pair statistic against a direct least-squares refit without a, b."""
    rng = np.random.default_rng(400)
    scores = position_effects(rng, 5, 1.0) + rng.standard_normal((5, N_ORDERINGS))
    result = scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian")
    x = _design_matrix(PERMS)
    hat = x @ np.linalg.pinv(x)
    for item, y in enumerate(scores):
        residual = y - hat @ y
        studentised = residual / np.sqrt(1.0 - np.diag(hat))
        a, b = int(np.argmax(studentised)), int(np.argmin(studentised))
        keep = np.setdiff1d(np.arange(N_ORDERINGS), [a, b])
        coef, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
        rest = y[keep] - x[keep] @ coef
        df = len(keep) - np.linalg.matrix_rank(x[keep])
        scale = math.sqrt(rest @ rest / df)
        gram = np.linalg.pinv(x[keep].T @ x[keep])
        upper = (y[a] - x[a] @ coef) / (scale * math.sqrt(1.0 + x[a] @ gram @ x[a]))
        lower = (x[b] @ coef - y[b]) / (scale * math.sqrt(1.0 + x[b] @ gram @ x[b]))
        assert result.statistic[item] == pytest.approx(upper, rel=1e-9)
        assert result.decoy[item] == pytest.approx(lower, rel=1e-9)
        assert result.outlier_ordering[item] == a


def test_statistic_ignoresposition_effects() -> None:
    rng = np.random.default_rng(401)
    noise = rng.standard_normal((50, N_ORDERINGS))
    shifted = noise + position_effects(rng, 50, tau=25.0)
    base = scenario_b_pvalues(noise, PERMS, method=ADDITIVE, null="gaussian")
    moved = scenario_b_pvalues(shifted, PERMS, method=ADDITIVE, null="gaussian")
    np.testing.assert_allclose(moved.statistic, base.statistic, rtol=1e-7)
    np.testing.assert_array_equal(moved.pvalue, base.pvalue)


def test_fallbacks_for_few_sampled_orderings() -> None:
    rng = np.random.default_rng(407)
    sampled = PERMS[rng.choice(N_ORDERINGS, 12, replace=False)]  # 12 - 10 = 2 residual df
    result = scenario_b_pvalues(rng.standard_normal((30, 12)), sampled, method=ADDITIVE, null="gaussian")
    assert set(result.model) == {"intercept"} and np.all(np.isfinite(result.pvalue))
    three = scenario_b_pvalues(rng.standard_normal((30, 3)), PERMS[:3], method=ADDITIVE, null="gaussian")
    assert set(three.model) == {"gap"} and np.all(np.isfinite(three.pvalue))
    five_options = np.array(list(itertools.permutations(range(5))))[::5]  # 24 of 120
    wide = scenario_b_pvalues(rng.standard_normal((30, 24)), five_options, method=ADDITIVE, null="gaussian")
    assert set(wide.model) == {"additive"}


def test_summary_recovers_planted_rate_and_counts_exclusions() -> None:
    """Obvious leaks (30 sd) in 20% of items: excess = 0.2 * (1 - alpha) lies in the interval."""
    rng = np.random.default_rng(501)
    m, share = 5_000, 0.2
    scores = position_effects(rng, m, 1.0) + rng.standard_normal((m, N_ORDERINGS))
    leaked = rng.random(m) < share
    scores[leaked, 0] += 30.0
    scores[:7] = 0.0  # excluded: all scores equal
    # The additive residual: its Gaussian table is exact under position effects + normal noise.
    summary = summarise_scenario_b(scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian"))
    expected = leaked[7:].mean() * (1.0 - ALPHA)
    assert summary.excess_low < expected < summary.excess_high
    assert summary.n_excluded == 7 and summary.n_valid == m - 7
    assert summary.pvalue < 1e-12


def test_memorised_order_is_detected_by_the_default_not_the_additive_residual() -> None:
    """Memorisation as measured on real fine-tuned models (docs/validation.md): each option of the
    trained ordering gains in its own slot, whatever the other slots hold. That gain is an
    option-at-position effect, so the additive residual is blind to it (exactly: its statistic does
    not move), while the default statistic (slot agreement) finds the leaked items."""
    rng = np.random.default_rng(302)
    m, share, gain = N_ITEMS, 0.1, 3.0
    clean = position_effects(rng, m, tau=0.5) + rng.standard_normal((m, N_ORDERINGS))
    leaked = rng.random(m) < share
    trained = rng.integers(0, N_ORDERINGS, m)  # the ordering each leaked item was trained in
    in_own_slot = PERMS[None, :, :] == PERMS[trained][:, None, :]  # (m, orderings, slots)
    scores = clean + np.where(leaked[:, None], gain * in_own_slot.sum(axis=2), 0.0)

    additive_clean = scenario_b_pvalues(clean, PERMS, method=ADDITIVE, null="gaussian")
    additive_leaked = scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian")
    np.testing.assert_allclose(additive_leaked.statistic, additive_clean.statistic, rtol=1e-7)

    default = production_pvalues(scores, PERMS)
    assert default.method == DEFAULT_METHOD and default.null == "mirror"
    flagged = default.pvalue < ALPHA
    assert flagged[leaked].mean() > 0.6, flagged[leaked].mean()
    assert flagged[~leaked].mean() < ALPHA + 0.01
    hits = flagged & leaked
    assert np.mean(default.outlier_ordering[hits] == trained[hits]) > 0.95


def test_reference_null_and_one_item_agree_with_batch() -> None:
    rng = np.random.default_rng(403)
    control = production_pvalues(rng.standard_normal((999, N_ORDERINGS)), PERMS, method="studentised_max", null="gaussian")
    scores = rng.standard_normal((3, N_ORDERINGS))
    batch = scenario_b_pvalues(scores, PERMS, method="studentised_max", null="reference", reference=control.statistic)
    expected = [(1 + np.sum(control.statistic >= t)) / 1000 for t in batch.statistic]
    np.testing.assert_allclose(batch.pvalue, expected)
    single = scenario_b_pvalues(scores[:1], PERMS, method="studentised_max", null="reference",
                                reference=control.statistic).pvalue[0]
    assert single == batch.pvalue[0]


def test_edge_cases_give_nan_with_reason_including_an_exact_fit() -> None:
    rng = np.random.default_rng(406)
    exact = _design_matrix(PERMS) @ rng.standard_normal(1 + K * K)
    scores = np.vstack(
        [
            rng.standard_normal(N_ORDERINGS),
            np.full(N_ORDERINGS, -12.5),
            np.r_[np.nan, rng.standard_normal(N_ORDERINGS - 1)],
            np.r_[-np.inf, rng.standard_normal(N_ORDERINGS - 1)],
            exact,
        ]
    )
    result = scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian")
    assert np.isfinite(result.pvalue[0]) and result.reason[0] == ""
    assert result.reason[1:] == (REASON_ALL_EQUAL, REASON_NON_FINITE, REASON_NON_FINITE, REASON_EXACT_FIT)
    assert np.all(np.isnan(result.pvalue[1:])) and np.all(np.isnan(result.statistic[1:]))
    assert np.all(result.outlier_ordering[1:] == -1)


def test_bad_input_raises() -> None:
    scores = np.zeros((2, N_ORDERINGS))
    with pytest.raises(ValueError, match="reference"):
        scenario_b_pvalues(scores, PERMS, null="reference")
    with pytest.raises(ValueError, match="method"):
        scenario_b_pvalues(scores, PERMS, method="isolation_forest")  # type: ignore[arg-type]
