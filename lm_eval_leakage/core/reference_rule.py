"""The paper's scenario-b rule (Algorithm 2), kept for parity with its tables and leaderboard.

Per item, scikit-learn's ``IsolationForest(n_estimators=100, contamination="auto",
random_state=42)`` is fitted on the item's ordering scores as a one-column matrix; the item is
flagged when ``decision_function`` at the best-scoring ordering is below ``delta``
(Ni et al., arXiv 2409.01790, Algorithm 2 and its public code).

This rule is uncalibrated: on scores with no leakage at all it flags a large share of items
(docs/method.md, section 4, weakness 3). Use the calibrated detector for inference; keep this one to compare
with the paper.

The score is computed by ``isolation_forest``, which reproduces scikit-learn's fit exactly from its
random stream with numpy (a few milliseconds per item called alone, a fraction of a millisecond per
item in a batch, instead of 0.2-0.6 s); ``isolation_score_sklearn`` is scikit-learn's own fit, used
for the rows that module does not reproduce (more than 256 orderings, where the forest subsamples,
or values not finite in float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lm_eval_leakage.core.isolation_forest import isolation_score_sklearn, isolation_scores

PAPER_DELTAS: dict[str, float] = {"four": -0.20, "five_or_more": -0.25}
"""The leaderboard's thresholds: -0.20 for four-option benchmarks, -0.25 for CMB's five."""


def default_delta(n_options: int) -> float:
    """The paper's threshold for an item with ``n_options`` options."""
    return PAPER_DELTAS["five_or_more"] if n_options >= 5 else PAPER_DELTAS["four"]


def isolation_score(scores: Sequence[float] | np.ndarray) -> float:
    """IsolationForest ``decision_function`` at the best ordering, exactly as the reference.

    Args:
        scores: The item's ordering scores (finite, at least two).

    Returns:
        The anomaly score of the maximum; lower means more isolated. Equal to
        ``isolation_score_sklearn(scores)``.
    """
    return float(isolation_scores(np.asarray(scores, dtype=np.float64).reshape(1, -1))[0])


def isolation_flag(scores: Sequence[float] | np.ndarray, *, delta: float) -> bool:
    """Algorithm 2's flag: the best ordering's anomaly score is below ``delta``."""
    return isolation_score(scores) < delta


def isolation_null_scores(n_orderings: int, *, draws: int, seed: int) -> np.ndarray:
    """Algorithm 2's anomaly score of the best ordering on simulated clean items.

    Each draw is an item whose ``n_orderings`` scores are i.i.d. standard normal: no ordering is
    special. IsolationForest picks split values uniformly between the minimum and maximum, so
    with its fixed random state its scores change under a positive affine map of the scores only
    through float32 rounding (of the values and split points) and the absolute 1e-7 span under which
    a node counts as constant (``3 z - 150`` moves 0.3% of 24-ordering items, by 0.005 at most): the
    standard normal stands, to that rounding, for any normal distribution. Real clean items need not be normal
    (docs/method.md, section 4, gives 20-50% false flags depending on shape), so the rate this gives
    is a reference level, not a calibrated null.

    Args:
        n_orderings: Orderings per simulated item (>= 2).
        draws: Simulated items.
        seed: Seed of the ``numpy.random.Generator``.

    Returns:
        ``draws`` anomaly scores; the null flag rate at ``delta`` is ``mean(scores < delta)``.
    """
    rng = np.random.default_rng([seed, n_orderings])
    return isolation_scores(rng.standard_normal((draws, n_orderings)))


__all__ = [
    "PAPER_DELTAS",
    "default_delta",
    "isolation_flag",
    "isolation_null_scores",
    "isolation_score",
    "isolation_score_sklearn",
    "isolation_scores",
]
