"""Tests for the calibrated scenario-b detector (issue 3, item 4).

Simulations use fixed seeds and at least 10,000 items per null; everything is vectorised.
Figures measured when the tests were written (alpha = 0.05, 20,000 items, k = 4, 24 orderings):

* false-positive rate with the mirror null, default detector (studentised max): i.i.d. normal
  0.047, i.i.d. t(3) 0.051, additive position effects (tau = 2) + normal 0.052, + t(3) 0.047;
  with the Gaussian null instead: 0.048, 0.259, 0.014, 0.047 (calibrated only for i.i.d. normal);
* additive residual, mirror null: 0.051, 0.049, 0.050, 0.049; Gaussian null: 0.051, 0.155, 0.050,
  0.154;
* power against one ordering bumped by delta noise sd in 5% of items (the additive residual's
  case), normal noise: delta = 3: 0.17, delta = 5: 0.54, delta = 8: 0.97 (additive residual);
* power against a memorised order (each trained option gains 3 noise sd in its own slot, 10% of
  items): studentised max 0.67, additive residual 0.05 (blind to it by construction).
  ``python scripts/bench_calibrated.py --candidates`` prints the simulated tables.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from lm_eval_leakage.core.calibrated import (
    DEFAULT_METHOD,
    MIN_MIRROR_ITEMS,
    REASON_ALL_EQUAL,
    REASON_EXACT_FIT,
    REASON_NON_FINITE,
    REASON_TOO_FEW,
    REASON_TOO_FEW_ITEMS,
    scenario_b_pvalue,
    scenario_b_pvalues,
    summarise_scenario_b,
)

PERMS = np.array(list(itertools.permutations(range(4))), dtype=np.int64)  # row 0 = identity
N_ORDERINGS, K = PERMS.shape
N_ITEMS = 20_000
ALPHA = 0.05
ADDITIVE = "additive_residual"


def _design_matrix(perms: NDArray[np.int64]) -> NDArray[np.float64]:
    n, k = perms.shape
    indicators = (perms[:, :, None] == np.arange(k)).reshape(n, k * k)
    return np.column_stack([np.ones(n), indicators]).astype(float)


def _position_effects(rng: np.random.Generator, m: int, tau: float) -> NDArray[np.float64]:
    """sum_p beta[perms[j, p], p] with beta ~ N(0, tau^2) per item, plus a random level."""
    beta = rng.standard_normal((m, K, K)) * tau
    effects = sum(beta[:, PERMS[:, p], p] for p in range(K))
    return rng.normal(-60.0, 15.0, (m, 1)) + effects


def _null_scores(kind: str, seed: int, m: int = N_ITEMS) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    if kind == "iid_normal":
        return rng.standard_normal((m, N_ORDERINGS))
    if kind == "iid_t3":
        return rng.standard_t(3, (m, N_ORDERINGS))
    noise = (
        rng.standard_normal((m, N_ORDERINGS))
        if kind.endswith("normal")
        else (rng.standard_t(3, (m, N_ORDERINGS)))
    )
    return _position_effects(rng, m, tau=2.0) + noise


NULLS = ["iid_normal", "iid_t3", "additive_normal", "additive_t3"]


@pytest.mark.parametrize(
    ("kind", "seed", "method"),
    [(kind, 100 + i, method) for i, kind in enumerate(NULLS) for method in (DEFAULT_METHOD, ADDITIVE)],
)
def test_mirror_null_is_calibrated(kind: str, seed: int, method: str) -> None:
    result = scenario_b_pvalues(_null_scores(kind, seed), PERMS, method=method)  # type: ignore[arg-type]
    assert result.null == "mirror" and result.method == method
    assert set(result.model) == ({"additive"} if method == ADDITIVE else {"intercept"})
    fpr = float(np.mean(result.pvalue < ALPHA))
    assert abs(fpr - ALPHA) < 0.01, fpr
    # Uniform p-values <=> T+ and the decoys T- share one law. A one-sample KS test of the
    # p-values would be too strict: they share one decoy sample, which adds about 60% to the
    # variance of their empirical CDF (150 seeds: 15% of one-sample KS p-values < 0.01, while
    # the two-sample test below gave 0% < 0.01 and 5.3% < 0.05).
    assert stats.ks_2samp(result.statistic, result.decoy).pvalue > 0.01
    deciles = np.histogram(result.pvalue, bins=10, range=(0.0, 1.0))[0] / len(result.pvalue)
    assert np.all(np.abs(deciles - 0.1) < 0.01), deciles  # about 3.5 sd of a decile share


@pytest.mark.parametrize(
    ("kind", "seed", "method"), [("iid_normal", 200, DEFAULT_METHOD), ("additive_normal", 201, ADDITIVE)]
)
def test_gaussian_null_is_exact_for_gaussian_errors(kind: str, seed: int, method: str) -> None:
    result = scenario_b_pvalues(_null_scores(kind, seed), PERMS, method=method, null="gaussian", rng=7)  # type: ignore[arg-type]
    fpr = float(np.mean(result.pvalue < ALPHA))
    assert abs(fpr - ALPHA) < 0.01, fpr
    # The p-values share one Monte Carlo table: compare the statistics with a fresh Gaussian
    # sample of the same design instead of testing the p-values against U(0, 1).
    fresh = scenario_b_pvalues(_null_scores("iid_normal", seed + 50), PERMS, method=method, null="gaussian")  # type: ignore[arg-type]
    assert stats.ks_2samp(result.statistic, fresh.statistic).pvalue > 0.01
    assert stats.kstest(result.pvalue, "uniform").pvalue > 0.001


def test_gaussian_null_is_optimistic_for_heavy_tails() -> None:
    """Why the mirror null is the default: t(3) errors flag about 15% at alpha = 0.05."""
    result = scenario_b_pvalues(_null_scores("iid_t3", 202, m=10_000), PERMS, null="gaussian")
    assert np.mean(result.pvalue < ALPHA) > 0.10


@pytest.mark.parametrize("method", ["studentised_max", "gap_ratio"])
def test_raw_score_methods_are_calibrated_under_iid_mirror(method: str) -> None:
    result = scenario_b_pvalues(_null_scores("iid_t3", 203, m=10_000), PERMS, method=method)
    assert abs(np.mean(result.pvalue < ALPHA) - ALPHA) < 0.01


@pytest.mark.parametrize(("where", "seed"), [("original", 300), ("random", 301)])
def test_planted_single_bump_is_detected_by_the_additive_residual(where: str, seed: int) -> None:
    """One ordering bumped by 6 noise sd on top of position effects: the additive residual's case."""
    rng = np.random.default_rng(seed)
    m, delta, share = N_ITEMS, 6.0, 0.1
    scores = _position_effects(rng, m, tau=1.0) + rng.standard_normal((m, N_ORDERINGS))
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


