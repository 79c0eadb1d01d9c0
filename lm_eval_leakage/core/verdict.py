"""A run's verdict in words: is there leakage beyond the floor a clean model reaches?

Over a full benchmark the dataset-level tests against chance detect any preference of a model
for published option orders, and every model has some (the original ordering of a clean model's
items is first 3-5 times as often as chance on MMLU). The question a user asks is whether the
model prefers *these* items' orders more than it prefers the orders of text it never saw. The
floor is therefore measured where it can be: the control items of a ``*_control`` task (each
question with another item's options in their published order, a pairing no corpus contains).
Without control items the floor is chance, and the verdict says so.

Three figures, each as a lift over the floor in points (hundredths; positive = more leakage):

* scenario a: ``leak_a`` observed minus floor (Newcombe's interval against control, the exact
  Clopper-Pearson interval against chance);
* mean rank: floor minus observed ``orig_rank`` (Welch's interval against control, the rank test's
  null standard deviation against 0.5);
* scenario b: ``leak_b_cal`` observed minus floor (Newcombe against control, Clopper-Pearson against the
  level ``alpha``).

The verdict is "leakage" when at least one lift's lower bound is above 0. Each figure is tested
one-sided at ``LEVEL / 3`` (two-sided intervals at ``1 - 2 LEVEL / 3``, Bonferroni), so a model
whose items sit at the floor gets a "leakage" verdict with probability at most ``LEVEL``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats as sps

from lm_eval_leakage.core import intervals

LEVEL = 0.05
"""Chance that a model at the floor gets a "leakage" verdict (at most; Bonferroni over the figures)."""
FIGURES = ("scenario a", "mean rank", "scenario b")
CONFIDENCE = 1 - 2 * LEVEL / len(FIGURES)
"""Two-sided confidence of each figure's interval in the verdict (0.967)."""

Floor = Literal["control", "chance"]


@dataclass(frozen=True)
class Lift:
    """One figure's lift over the floor, in points (0-100 scale; positive = more leakage).

    Attributes:
        figure: One of :data:`FIGURES`.
        points: The lift (NaN when it cannot be computed).
        low: Lower end of its interval at :data:`CONFIDENCE`.
        high: Upper end.
    """

    figure: str
    points: float
    low: float
    high: float

    @property
    def beyond_floor(self) -> bool:
        return bool(self.low > 0)

    def text(self) -> str:
        return f"{self.figure} {self.points:+.1f} points [{self.low:+.1f}, {self.high:+.1f}]"


@dataclass(frozen=True)
class Verdict:
    """The verdict of one run (or one subject of it).

    Attributes:
        floor: ``"control"`` (measured on the run's control items) or ``"chance"``.
        lifts: The three figures' lifts, in :data:`FIGURES` order.
        text: The verdict in words.
    """

    floor: Floor
    lifts: tuple[Lift, ...]
    text: str

    @property
    def leakage(self) -> bool:
        return any(lift.beyond_floor for lift in self.lifts)


def _lift(figure: str, difference: intervals.Difference) -> Lift:
    lo, hi = difference.ci
    return Lift(figure, 100 * difference.difference, 100 * lo, 100 * hi)


def _against_level(successes: int, n: int, level: float) -> intervals.Difference:
    """A fraction minus a fixed level, with the fraction's exact (Clopper-Pearson) interval shifted.

    Exact rather than Wilson's: near a small level Wilson's lower end can clear the level when the
    exact binomial test does not (15 of 200 against 1/24: Wilson's lower end at 0.967 is above 1/24,
    the exact one-sided p is 0.021 > LEVEL / 3), and the verdict's bound on false "leakage" must hold.
    """
    if n == 0:
        return intervals.Difference(math.nan, level, math.nan, (math.nan, math.nan))
    lo, hi = intervals.clopper_pearson_interval(successes, n, confidence=CONFIDENCE)
    return intervals.Difference(successes / n, level, successes / n - level, (lo - level, hi - level))


