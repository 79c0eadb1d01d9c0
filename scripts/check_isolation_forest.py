"""Parity and speed of the numpy IsolationForest (``core.isolation_forest``) against scikit-learn.

Usage::

    python scripts/check_isolation_forest.py --items 10000 --orderings 24 120
    python scripts/check_isolation_forest.py --items 10000 --orderings 24 --budget-minutes 40

For each number of orderings it draws ``--items`` rows (mostly realistic log-likelihoods around
-150 +- 3 and standard normals, plus the cases a reproduction could get wrong: ties, values equal
once cast to float32, two values, all but one equal, values near 0 where the 1e-7 constant test
bites, leaked maxima, heavy tails), scores them with ``isolation_scores`` (one batch call, and one
call per row as ``pipeline.score_item`` makes) and with scikit-learn's own fit in ``--workers``
processes, then prints the largest absolute difference, the flag agreement at delta -0.20 and
-0.25, both timings (CPU time, which the other load on the machine disturbs least) and the speed
ratio. scikit-learn takes about 0.3 s of CPU per row: with
``--budget-minutes`` it stops after that long and reports on the rows it fitted; it always fits
the rows where the exact replica rebuilt a tree. Its scores are cached under ``.cache/``
(``--no-cache`` to refit), so a rerun only times the numpy side again; ``--extend`` fits the rows a
budgeted run left out and adds them to the cache. ``--save-reference tests/data`` stores
scikit-learn's scores of all the rows (with the seed and a digest of the rows) as
``isolation_forest_sklearn_N.npz``, which ``tests/core/test_isolation_forest.py`` compares the
numpy scores with on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import time
from pathlib import Path

import numpy as np
import sklearn
import sklearn.ensemble  # imported once here, not in every worker

from lm_eval_leakage.core.isolation_forest import isolation_score_sklearn, isolation_scores, spine_leaves

DELTAS = (-0.20, -0.25)


def random_items(count: int, n: int, seed: int) -> np.ndarray:
    """``count`` rows of ``n`` scores: a realistic majority and every edge case, shuffled."""
    rng = np.random.default_rng([seed, n])
    kind = rng.choice(10, size=count, p=[0.4, 0.2, 0.08, 0.06, 0.05, 0.04, 0.04, 0.04, 0.05, 0.04])
    base = rng.normal(-150.0, 3.0, size=(count, n))
    normal = rng.standard_normal((count, n))
    rows = np.where((kind == 0)[:, None], base, normal)
    rows[kind == 2] = np.round(normal[kind == 2] * 2) / 2  # ties
    rows[kind == 3] = -150.0 + 1e-9 * normal[kind == 3]  # equal in float32
    rows[kind == 4] = np.where(rng.random((int((kind == 4).sum()), n)) < 0.5, -3.0, -2.0)  # two values
    one_off = np.full((int((kind == 5).sum()), n), -40.0)
    one_off[np.arange(one_off.shape[0]), rng.integers(0, n, one_off.shape[0])] = -35.0
    rows[kind == 5] = one_off  # all but the maximum equal
    rows[kind == 6] = 1e-7 * normal[kind == 6]  # the 1e-7 constant test
    spike = base[kind == 7]
    spike[np.arange(spike.shape[0]), rng.integers(0, n, spike.shape[0])] += rng.uniform(5, 40, spike.shape[0])
    rows[kind == 7] = spike  # a leaked maximum
    rows[kind == 8] = -150.0 + 3.0 * rng.standard_t(2, size=(int((kind == 8).sum()), n))  # heavy tails
    rows[kind == 9] = np.round(base[kind == 9], 1)  # coarse rounding
    return rows


def _fit(row: np.ndarray) -> tuple[float, float]:
    start = time.process_time()
    score = isolation_score_sklearn(row)
    return score, time.process_time() - start


def sklearn_scores(rows: np.ndarray, workers: int, budget_s: float | None) -> tuple[np.ndarray, float, float]:
    """scikit-learn's scores of the rows (NaN past the budget), wall time and summed CPU time."""
    scores = np.full(rows.shape[0], np.nan)
    fit_time, start = 0.0, time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for i, (score, seconds) in enumerate(pool.imap(_fit, rows, chunksize=4)):
            scores[i], fit_time = score, fit_time + seconds
            if budget_s is not None and time.perf_counter() - start > budget_s:
                pool.terminate()
                break
    return scores, time.perf_counter() - start, fit_time