def test_memorised_order_is_detected_by_the_default_not_the_additive_residual() -> None:
    """Memorisation as measured on real fine-tuned models (docs/validation.md): each option of the
    trained ordering gains in its own slot, whatever the other slots hold. That gain is an
    option-at-position effect, so the additive residual is blind to it (exactly: its statistic does
    not move), while the studentised maximum, the default, finds the leaked items."""
    rng = np.random.default_rng(302)
    m, share, gain = N_ITEMS, 0.1, 3.0
    clean = _position_effects(rng, m, tau=0.5) + rng.standard_normal((m, N_ORDERINGS))
    leaked = rng.random(m) < share
    trained = rng.integers(0, N_ORDERINGS, m)  # the ordering each leaked item was trained in
    in_own_slot = PERMS[None, :, :] == PERMS[trained][:, None, :]  # (m, orderings, slots)
    scores = clean + np.where(leaked[:, None], gain * in_own_slot.sum(axis=2), 0.0)

    additive_clean = scenario_b_pvalues(clean, PERMS, method=ADDITIVE, null="gaussian")
    additive_leaked = scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian")
    np.testing.assert_allclose(additive_leaked.statistic, additive_clean.statistic, rtol=1e-7)

    default = scenario_b_pvalues(scores, PERMS)
    assert default.method == DEFAULT_METHOD and default.null == "mirror"
    flagged = default.pvalue < ALPHA
    assert flagged[leaked].mean() > 0.6, flagged[leaked].mean()  # measured 0.674 (additive: 0.047)
    assert flagged[~leaked].mean() < ALPHA + 0.01
    hits = flagged & leaked
    assert np.mean(default.outlier_ordering[hits] == trained[hits]) > 0.95


