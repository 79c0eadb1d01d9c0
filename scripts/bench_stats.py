"""Time every per-item and dataset-level statistic for a benchmark-sized run (no model).

Simulates MMLU-sized scores (14,042 items x 24 orderings) and times, in one process: the per-item
scenario-a statistics (flag, rank, permutation p-value, z-score, gap ratio), the dataset-level
scenario-a figures (exact Poisson-binomial p-value, Wilson interval, rank test), the calibrated
scenario-b detector (studentised maximum for every item, mirror null, summary) and the paper's
IsolationForest rule for every item (``core.isolation_forest``, scikit-learn's fit reproduced with
numpy). Separately it times the exchangeability guard on the real MMLU options when the offline copy
is present (text rules run once when the dataset loads, not per statistic), the rule called one item
at a time (as ``pipeline.score_item`` calls it), and scikit-learn's own fit on a few items,
extrapolated. The last line is the total of every statistic, the paper's rule included.

Usage: python scripts/bench_stats.py [--items 14042] [--orderings 24] [--iforest-items 50]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lm_eval_leakage.core import item_statistics, scenario_a, scenario_b
from lm_eval_leakage.core.exchangeability import filter_exchangeable
from lm_eval_leakage.core.orderings import build_orderings
from lm_eval_leakage.core.reference_rule import isolation_score, isolation_score_sklearn, isolation_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=14042)
    parser.add_argument("--iforest-items", type=int, default=50)
    parser.add_argument("--mmlu", type=Path, default=Path(".cache/offline/mmlu_test.jsonl"))
    args = parser.parse_args()

    perms = np.array(build_orderings(list("abcd")).perms)
    scores = np.random.default_rng(0).normal(-150.0, 3.0, size=(args.items, len(perms)))
    timings: dict[str, float] = {}

    start = time.perf_counter()
    per_item = item_statistics.batch_item_stats(scores)
    timings["per-item scenario a (flag, rank, p, z, gap)"] = time.perf_counter() - start

    start = time.perf_counter()
    n = np.full(args.items, len(perms))
    scenario_a.scenario_a(per_item["original_first"], n)
    scenario_a.rank_test(per_item["rank"], n)
    timings["dataset scenario a (exact p, interval, rank test)"] = time.perf_counter() - start

    start = time.perf_counter()
    result = scenario_b.scenario_b_pvalues(scores, perms)
    scenario_b.summarise_scenario_b(result)
    timings[f"calibrated scenario b ({result.null} null)"] = time.perf_counter() - start

    start = time.perf_counter()
    rule = isolation_scores(scores)
    rule_flags = int((rule < -0.2).sum())
    timings["paper's rule (IsolationForest reproduced with numpy)"] = time.perf_counter() - start

    total = sum(timings.values())
    guard = None
    if args.mmlu.is_file():
        options = [json.loads(line)["choices"] for line in args.mmlu.open(encoding="utf-8")][: args.items]
        start = time.perf_counter()
        filter_exchangeable(options)
        guard = time.perf_counter() - start
    start = time.perf_counter()
    for row in scores[: 10 * args.iforest_items]:
        isolation_score(row)
    per_call = (time.perf_counter() - start) / min(10 * args.iforest_items, args.items)
    start = time.perf_counter()
    for row in scores[: args.iforest_items]:
        isolation_score_sklearn(row)
    per_forest = (time.perf_counter() - start) / min(args.iforest_items, args.items)

    print(f"{args.items} items x {len(perms)} orderings")
    for name, seconds in timings.items():
        print(f"  {name:55s} {seconds:7.3f} s")
    print(f"  {'total':55s} {total:7.3f} s")
    if guard is not None:
        print(f"exchangeability guard on the real MMLU options (text rules, once at dataset load): {guard:.3f} s")
    print(f"paper's rule one item at a time (pipeline.score_item): {per_call * 1e3:.2f} ms/item; "
          f"{rule_flags} items flagged at delta -0.20")
    print(f"scikit-learn's own fit of the rule (reference): {per_forest:.3f} s/item -> "
          f"{per_forest * args.items / 60:.1f} min for {args.items} items")
    print(f"all statistics, paper's rule included: {total:.1f} s")


if __name__ == "__main__":
    main()
