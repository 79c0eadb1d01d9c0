"""Timing and simulated calibration of the scenario-b detector (``lm_eval_leakage.core.scenario_b``).

Usage::

    python scripts/bench_calibrated.py                 # timing for 14,042 items x 24 orderings
    python scripts/bench_calibrated.py --candidates    # false-positive rate and power table

Not a test: prints figures to record (the target is every statistic of 14,042 x 24 in < 5 s). The
candidates table compares the default statistic with the experimental ones
(``core.scenario_b_experimental``; docs/method.md, section 6).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from numpy.typing import NDArray

from lm_eval_leakage.core.scenario_b import scenario_b_pvalues, summarise_scenario_b
from lm_eval_leakage.core.scenario_b_experimental import METHODS, experimental_pvalues


def _all_orderings(n_orderings: int) -> NDArray[np.int64]:
    k = next((k for k in range(2, 9) if math.factorial(k) == n_orderings), None)
    if k is None:
        raise ValueError(f"{n_orderings} is not k! for any k in 2..8")
    return np.array(list(itertools.permutations(range(k))), dtype=np.int64)


def _additive_scores(
    perms: NDArray[np.int64],
    n_items: int,
    tau: float,
    noise: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """mu + sum_p beta[perms[j, p], p] + noise with beta ~ N(0, tau^2) per item."""
    k = perms.shape[1]
    beta = rng.standard_normal((n_items, k, k)) * tau
    effects = np.sum([beta[:, perms[:, p], p] for p in range(k)], axis=0)
    return rng.normal(-80.0, 10.0, (n_items, 1)) + effects + noise


def benchmark(n_items: int = 14042, n_orderings: int = 24, seed: int = 0) -> float:
    """Time the scenario-b p-values and summary for ``n_items`` x ``n_orderings`` scores.

    Scores are simulated from the additive model with Gaussian noise; times the default (mirror
    null) and the Gaussian null, the latter including building its Monte Carlo table from
    scratch. Prints and returns the seconds of the default path.
    """
    rng = np.random.default_rng(seed)
    perms = _all_orderings(n_orderings)
    scores = _additive_scores(perms, n_items, 1.0, rng.standard_normal((n_items, n_orderings)), rng)
    start = time.perf_counter()
    summarise_scenario_b(scenario_b_pvalues(scores, perms))
    default = time.perf_counter() - start
    start = time.perf_counter()
    summarise_scenario_b(scenario_b_pvalues(scores, perms, null="gaussian", rng=seed + 12345))
    gaussian = time.perf_counter() - start
    print(
        f"{n_items} items x {n_orderings} orderings: mirror null {default:.3f} s, "
        f"gaussian null incl. table {gaussian:.3f} s"
    )
    return default


def candidates(n_items: int = 20_000, seed: int = 1) -> None:
    """Print false-positive rates (no leakage) and power (planted leakage) at alpha = 0.05."""
    rng = np.random.default_rng(seed)
    perms = _all_orderings(24)
    n, k = perms.shape

    def t3() -> NDArray[np.float64]:
        return rng.standard_t(3, (n_items, n)) / math.sqrt(3.0)  # unit variance

    def normal() -> NDArray[np.float64]:
        return rng.standard_normal((n_items, n))

    def adjacency(scale: float) -> NDArray[np.float64]:
        gamma = rng.standard_normal((n_items, k, k)) * scale
        return np.sum([gamma[:, perms[:, p], perms[:, p + 1]] for p in range(k - 1)], axis=0)

    nulls = {
        "iid normal": normal(),
        "iid t3": t3(),
        "additive tau=2 + normal": _additive_scores(perms, n_items, 2.0, normal(), rng),
        "additive tau=2 + t3": _additive_scores(perms, n_items, 2.0, t3(), rng),
        "additive + adjacency 0.3": _additive_scores(perms, n_items, 2.0, normal(), rng) + adjacency(0.3),
        "additive + adjacency 1.0": _additive_scores(perms, n_items, 2.0, normal(), rng) + adjacency(1.0),
        "iid lognormal (skewed)": rng.lognormal(0.0, 1.0, (n_items, n)),
    }
    print("false-positive rate at alpha=0.05 (gaussian null / mirror null)")
    for name, scores in nulls.items():
        cells = []
        for method in METHODS:
            rates = [
                np.mean(experimental_pvalues(scores, perms, method=method, null=null).pvalue < 0.05)
                for null in ("gaussian", "mirror")
            ]
            cells.append(f"{method} {rates[0]:.4f}/{rates[1]:.4f}")
        print(f"  {name:26s} " + " | ".join(cells))
    print("planted leakage: additive tau=1; share pi of items get +delta noise sd on one ordering")
    print("  (clean-item FPR / power on leaked items, gaussian null then mirror null)")
    for noise_name, noise in (("normal", normal), ("t3", t3)):
        for pi, delta, where in itertools.product((0.05, 0.5), (3.0, 5.0, 8.0), ("original", "random")):
            scores = _additive_scores(perms, n_items, 1.0, noise(), rng)
            leaked = rng.random(n_items) < pi
            rows = np.zeros(n_items, int) if where == "original" else rng.integers(0, n, n_items)
            scores[leaked, rows[leaked]] += delta
            cells = []
            for method in METHODS:
                parts = []
                for null in ("gaussian", "mirror"):
                    flagged = experimental_pvalues(scores, perms, method=method, null=null).pvalue < 0.05
                    parts.append(f"{flagged[~leaked].mean():.3f}/{flagged[leaked].mean():.2f}")
                cells.append(f"{method} " + " ".join(parts))
            print(f"  {noise_name} pi={pi} delta={delta:g} {where:8s} " + " | ".join(cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", action="store_true", help="print the FPR/power table")
    parser.add_argument("--n-items", type=int, default=14042)
    parser.add_argument("--n-orderings", type=int, default=24)
    arguments = parser.parse_args()
    if arguments.candidates:
        candidates()
    else:
        benchmark(arguments.n_items, arguments.n_orderings)
