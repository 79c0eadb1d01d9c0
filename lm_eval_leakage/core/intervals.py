"""Confidence intervals of proportions and of differences against a control set.

The Wilson score and Clopper-Pearson (exact) intervals of a proportion, and observed-minus-control
differences of proportions (Newcombe's hybrid score interval) and of means (Welch's normal
interval); docs/method.md, sections 5.2 and 5.5.

Pure module: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


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


def clopper_pearson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a binomial proportion (NaNs when ``n == 0``).

    Each end excludes exactly the proportions at which the one-sided binomial test of the observed
    count has p below ``(1 - confidence) / 2``, so a one-sided decision "the lower end is above
    ``q``" never happens more often than that when the true proportion is ``q``.
    """
    if n == 0:
        return (np.nan, np.nan)
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(sps.beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(sps.beta.ppf(1 - tail, successes + 1, n - successes))
    return (low, high)


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
