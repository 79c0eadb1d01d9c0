"""Leakage statistics: per item from the scores of its orderings, and over a dataset.

Every function here is pure (numpy/scipy only) so that each figure can be checked against a
known answer without a model. Scores are summed log-likelihoods of an item's option block, one per
ordering, with ordering 0 the original (see ``orderings``).

Sources: Ni et al., "Training on the Benchmark Is Not All You Need", arXiv 2409.01790,
Algorithm 1 (scenario a); the p-values, ranks and intervals are this project's additions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Status = Literal["ok", "nonfinite", "constant", "too_few"]
STATUS_REASONS: dict[str, str] = {
    "ok": "scored",
    "nonfinite": "a score is NaN or infinite (the model returned no usable log-likelihood)",
    "constant": "every ordering has the same score, so no ordering can stand out",
    "too_few": "fewer than two distinct orderings, so there is nothing to compare",
}


@dataclass(frozen=True)
class ItemStats:
    """Statistics of the original ordering among one item's orderings.

    Attributes:
        status: ``"ok"`` or why the item is excluded (see ``STATUS_REASONS``); every other field
            is NaN/False when the status is not ``"ok"``.
        n_orderings: Number of scored orderings ``n``.
        original_first: Algorithm 1's flag: the original scores >= every other ordering (ties
            count as flagged, as in the reference).
        rank: Normalised mid-rank of the original, ``(above + tied / 2) / (n - 1)`` where
            ``above`` counts orderings scoring strictly higher and ``tied`` those scoring equal;
            0 = highest, 1 = lowest, expectation 0.5 under no leakage.
        pvalue: Exact permutation p-value of the original, ``(1 + above + tied) / n``: the
            probability, under exchangeable orderings, that a random ordering scores at least as
            high. Ties count against the original, so the test is conservative with ties.
        zscore: ``(s_0 - mean(s)) / sd(s)`` with the sample standard deviation (ddof = 1).
        gap_ratio: ``(max - second) / (max - min)`` of the scores, whichever ordering is best.
        best: Index of the best-scoring ordering (the first one on ties).
    """

    status: Status
    n_orderings: int
    original_first: bool
    rank: float
    pvalue: float
    zscore: float
    gap_ratio: float
    best: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def item_status(scores: np.ndarray) -> Status:
    """Whether ``scores`` can be analysed, or why not."""
    if scores.shape[0] < 2:
        return "too_few"
    if not np.all(np.isfinite(scores)):
        return "nonfinite"
    if np.all(scores == scores[0]):
        return "constant"
    return "ok"


def item_stats(scores: Sequence[float] | np.ndarray) -> ItemStats:
    """Compute :class:`ItemStats` for one item.

    Args:
        scores: One log-likelihood per ordering; ``scores[0]`` is the original ordering.

    Returns:
        The item's statistics; an item with fewer than two orderings, a non-finite score or all
        scores equal gets that status and NaN statistics instead of an exception.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    status = item_status(s)
    if status != "ok":
        return ItemStats(status, int(s.shape[0]), False, np.nan, np.nan, np.nan, np.nan, -1)
    batch = batch_item_stats(s[None, :])
    return ItemStats(
        status="ok",
        n_orderings=int(s.shape[0]),
        original_first=bool(batch["original_first"][0]),
        rank=float(batch["rank"][0]),
        pvalue=float(batch["pvalue"][0]),
        zscore=float(batch["zscore"][0]),
        gap_ratio=float(batch["gap_ratio"][0]),
        best=int(batch["best"][0]),
    )


def batch_item_stats(scores: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised per-item statistics for items that all have ``n`` orderings.

    Args:
        scores: Array of shape ``(items, n)`` with ``n >= 2``, finite and not constant per row
            (check with :func:`item_status` first; rows that are constant get NaN z-scores and
            gap ratios).

    Returns:
        Arrays ``original_first``, ``rank``, ``pvalue``, ``zscore``, ``gap_ratio`` and ``best``,
        one entry per item, defined as in :class:`ItemStats`.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"expected shape (items, n>=2), got {s.shape}")
    n = s.shape[1]
    original = s[:, :1]
    above = (s[:, 1:] > original).sum(axis=1)
    tied = (s[:, 1:] == original).sum(axis=1)
    ordered = np.sort(s, axis=1)
    spread = ordered[:, -1] - ordered[:, 0]
    sd = s.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(sd > 0, (s[:, 0] - s.mean(axis=1)) / sd, np.nan)
        gap_ratio = np.where(spread > 0, (ordered[:, -1] - ordered[:, -2]) / spread, np.nan)
    return {
        "original_first": above == 0,
        "rank": (above + 0.5 * tied) / (n - 1),
        "pvalue": (1.0 + above + tied) / n,
        "zscore": zscore,
        "gap_ratio": gap_ratio,
        "best": np.argmax(s, axis=1),
    }


# --------------------------------------------------------------------------- dataset level


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


def wilson_interval(successes: float, n: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (NaNs when ``n == 0``).

    ``successes`` may be fractional (an expected count), as when bounding a nominal level.
    """
    if n == 0:
        return (np.nan, np.nan)
    z = sps.norm.ppf(0.5 + confidence / 2)
    phat = successes / n
    denom = 1 + z**2 / n
    centre = (phat + z**2 / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


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


@dataclass(frozen=True)
class Difference:
    """An observed figure minus the same figure on a control set, with a 95% interval.

    Attributes:
        observed: The figure on the benchmark's items.
        control: The figure on the control items.
        difference: ``observed - control``.
        ci: 95% interval of the difference.
    """

    observed: float
    control: float
    difference: float
    ci: tuple[float, float]


def proportion_difference(
    successes: int, n: int, control_successes: int, control_n: int, *, confidence: float = 0.95
) -> Difference:
    """Difference of two independent proportions with Newcombe's hybrid score interval.

    ``lo = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``hi = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)`` with
    ``(l, u)`` the Wilson intervals of each proportion (Newcombe 1998, method 10). NaNs when either
    sample is empty.
    """
    if n == 0 or control_n == 0:
        return Difference(np.nan, np.nan, np.nan, (np.nan, np.nan))
    p1, p2 = successes / n, control_successes / control_n
    l1, u1 = wilson_interval(successes, n, confidence=confidence)
    l2, u2 = wilson_interval(control_successes, control_n, confidence=confidence)
    d = p1 - p2
    return Difference(p1, p2, d, (d - float(np.hypot(p1 - l1, u2 - p2)), d + float(np.hypot(u1 - p1, p2 - l2))))


def mean_difference(
    values: Sequence[float] | np.ndarray, control_values: Sequence[float] | np.ndarray, *, confidence: float = 0.95
) -> Difference:
    """Difference of two means with a normal (Welch) interval; NaNs when either has < 2 values."""
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(control_values, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return Difference(np.nan, np.nan, np.nan, (np.nan, np.nan))
    d = float(a.mean() - b.mean())
    half = float(sps.norm.ppf(0.5 + confidence / 2) * np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
    return Difference(float(a.mean()), float(b.mean()), d, (d - half, d + half))