def test_statistic_matches_explicit_refit() -> None:
    """Closed-form deleted-pair statistic against a direct least-squares refit without a, b."""
    rng = np.random.default_rng(400)
    scores = _position_effects(rng, 5, 1.0) + rng.standard_normal((5, N_ORDERINGS))
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


def test_statistic_ignores_position_effects() -> None:
    rng = np.random.default_rng(401)
    noise = rng.standard_normal((50, N_ORDERINGS))
    shifted = noise + _position_effects(rng, 50, tau=25.0)
    base = scenario_b_pvalues(noise, PERMS, method=ADDITIVE, null="gaussian")
    moved = scenario_b_pvalues(shifted, PERMS, method=ADDITIVE, null="gaussian")
    np.testing.assert_allclose(moved.statistic, base.statistic, rtol=1e-7)
    np.testing.assert_array_equal(moved.pvalue, base.pvalue)


def test_mirror_pvalue_matches_definition() -> None:
    rng = np.random.default_rng(402)
    result = scenario_b_pvalues(rng.standard_normal((40, N_ORDERINGS)), PERMS, null="mirror")
    up, low = result.statistic, result.decoy
    expected = [(1 + np.sum(np.delete(low, i) >= up[i])) / len(up) for i in range(len(up))]
    np.testing.assert_allclose(result.pvalue, expected)
    assert result.n_reference == 39


def test_reference_null_and_single_item_agree_with_batch() -> None:
    rng = np.random.default_rng(403)
    control = scenario_b_pvalues(rng.standard_normal((999, N_ORDERINGS)), PERMS, null="gaussian")
    scores = rng.standard_normal((3, N_ORDERINGS))
    batch = scenario_b_pvalues(scores, PERMS, null="reference", reference=control.statistic)
    expected = [(1 + np.sum(control.statistic >= t)) / 1000 for t in batch.statistic]
    np.testing.assert_allclose(batch.pvalue, expected)
    single = scenario_b_pvalue(scores[0], PERMS, null="reference", reference=control.statistic)
    assert single == batch.pvalue[0]
    gaussian = scenario_b_pvalues(scores, PERMS, null="gaussian", rng=11)
    assert scenario_b_pvalue(scores[1], PERMS, rng=11) == gaussian.pvalue[1]


def test_per_item_orderings_match_shared_orderings() -> None:
    """Row order of the orderings does not matter; per-item perms are grouped by design."""
    rng = np.random.default_rng(404)
    scores = rng.standard_normal((6, N_ORDERINGS))
    shared = scenario_b_pvalues(scores, PERMS, null="gaussian")
    order = np.stack([rng.permutation(N_ORDERINGS) for _ in range(6)])
    per_item = scenario_b_pvalues(np.take_along_axis(scores, order, axis=1), PERMS[order], null="gaussian")
    np.testing.assert_allclose(per_item.statistic, shared.statistic, rtol=1e-9)
    np.testing.assert_allclose(per_item.pvalue, shared.pvalue)


