"""The verdict against the floor: its error rate at the floor, its power, and its words."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lm_eval_leakage.core import verdict
from lm_eval_leakage.core.verdict import Figures, decide

N_ORDERINGS = 24


def _figures(rng: np.random.Generator, n: int, *, p_first: float, rank_shift: float = 0.0,
             p_b: float = 0.05) -> Figures:
    """``n`` simulated items: original first (rank 0) with probability ``p_first``, else a rank
    uniform on the other 23 levels pulled towards 0 by ``rank_shift`` (with ``p_first = 1/24`` and
    no shift: uniform on all 24, a clean item); calibrated flags with probability ``p_b``."""
    first = rng.random(n) < p_first
    others = rng.integers(1, N_ORDERINGS, size=n) / (N_ORDERINGS - 1)  # uniform on the other 23 ranks
    ranks = np.where(first, 0.0, np.clip(others - rank_shift * rng.random(n), 1 / (N_ORDERINGS - 1), 1.0))
    return Figures(first.tolist(), ranks.tolist(), (int((rng.random(n) < p_b).sum()), n))


def _leakage_rate(observed: dict, control: dict | None, runs: int = 300, n: int = 200) -> float:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(runs):
        floor = None if control is None else _figures(rng, n, **control)
        hits += decide(_figures(rng, n, **observed), [N_ORDERINGS] * n, alpha=0.05, control=floor).leakage
    return hits / runs


def test_a_model_at_chance_gets_no_evidence_against_chance() -> None:
    assert _leakage_rate({"p_first": 1 / 24}, None) <= verdict.LEVEL + 0.02


def test_a_model_at_its_own_floor_gets_no_evidence_against_control() -> None:
    biased = {"p_first": 0.12, "rank_shift": 0.1, "p_b": 0.08}  # prefers published orders, like every model
    assert _leakage_rate(biased, biased) <= verdict.LEVEL + 0.02
    assert _leakage_rate(biased, None) > 0.9  # against chance the same model looks leaked


def test_leakage_beyond_the_control_floor_is_found_and_sized() -> None:
    rng = np.random.default_rng(3)
    observed = _figures(rng, 1000, p_first=0.30, rank_shift=0.2, p_b=0.20)
    control = _figures(rng, 1000, p_first=0.12, rank_shift=0.1, p_b=0.08)
    result = decide(observed, [N_ORDERINGS] * 1000, alpha=0.05, control=control)
    assert result.leakage and result.floor == "control"
    a, rank, b = result.lifts
    assert a.figure == "scenario a" and a.low > 0 and a.points == pytest.approx(
        100 * (np.mean(observed.first) - np.mean(control.first)))
    assert rank.points == pytest.approx(100 * (np.mean(control.ranks) - np.mean(observed.ranks)))
    assert b.low > 0
    assert result.text.startswith("leakage beyond the control floor: scenario a +")


def test_words() -> None:
    empty = decide(Figures([], [], (0, 0)), [], alpha=0.05)
    assert empty.text == "n/a (no item to judge)" and not empty.leakage
    rng = np.random.default_rng(1)
    clean = decide(_figures(rng, 50, p_first=0.0), [N_ORDERINGS] * 50, alpha=0.05)
    assert clean.text == "no evidence beyond chance (no control floor measured)"
    leaked = decide(_figures(rng, 200, p_first=0.5), [N_ORDERINGS] * 200, alpha=0.05)
    assert leaked.text.startswith("leakage beyond chance (no control floor measured): scenario a +")
    assert "run the _control task" in leaked.text
    assert verdict.CONFIDENCE == pytest.approx(1 - 0.1 / 3)


@pytest.mark.parametrize("successes", range(31))
def test_against_chance_agrees_with_the_exact_binomial_test(successes: int) -> None:
    """Against chance, scenario a is "leakage" exactly when the one-sided binomial p is below LEVEL / 3."""
    n = 200
    ranks = [0.0] * successes + [0.5] * (n - successes)  # the rank is neutral: only scenario a decides
    result = decide(Figures([True] * successes + [False] * (n - successes), ranks, (10, n)), [N_ORDERINGS] * n,
                    alpha=0.05)
    exact = stats.binomtest(successes, n, 1 / N_ORDERINGS, alternative="greater").pvalue
    assert result.lifts[0].beyond_floor == (exact < verdict.LEVEL / 3), (successes, exact)
