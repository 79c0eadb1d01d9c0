"""Simulated ordering scores of clean items, shared by the scenario-b tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

PERMS = np.array(list(itertools.permutations(range(4))), dtype=np.int64)  # row 0 = identity
N_ORDERINGS, K = PERMS.shape
N_ITEMS = 20_000
NULLS = ["iid_normal", "iid_t3", "additive_normal", "additive_t3"]
"""Laws of clean items: i.i.d. normal or t(3) scores, or additive position effects plus either."""


def position_effects(rng: np.random.Generator, m: int, tau: float) -> NDArray[np.float64]:
    """sum_p beta[perms[j, p], p] with beta ~ N(0, tau^2) per item, plus a random level."""
    beta = rng.standard_normal((m, K, K)) * tau
    effects = sum(beta[:, PERMS[:, p], p] for p in range(K))
    return rng.normal(-60.0, 15.0, (m, 1)) + effects


def null_scores(kind: str, seed: int, m: int = N_ITEMS) -> NDArray[np.float64]:
    """``m`` clean items' scores over the 24 orderings of four options, of law ``kind`` (see ``NULLS``)."""
    rng = np.random.default_rng(seed)
    if kind == "iid_normal":
        return rng.standard_normal((m, N_ORDERINGS))
    if kind == "iid_t3":
        return rng.standard_t(3, (m, N_ORDERINGS))
    noise = rng.standard_normal((m, N_ORDERINGS)) if kind.endswith("normal") else rng.standard_t(3, (m, N_ORDERINGS))
    return position_effects(rng, m, tau=2.0) + noise


def check_mirror_null(result: Any, alpha: float) -> None:
    """A mirror-null batch result on clean items: nominal rate, and T+ and its decoys T- of one law.

    A one-sample KS test of the p-values would be too strict: they share one decoy sample, which
    adds about 60% to the variance of their empirical CDF (150 seeds: 15% of one-sample KS p-values
    < 0.01, while the two-sample test gave 0% < 0.01 and 5.3% < 0.05).
    """
    fpr = float(np.mean(result.pvalue < alpha))
    assert abs(fpr - alpha) < 0.01, fpr
    assert stats.ks_2samp(result.statistic, result.decoy).pvalue > 0.01
    deciles = np.histogram(result.pvalue, bins=10, range=(0.0, 1.0))[0] / len(result.pvalue)
    assert np.all(np.abs(deciles - 0.1) < 0.01), deciles  # about 3.5 sd of a decile share


def check_gaussian_null(pvalues: Callable[..., Any], kind: str, seed: int, alpha: float) -> None:
    """``pvalues(scores, PERMS, null="gaussian", ...)`` on clean items of ``kind``: nominal rate.

    The p-values share one Monte Carlo table, so the statistics are compared with a fresh i.i.d.
    Gaussian sample of the same design instead of testing the p-values against U(0, 1) alone.
    """
    result = pvalues(null_scores(kind, seed), PERMS, null="gaussian", rng=7)
    fpr = float(np.mean(result.pvalue < alpha))
    assert abs(fpr - alpha) < 0.01, fpr
    fresh = pvalues(null_scores("iid_normal", seed + 50), PERMS, null="gaussian")
    assert stats.ks_2samp(result.statistic, fresh.statistic).pvalue > 0.01
    assert stats.kstest(result.pvalue, "uniform").pvalue > 0.001