def _sklearn_side(rows: np.ndarray, rebuilt: np.ndarray, n: int, args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    """scikit-learn's scores (NaN: not fitted), cached: rows in order within the budget, and
    every row where the exact replica rebuilt a tree. Returns scores, wall and CPU seconds."""
    cache = Path(f".cache/check_isolation_forest/n{n}_items{args.items}_seed{args.seed}.npz")
    if cache.is_file() and not args.no_cache:
        saved = np.load(cache)
        theirs, wall, fit_time = saved["scores"].copy(), float(saved["wall"]), float(saved["fit_time"])
    else:
        budget = None if args.budget_minutes is None else 60.0 * args.budget_minutes
        theirs, wall, fit_time = sklearn_scores(rows, args.workers, budget)
    if args.extend and np.isnan(theirs).any():  # fit the cached run's unfitted rows, in order
        todo = np.flatnonzero(np.isnan(theirs))
        budget = None if args.budget_minutes is None else 60.0 * args.budget_minutes
        scores, extra_wall, extra_fit = sklearn_scores(rows[todo], args.workers, budget)
        theirs[todo], wall, fit_time = scores, wall + extra_wall, fit_time + extra_fit
    missing = np.flatnonzero(rebuilt & np.isnan(theirs))
    if missing.size:
        scores, extra_wall, extra_fit = sklearn_scores(rows[missing], args.workers, None)
        theirs[missing], wall, fit_time = scores, wall + extra_wall, fit_time + extra_fit
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, scores=theirs, wall=wall, fit_time=fit_time)
    return theirs, wall, fit_time


def rows_digest(rows: np.ndarray) -> str:
    """SHA-256 of the rows' float64 bytes: proof that a regenerated sample is the one scored."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.float64).tobytes()).hexdigest()


def reference_path(folder: Path, n: int) -> Path:
    return folder / f"isolation_forest_sklearn_{n}.npz"


def save_reference(folder: Path, n: int, rows: np.ndarray, seed: int, theirs: np.ndarray) -> Path:
    """Store scikit-learn's scores of every row, and how to regenerate the rows, in ``folder``."""
    path = reference_path(folder, n)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, scores=theirs, items=np.array(rows.shape[0]), seed=np.array(seed),
                        rows_sha256=np.array(rows_digest(rows)), sklearn_version=np.array(sklearn.__version__))
    return path


def check(n: int, args: argparse.Namespace) -> None:
    rows = random_items(args.items, n, args.seed)
    start, cpu = time.perf_counter(), time.process_time()
    ours = isolation_scores(rows)
    batch, batch_wall = time.process_time() - cpu, time.perf_counter() - start
    replayed = spine_leaves(rows)[2]
    single_rows = rows[: args.single]
    cpu = time.process_time()
    single = np.array([isolation_scores(row[None])[0] for row in single_rows])
    per_call = (time.process_time() - cpu) / len(single_rows)
    assert np.array_equal(single, ours[: len(single)]), "one row at a time differs from the batch"

    rebuilt = replayed.any(axis=1)
    theirs, wall, fit_time = _sklearn_side(rows, rebuilt, n, args)
    done = ~np.isnan(theirs)
    diff = np.abs(ours[done] - theirs[done])
    per_fit = fit_time / max(int(done.sum()), 1)
    print(f"{n} orderings: {int(done.sum())} of {args.items} items compared with scikit-learn "
          f"(the first {int(np.argmin(done)) if not done.all() else args.items}, and every item with a rebuilt tree)")
    print(f"  max |numpy - scikit-learn| = {diff.max():.3g}; items differing by more than 1e-9: "
          f"{int((diff > 1e-9).sum())}")
    for delta in DELTAS:
        agree = int(((ours[done] < delta) == (theirs[done] < delta)).sum())
        print(f"  flag at delta {delta:+.2f}: {agree} of {int(done.sum())} agree "
              f"({int((theirs[done] < delta).sum())} flagged by scikit-learn)")
    print(f"  trees rebuilt by the exact replica: {int(replayed.sum())} in {int(rebuilt.sum())} items, "
          f"{int(rebuilt[done].sum())} of them compared")
    print(f"  scikit-learn: {fit_time:.1f} s of CPU in fits ({wall:.1f} s wall, {args.workers} workers), "
          f"{per_fit * 1e3:.1f} ms per item")
    print(f"  numpy: {batch:.2f} s of CPU for all {args.items} items in one call ({batch_wall:.2f} s wall, "
          f"{batch / args.items * 1e3:.3f} ms per item); {per_call * 1e3:.2f} ms per item called one at a "
          f"time ({len(single_rows)} items)")
    print(f"  speed ratio (CPU time per item): {per_fit / (batch / args.items):.0f}x in batch, "
          f"{per_fit / per_call:.0f}x one at a time")
    if args.save_reference is not None:
        if done.all():
            path = save_reference(args.save_reference, n, rows, args.seed, theirs)
            print(f"  scikit-learn's scores of all {args.items} items saved to {path}")
        else:
            print(f"  not saved to {args.save_reference}: {int((~done).sum())} items not fitted (use --extend)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--orderings", type=int, nargs="+", default=[24, 120])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--single", type=int, default=500, help="rows timed one call at a time")
    parser.add_argument("--budget-minutes", type=float, default=None, help="scikit-learn time per size")
    parser.add_argument("--no-cache", action="store_true", help="refit scikit-learn even if cached")
    parser.add_argument("--save-reference", type=Path, default=None,
                        help="folder to store scikit-learn's scores of every item in (the test suite's reference)")
    parser.add_argument("--extend", action="store_true",
                        help="fit the rows a cached run left unfitted (within --budget-minutes), then compare")
    args = parser.parse_args()
    for n in args.orderings:
        check(n, args)


if __name__ == "__main__":
    main()
