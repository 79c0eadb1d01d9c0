from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from lm_eval_leakage.core.reference_rule import default_delta, isolation_flag, isolation_score


def _sklearn_directly(scores: np.ndarray) -> float:
    column = scores.reshape(-1, 1)
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=42).fit(column)
    return float(forest.decision_function(column[[int(np.argmax(scores))]])[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn_on_fixed_inputs(seed: int) -> None:
    scores = np.random.default_rng(seed).normal(-150, 2, size=24)
    assert isolation_score(scores) == pytest.approx(_sklearn_directly(scores), abs=1e-12)


def test_outstanding_maximum_is_flagged_and_flat_one_is_not() -> None:
    flat = np.linspace(-100, -99, 24)
    spike = flat.copy()
    spike[5] = -80.0
    assert isolation_flag(spike, delta=-0.2)
    assert not isolation_flag(flat, delta=-0.2)


def test_paper_thresholds() -> None:
    assert default_delta(4) == -0.20
    assert default_delta(5) == -0.25 and default_delta(6) == -0.25
