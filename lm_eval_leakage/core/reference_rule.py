"""The paper's scenario-b rule (Algorithm 2), kept for parity with its tables and leaderboard.

Per item, scikit-learn's ``IsolationForest(n_estimators=100, contamination="auto",
random_state=42)`` is fitted on the item's ordering scores as a one-column matrix; the item is
flagged when ``decision_function`` at the best-scoring ordering is below ``delta``
(Ni et al., arXiv 2409.01790, Algorithm 2 and its public code).

This rule is uncalibrated: on scores with no leakage at all it flags a large share of items
(docs/method.md, section 4, weakness 3). Use the calibrated detector for inference; keep this one to compare
with the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
        The anomaly score of the maximum; lower means more isolated.
    """
    from sklearn.ensemble import IsolationForest  # heavy import, only when the rule runs

    column = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=42)
    forest.fit(column)
    best = column[int(np.argmax(column[:, 0]))].reshape(1, 1)
    return float(forest.decision_function(best)[0])


def isolation_flag(scores: Sequence[float] | np.ndarray, *, delta: float) -> bool:
    """Algorithm 2's flag: the best ordering's anomaly score is below ``delta``."""
    return isolation_score(scores) < delta


def isolation_null_scores(n_orderings: int, *, draws: int, seed: int) -> np.ndarray:
    """Algorithm 2's anomaly score of the best ordering on simulated clean items.

    Each draw is an item whose ``n_orderings`` scores are i.i.d. standard normal: no ordering is
    special. IsolationForest picks split values uniformly between the minimum and maximum, so
    with its fixed random state its scores do not change under a positive affine map of the
    scores: the standard normal stands for any normal distribution. Real clean items need not be
    normal (docs/method.md, section 4, gives 20-50% false flags depending on shape), so the rate this
    gives is a reference level, not a calibrated null.

    Args:
        n_orderings: Orderings per simulated item (>= 2).
        draws: Simulated items.
        seed: Seed of the ``numpy.random.Generator``.

    Returns:
        ``draws`` anomaly scores; the null flag rate at ``delta`` is ``mean(scores < delta)``.
    """
    rng = np.random.default_rng([seed, n_orderings])
    return np.array([isolation_score(rng.standard_normal(n_orderings)) for _ in range(draws)])
