"""Scenario a over a dataset: Algorithm 1's rate against its chance level, and the mean-rank test.

Under no leakage an item's original ordering is the best of its ``n`` orderings with probability
``1 / n``; these tests say whether a dataset's rate (or its mean rank of the original) is beyond
chance. Algorithm 1 is from Ni et al. (arXiv 2409.01790); the exact test, interval and rank test
are this project's additions (docs/method.md, section 5.2).

Pure module: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from lm_eval_leakage.core.intervals import wilson_interval


def poisson_binomial_sf(observed: int, probabilities: Sequence[float] | np.ndarray) -> float:
    """Exact ``P(X >= observed)`` for ``X`` a sum of independent Bernoulli(p_i).

    Items with equal ``p_i`` are grouped into binomials whose pmfs are convolved, so the cost
    depends on the number of distinct chance levels, not on the number of items.

    Args:
        observed: The observed count.
        probabilities: One success probability per item.

    Returns:
        The upper-tail probability; 1.0 for ``observed <= 0`` and 0.0 above the number of items.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if observed <= 0:
        return 1.0
    if observed > p.size:
        return 0.0
    pmf = np.ones(1)
    for level, count in zip(*np.unique(p, return_counts=True), strict=True):
        pmf = np.convolve(pmf, sps.binom.pmf(np.arange(count + 1), count, level))
    return float(min(1.0, pmf[observed:].sum()))


@dataclass(frozen=True)
class ScenarioA:
    """Dataset-level Algorithm 1 figures.

    Attributes:
        n_items: Items analysed.
        rate: Fraction of items whose original ordering scored highest (``leak_a``).
        chance: Mean chance level ``mean(1 / n_i)``: the expected rate under no leakage.
        pvalue: One-sided exact p-value of ``rate`` against the chance levels (Poisson-binomial).
        excess: ``rate - chance``.
        excess_ci: 95% Wilson interval of the rate, minus the (known) chance level.
    """

    n_items: int
    rate: float
    chance: float
    pvalue: float
    excess: float
    excess_ci: tuple[float, float]


def scenario_a(flags: Sequence[bool] | np.ndarray, n_orderings: Sequence[int] | np.ndarray) -> ScenarioA:
    """Algorithm 1 over a dataset, with its chance level, exact test and interval.

    Under no leakage (exchangeable orderings, continuous scores) item ``i`` is flagged with
    probability ``1 / n_i`` independently of the others, so the count of flagged items is
    Poisson-binomial; the p-value is its exact upper tail. The interval is the Wilson interval of
    the flagged fraction (for unequal ``n_i`` the count's variance is at most the binomial one, so
    the interval is conservative) shifted by the known chance level.

    Args:
        flags: Algorithm 1's flag per item.
        n_orderings: Number of scored orderings per item.

    Returns:
        The figures; ``n_items == 0`` gives NaNs.
    """
    f = np.asarray(flags, dtype=bool)
    n = np.asarray(n_orderings, dtype=np.float64)
    if f.shape != n.shape:
        raise ValueError(f"flags and n_orderings differ in shape: {f.shape} vs {n.shape}")
    if f.size == 0:
        return ScenarioA(0, np.nan, np.nan, np.nan, np.nan, (np.nan, np.nan))
    chances = 1.0 / n
    rate = float(f.mean())
    chance = float(chances.mean())
    lo, hi = wilson_interval(int(f.sum()), f.size)
    return ScenarioA(
        n_items=int(f.size),
        rate=rate,
        chance=chance,
        pvalue=poisson_binomial_sf(int(f.sum()), chances),
        excess=rate - chance,
        excess_ci=(lo - chance, hi - chance),
    )


@dataclass(frozen=True)
class RankTest:
    """Mean normalised rank of the original ordering and its test against 0.5.

    Attributes:
        n_items: Items analysed.
        mean_rank: Mean of the per-item normalised ranks (0 = original always highest).
        zscore: ``(mean_rank - 0.5) / sd0`` with ``sd0`` its standard deviation under no leakage.
        pvalue: One-sided p-value for a rank below 0.5 (the direction leakage pushes it).
    """

    n_items: int
    mean_rank: float
    zscore: float
    pvalue: float


def rank_test(ranks: Sequence[float] | np.ndarray, n_orderings: Sequence[int] | np.ndarray) -> RankTest:
    """Test whether the original ordering ranks higher than chance on average.

    Under no leakage the normalised rank of item ``i`` is uniform on ``{0, 1/(n_i-1), ..., 1}``,
    with mean 0.5 and variance ``(n_i + 1) / (12 (n_i - 1))``; items are independent, so the mean
    rank is approximately normal (central limit theorem over items; valid for unequal ``n_i``).

    Args:
        ranks: Normalised rank per item.
        n_orderings: Number of scored orderings per item (each >= 2).

    Returns:
        The test; ``n_items == 0`` gives NaNs.
    """
    r = np.asarray(ranks, dtype=np.float64)
    n = np.asarray(n_orderings, dtype=np.float64)
    if r.size == 0:
        return RankTest(0, np.nan, np.nan, np.nan)
    variance = ((n + 1) / (12 * (n - 1))).sum() / r.size**2
    z = (r.mean() - 0.5) / np.sqrt(variance)
    return RankTest(int(r.size), float(r.mean()), float(z), float(sps.norm.cdf(z)))