def test_seeded_and_generator_randomness() -> None:
    scores = np.random.default_rng(405).standard_normal((20, N_ORDERINGS))
    first = scenario_b_pvalues(scores, PERMS, null="gaussian", n_null=5_000, rng=3)
    again = scenario_b_pvalues(scores, PERMS, null="gaussian", n_null=5_000, rng=3)
    np.testing.assert_array_equal(first.pvalue, again.pvalue)
    generator = scenario_b_pvalues(scores, PERMS, null="gaussian", n_null=5_000, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(generator.pvalue, first.pvalue)


def test_edge_cases_give_nan_with_reason() -> None:
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
    assert math.isnan(scenario_b_pvalue(np.full(N_ORDERINGS, 3.0), PERMS))

    two = scenario_b_pvalues(rng.standard_normal((4, 2)), PERMS[:2, :2])
    assert np.all(np.isnan(two.pvalue)) and set(two.reason) == {REASON_TOO_FEW}
    assert math.isnan(scenario_b_pvalue([1.0, 2.0], [[0, 1], [1, 0]]))

    lonely = scenario_b_pvalues(scores[:2], PERMS, null="mirror")
    assert lonely.reason[0] == REASON_TOO_FEW_ITEMS and math.isnan(lonely.pvalue[0])


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


def test_auto_null_uses_gaussian_for_small_batches() -> None:
    rng = np.random.default_rng(408)
    small = scenario_b_pvalues(rng.standard_normal((MIN_MIRROR_ITEMS - 1, N_ORDERINGS)), PERMS)
    assert small.null == "gaussian"
    large = scenario_b_pvalues(rng.standard_normal((MIN_MIRROR_ITEMS, N_ORDERINGS)), PERMS)
    assert large.null == "mirror"
    nothing_valid = np.zeros((MIN_MIRROR_ITEMS, N_ORDERINGS))  # all scores equal: no pool at all
    assert scenario_b_pvalues(nothing_valid, PERMS).null == "gaussian"
    assert scenario_b_pvalues(nothing_valid, PERMS, null="mirror").null == "mirror"


def test_bad_input_raises() -> None:
    scores = np.zeros((2, N_ORDERINGS))
    with pytest.raises(ValueError, match="permutation"):
        scenario_b_pvalues(scores, np.zeros((N_ORDERINGS, K), dtype=int))
    with pytest.raises(ValueError, match="orderings"):
        scenario_b_pvalues(scores, PERMS[:10])
    with pytest.raises(ValueError, match="reference"):
        scenario_b_pvalues(scores, PERMS, null="reference")
    with pytest.raises(ValueError, match="method"):
        scenario_b_pvalues(scores, PERMS, method="isolation_forest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="single item"):
        scenario_b_pvalue(scores[0], PERMS, null="mirror")  # type: ignore[arg-type]


def test_summary_wilson_interval_matches_scipy() -> None:
    rng = np.random.default_rng(500)
    result = scenario_b_pvalues(rng.standard_normal((2_000, N_ORDERINGS)), PERMS, null="gaussian")
    summary = summarise_scenario_b(result, alpha=ALPHA)
    reference = stats.binomtest(summary.n_flagged, summary.n_valid).proportion_ci(
        confidence_level=0.95, method="wilson"
    )
    assert summary.flagged_low == pytest.approx(reference.low, rel=1e-9)
    assert summary.flagged_high == pytest.approx(reference.high, rel=1e-9)
    assert summary.excess_low < 0.0 < summary.excess_high
    assert summary.excess_low <= summary.flagged_low - ALPHA
    assert summary.n_excluded == 0 and summary.null == "gaussian"


def test_summary_recovers_planted_rate_and_counts_exclusions() -> None:
    """Obvious leaks (30 sd) in 20% of items: excess = 0.2 * (1 - alpha) lies in the interval."""
    rng = np.random.default_rng(501)
    m, share = 5_000, 0.2
    scores = _position_effects(rng, m, 1.0) + rng.standard_normal((m, N_ORDERINGS))
    leaked = rng.random(m) < share
    scores[leaked, 0] += 30.0
    scores[:7] = 0.0  # excluded: all scores equal
    # The additive residual: its Gaussian table is exact under position effects + normal noise.
    summary = summarise_scenario_b(scenario_b_pvalues(scores, PERMS, method=ADDITIVE, null="gaussian"))
    expected = leaked[7:].mean() * (1.0 - ALPHA)
    assert summary.excess_low < expected < summary.excess_high
    assert summary.n_excluded == 7 and summary.n_valid == m - 7
    assert summary.pvalue < 1e-12


def test_summary_rejects_empty_dataset() -> None:
    result = scenario_b_pvalues(np.zeros((3, N_ORDERINGS)), PERMS)
    with pytest.raises(ValueError, match="no item"):
        summarise_scenario_b(result)


def test_combining_single_item_results_matches_the_batch() -> None:
    """lm-eval computes items one at a time; combining them must give the batch p-values."""
    from lm_eval_leakage.core.calibrated import combine_item_statistics, scenario_b_pvalues
    from lm_eval_leakage.core.orderings import build_orderings

    perms = np.array(build_orderings(list("abcd")).perms)
    scores = np.random.default_rng(11).standard_t(3, size=(250, 24))
    batch = scenario_b_pvalues(scores, perms, null="mirror")
    singles = [scenario_b_pvalues(s[None, :], perms, null="gaussian") for s in scores]
    combined = combine_item_statistics(
        [r.statistic[0] for r in singles], [r.decoy[0] for r in singles], [r.model[0] for r in singles],
        [r.pvalue[0] for r in singles],
    )
    assert combined.null == "mirror" and combined.n_reference == batch.n_reference
    np.testing.assert_allclose(combined.pvalue, batch.pvalue, rtol=0, atol=1e-12)
    few = combine_item_statistics(
        [r.statistic[0] for r in singles[:20]], [r.decoy[0] for r in singles[:20]],
        [r.model[0] for r in singles[:20]], [r.pvalue[0] for r in singles[:20]],
    )
    assert few.null == "gaussian"
    np.testing.assert_allclose(few.pvalue, [r.pvalue[0] for r in singles[:20]])


def test_mirror_null_pools_items_by_number_of_orderings() -> None:
    """CMB mixes 24- and 120-ordering items: each item's decoys must come from its own count.

    Measured (i.i.d. normal scores, 2,000 items per count, four seeds): pooled by count, both
    groups flag 4-6%; pooled together, the 24-ordering items 0.4-0.7% and the 120-ordering items
    7-10% (a max over more orderings is larger, so it beats the other group's decoys).
    """
    from lm_eval_leakage.core.calibrated import combine_item_statistics

    perms5 = np.array(list(itertools.permutations(range(5))), dtype=np.int64)
    rng = np.random.default_rng(21)
    m = 2000
    parts = [scenario_b_pvalues(rng.standard_normal((m, N_ORDERINGS)), PERMS, null="gaussian"),
             scenario_b_pvalues(rng.standard_normal((m, 120)), perms5, null="gaussian")]
    columns = [np.concatenate([getattr(r, name) for r in parts]) for name in ("statistic", "decoy", "pvalue")]
    models = [name for r in parts for name in r.model]
    combined = combine_item_statistics(columns[0], columns[1], models, columns[2],
                                       n_orderings=[N_ORDERINGS] * m + [120] * m)
    assert combined.null == "mirror" and combined.n_reference == m - 1
    for part, members in zip(parts, (slice(0, m), slice(m, None)), strict=True):
        alone = combine_item_statistics(part.statistic, part.decoy, part.model, part.pvalue)
        np.testing.assert_allclose(combined.pvalue[members], alone.pvalue, rtol=0, atol=1e-12)
        assert abs(np.mean(combined.pvalue[members] < ALPHA) - ALPHA) < 0.015
    pooled = combine_item_statistics(columns[0], columns[1], models, columns[2])
    assert np.mean(pooled.pvalue[:m] < ALPHA) < 0.02 and np.mean(pooled.pvalue[m:] < ALPHA) > 0.065


def test_auto_null_falls_back_to_gaussian_per_small_pool() -> None:
    from lm_eval_leakage.core.calibrated import combine_item_statistics

    rng = np.random.default_rng(22)
    scores = rng.standard_normal((MIN_MIRROR_ITEMS + 20, N_ORDERINGS))
    singles = [scenario_b_pvalues(s[None, :], PERMS, null="gaussian") for s in scores]
    counts = [N_ORDERINGS] * MIN_MIRROR_ITEMS + [6] * 20  # a pool too small for the mirror null
    gaussian = np.array([r.pvalue[0] for r in singles])
    combined = combine_item_statistics(
        [r.statistic[0] for r in singles], [r.decoy[0] for r in singles], [r.model[0] for r in singles],
        gaussian, n_orderings=counts,
    )
    assert combined.null == "mirror+gaussian"
    np.testing.assert_array_equal(combined.pvalue[MIN_MIRROR_ITEMS:], gaussian[MIN_MIRROR_ITEMS:])
    assert not np.allclose(combined.pvalue[:MIN_MIRROR_ITEMS], gaussian[:MIN_MIRROR_ITEMS])
    assert combined.n_reference == MIN_MIRROR_ITEMS - 1  # the smaller null sample of the two
    with pytest.raises(ValueError, match="differ in length"):
        combine_item_statistics([1.0], [1.0], ["intercept"], [0.5], n_orderings=[24, 24])
