"""The numpy IsolationForest equals scikit-learn's fit, score for score and tree for tree.

scikit-learn costs about 0.3 s per item, so the fits here cover a few rows per ``n``, chosen for
the cases where a reproduction could slip (ties, float32 rounding, the 1e-7 constant test, two
values, large offsets, leaked maxima). For 10,000 items of 24 and of 120 orderings the numpy scores
are compared with scikit-learn's, fitted once by ``scripts/check_isolation_forest.py`` and stored
in ``tests/data/isolation_forest_sklearn_N.npz`` with the seed and a digest of the rows.
The exact scalar replica (``_replay``) is checked against scikit-learn's own trees and against the
vectorised path on every tree of more rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from support.scripts import load_script

from lm_eval_leakage.core import isolation_forest as iforest
from lm_eval_leakage.core.reference_rule import isolation_null_scores, isolation_score

SIZES = [2, 3, 5, 6, 24, 37, 120]
ROOT = Path(__file__).resolve().parents[2]


def edge_rows(n: int, seed: int) -> np.ndarray:
    """Rows of ``n`` scores covering the cases a reproduction could get wrong."""
    rng = np.random.default_rng([seed, n])
    rows = [
        rng.normal(-150.0, 3.0, n),  # realistic log-likelihoods
        rng.standard_normal(n),
        np.round(rng.normal(0.0, 1.0, n) * 2) / 2,  # duplicated values
        np.r_[np.full(n - 1, -40.0), -35.0],  # all but the maximum equal
        np.r_[-45.0, np.full(n - 1, -40.0)],  # all but the minimum equal
        -150.0 + 1e-9 * rng.standard_normal(n),  # equal once cast to float32
        rng.choice([-3.0, -2.0], n),  # two values (or one)
        1e-7 * rng.standard_normal(n),  # near 0, where the 1e-7 constant test bites
        np.r_[rng.normal(-150.0, 3.0, n - 1), -120.0],  # a leaked maximum
        1e-8 * np.arange(n) + 1.0,  # distinct in float64, a few float32 values
    ]
    return np.array(rows)


def sklearn_trees(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth (root 0) and size of the leaf holding the maximum in each of scikit-learn's trees."""
    column = row.reshape(-1, 1)
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=42).fit(column)
    best = column[[int(np.argmax(row))]].astype(np.float32)
    leaves = [(tree.tree_, int(tree.apply(best)[0])) for tree in forest.estimators_]
    depth = np.array([t.compute_node_depths()[leaf] - 1 for t, leaf in leaves])
    return depth, np.array([t.n_node_samples[leaf] for t, leaf in leaves])


@pytest.mark.parametrize("n", SIZES)
def test_scores_equal_scikit_learn(n: int) -> None:
    rows = edge_rows(n, seed=0)
    if n not in (6, 24, 120):  # about 0.3 s per scikit-learn fit: the rows most likely to differ
        rows = rows[[0, 2, 5, 6, 7]]
    ours = iforest.isolation_scores(rows)
    theirs = np.array([iforest.isolation_score_sklearn(row) for row in rows])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert not iforest.sklearn_rows(rows).any()


@pytest.mark.parametrize("n", [6, 24, 120])
def test_leaves_equal_scikit_learn_tree_by_tree(n: int) -> None:
    row = edge_rows(n, seed=1)[2]
    depth, size, _ = iforest.spine_leaves(row[None])
    theirs = sklearn_trees(row)
    np.testing.assert_array_equal(depth[0], theirs[0])
    np.testing.assert_array_equal(size[0], theirs[1])
    replayed = [iforest._replay(row.astype(np.float32), tree) for tree in range(100)]
    assert replayed == list(zip(*theirs))


@pytest.mark.parametrize("n", SIZES)
def test_replica_equals_the_fast_path_on_every_tree(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = np.concatenate([edge_rows(n, seed=2)[::3], np.random.default_rng(n).normal(-150, 3, (3, n))])
    depth, size, replayed = iforest.spine_leaves(rows)
    monkeypatch.setattr(iforest, "_doubtful", lambda prefix, log: np.arange(prefix.shape[0] * 100))
    forced = iforest.spine_leaves(rows)
    assert forced[2].all() and not replayed.all()
    np.testing.assert_array_equal(forced[0], depth)
    np.testing.assert_array_equal(forced[1], size)


def test_doubtful_splits_are_replayed_and_still_match() -> None:
    rows = np.random.default_rng(7).normal(-150.0, 3.0, size=(200, 120))
    _, _, replayed = iforest.spine_leaves(rows)
    flagged = np.flatnonzero(replayed.any(axis=1))
    assert flagged.size >= 3  # about 2% of such rows have a split the fast path does not trust
    ours = iforest.isolation_scores(rows[flagged[:3]])
    theirs = [iforest.isolation_score_sklearn(row) for row in rows[flagged[:3]]]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_batch_equals_one_row_at_a_time() -> None:
    rows = np.concatenate([edge_rows(24, seed=3), np.random.default_rng(3).normal(-150, 3, (40, 24))])
    single = [iforest.isolation_scores(row[None])[0] for row in rows]
    np.testing.assert_array_equal(iforest.isolation_scores(rows), single)
    assert isolation_score(rows[0]) == single[0]


def test_rows_it_does_not_reproduce_go_to_scikit_learn() -> None:
    wide = np.random.default_rng(4).normal(-150.0, 3.0, size=(1, 300))  # the forest subsamples
    assert iforest.sklearn_rows(wide).all()
    assert iforest.isolation_scores(wide)[0] == iforest.isolation_score_sklearn(wide[0])
    rows = np.random.default_rng(5).normal(size=(3, 24))
    rows[1, 4] = 1e39  # infinite in float32
    np.testing.assert_array_equal(iforest.sklearn_rows(rows), [False, True, False])
    assert iforest.sklearn_rows(np.zeros((2, 1))).all()


def test_no_impurity_leaf_for_any_reproduced_size() -> None:
    assert all(iforest._targets(n) is not None for n in range(2, iforest.MAX_REPRODUCED + 1))


def test_path_length_correction_is_scikit_learns() -> None:
    for n in (2, 3, 24, 120, 256):
        table, denominator = iforest._path_correction(n)
        np.testing.assert_array_equal(table, _average_path_length(np.arange(n + 1)))
        assert denominator == 100 * _average_path_length([n])[0]


def test_null_scores_are_the_per_item_scikit_learn_scores() -> None:
    scores = isolation_null_scores(24, draws=3, seed=11)
    rng = np.random.default_rng([11, 24])
    expected = [iforest.isolation_score_sklearn(rng.standard_normal(24)) for _ in range(3)]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [24, 120])
def test_ten_thousand_items_equal_stored_scikit_learn_scores(n: int) -> None:
    script = load_script("check_isolation_forest")
    reference = np.load(script.reference_path(ROOT / "tests" / "data", n))
    rows = script.random_items(int(reference["items"]), n, int(reference["seed"]))
    assert rows.shape[0] >= 10_000
    assert script.rows_digest(rows) == str(reference["rows_sha256"]), (
        f"the regenerated rows of {n} orderings are not the ones scikit-learn scored (numpy's random "
        f"stream changed?); refit: python scripts/check_isolation_forest.py --orderings {n} --no-cache "
        f"--save-reference tests/data")
    theirs = reference["scores"]
    assert np.isfinite(theirs).all()
    ours = iforest.isolation_scores(rows)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    for delta in (-0.20, -0.25):
        assert np.array_equal(ours < delta, theirs < delta)