def _rank_against_half(ranks: np.ndarray, n_orderings: np.ndarray) -> intervals.Difference:
    """``0.5 - mean rank`` with the normal interval of the rank test's null standard deviation."""
    if ranks.size == 0:
        return intervals.Difference(math.nan, 0.5, math.nan, (math.nan, math.nan))
    sd = float(np.sqrt(((n_orderings + 1) / (12 * (n_orderings - 1))).sum()) / ranks.size)
    half = float(sps.norm.ppf(0.5 + CONFIDENCE / 2)) * sd
    lift = 0.5 - float(ranks.mean())
    return intervals.Difference(float(ranks.mean()), 0.5, lift, (lift - half, lift + half))


def _words(floor: Floor, lifts: Sequence[Lift]) -> str:
    if all(math.isnan(lift.points) for lift in lifts):
        return "n/a (no item to judge)"
    above = [lift for lift in lifts if lift.beyond_floor]
    where = "the control floor" if floor == "control" else "chance (no control floor measured)"
    if not above:
        return f"no evidence beyond {where}"
    text = f"leakage beyond {where}: " + "; ".join(lift.text() for lift in above)
    if floor == "chance":
        text += " (every model prefers published orders somewhat; run the _control task to measure that floor)"
    return text


@dataclass(frozen=True)
class Figures:
    """What the floor comparison needs of one role's items (observed or control).

    Attributes:
        first: Per item that passes the guard, whether its original ordering scored highest.
        ranks: Per such item, the original's normalised rank.
        flagged_b: Calibrated scenario b: ``(items flagged, items with a p-value)``.
    """

    first: Sequence[bool]
    ranks: Sequence[float]
    flagged_b: tuple[int, int]


@dataclass(frozen=True)
class ControlComparison:
    """Observed minus control (``intervals.Difference``, each with its 95% interval): the columns
    ``leak_a_vs_control``, ``orig_rank_vs_control`` and ``leak_b_cal_vs_control``."""

    leak_a: intervals.Difference
    orig_rank: intervals.Difference
    leak_b_cal: intervals.Difference


def compare_with_control(observed: Figures, control: Figures, *, confidence: float = 0.95) -> ControlComparison:
    """Observed minus control for the three figures (Newcombe for the fractions, Welch for the rank)."""
    return ControlComparison(
        leak_a=intervals.proportion_difference(int(sum(observed.first)), len(observed.first),
                                               int(sum(control.first)), len(control.first), confidence=confidence),
        orig_rank=intervals.mean_difference(observed.ranks, control.ranks, confidence=confidence),
        leak_b_cal=intervals.proportion_difference(*observed.flagged_b, *control.flagged_b, confidence=confidence),
    )


def decide(observed: Figures, n_orderings: Sequence[int], *, alpha: float, control: Figures | None = None) -> Verdict:
    """The verdict from the observed items' figures and, when measured, the control items'.

    Args:
        observed: The observed items' figures.
        n_orderings: Per observed item that passes the guard, its number of scored orderings
            (chance level and the rank's null spread when there is no control).
        alpha: The calibrated detector's level (its flagged fraction with no leakage).
        control: The control items' figures, or ``None`` for the chance floor.

    Returns:
        The verdict (see the module docstring for the rule).
    """
    if control is not None:
        at = compare_with_control(observed, control, confidence=CONFIDENCE)
        rank = at.orig_rank
        lifts = (
            _lift("scenario a", at.leak_a),
            _lift("mean rank", intervals.Difference(rank.observed, rank.control, -rank.difference,
                                                    (-rank.ci[1], -rank.ci[0]))),
            _lift("scenario b", at.leak_b_cal),
        )
        return Verdict("control", lifts, _words("control", lifts))
    n = len(observed.first)
    chance = float(np.mean([1.0 / k for k in n_orderings])) if n else math.nan
    lifts = (
        _lift("scenario a", _against_level(int(sum(observed.first)), n, chance)),
        _lift("mean rank", _rank_against_half(np.asarray(observed.ranks, float), np.asarray(n_orderings, float))),
        _lift("scenario b", _against_level(*observed.flagged_b, alpha)),
    )
    return Verdict("chance", lifts, _words("chance", lifts))
