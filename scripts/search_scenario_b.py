"""Compare candidate scenario-b statistics on finished validation runs (no model).

Usage: ``.venv/bin/python scripts/search_scenario_b.py RUN_DIR [RUN_DIR ...]``

Reads each run's ``scores/epoch_E.json`` (every ordering's score of every item, with the item's
role, leaked or clean) and prints, per run and epoch, every candidate's ROC AUC (leaked above
clean) and its true-positive rate at a 5% false-positive rate (threshold = the 95th percentile of
the clean items' statistic at that epoch: a best case for any calibration). The candidates are
per-item statistics of the ordering scores that need no label and no other item:

* ``slot_agreement``: the calibrated detector's statistic (``core.scenario_b_statistics``): the
  correlation of the scores with the slots each ordering shares with the best one, which counts
  twice.
* ``studentised_max``: ``(max - mean) / sd``, the calibrated detector's earlier statistic.
* ``additive_r2``: R^2 of the additive option-by-slot least-squares fit. Memorising one ordering
  raises every ordering that shares options in the same slots, which an additive fit captures.
* ``agreement_best``: correlation of the scores with the number of slots each ordering shares
  with the best ordering.
* ``agreement_max``: the largest such correlation over every ordering taken as the candidate.
* ``prefix_best``: studentised mean of the orderings whose first option is the best ordering's,
  against the rest (the best ordering itself left out).

Per run and epoch, ``dataset best case`` is what a dataset-level test of ``slot_agreement`` could
reach with a perfectly calibrated null (the clean items' own law, which no user has): a rank test
of all the items' statistics against that law, with an infinitely large null sample and with one of
as many items as the run (what a control task of the same size gives), each at the advantage the
run's AUC implies for the mix of leaked and clean items; and the count above the clean items' 95th
percentile against Binomial(N, 0.05). If these p-values are above 0.05, no test
of this statistic decides "leakage" on this run, however its null is estimated.

``likelihood_per_zlib_byte`` is a membership reference, not a detector: the best ordering's score
divided by the zlib-compressed size of its option block (how much likelier the text is than its
compressibility suggests). It measures how familiar the text is, not how its options are ordered,
so it has no null a user can get: a clean model also finds real items likelier than any control
text, and familiar text (famous quotes, textbook definitions) likelier than rare text. It shows
how much of the fine-tuning's effect lies outside the orderings.

Two references, not detectors: ``vs_untouched_max`` is ``studentised_max`` of the scores minus the
untouched model's (epoch 0) scores of the same orderings (what a reference model would give), and
``oracle_trained_z`` the z-score of the ordering the item was trained on (from ``split.json``;
unknown in practice). Its AUC is taken against every ordering's z-score of the clean items: what
a test that knew the trained ordering would reach. ``independent_bound`` is what the maximum (for
one raised value among independent ones, close to the best test) reaches when it does not know
it: each leaked item's trained ordering raised by its measured oracle z among n independent
standard normals, against n unraised ones. The gap between the two is the price of searching for
the ordering; a statistic of real scores can close it only through the structure memorisation
leaves in the other orderings.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np
from scipy import stats

from lm_eval_leakage.core.scenario_b_statistics import slot_agreement_design
from lm_eval_leakage.core.templates import native_block, reference_block

BLOCKS = {"leak_mmlu": reference_block, "leak_mmlu_native": native_block}
"""The option block each detection task scores (for ``likelihood_per_zlib_byte``)."""


def _design(perms: np.ndarray) -> np.ndarray:
    n, k = perms.shape
    x = np.zeros((n, k * k))
    for slot in range(k):
        x[np.arange(n), slot * k + perms[:, slot]] = 1.0
    return x


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def candidates(scores: np.ndarray, perms: np.ndarray) -> dict[str, float]:
    """Every candidate statistic of one item (higher = more leaked)."""
    s = scores - scores.mean()
    sd = scores.std(ddof=1)
    best = int(np.argmax(scores))
    fitted = _design(perms) @ np.linalg.lstsq(_design(perms), s, rcond=None)[0]
    agreement = (perms[:, None, :] == perms[None, :, :]).sum(axis=2)  # (n, n) shared slots
    same_first = perms[:, 0] == perms[best, 0]
    same_first[best] = False
    rest = ~same_first
    rest[best] = False
    prefix = (scores[same_first].mean() - scores[rest].mean()) / sd if same_first.any() and rest.any() else 0.0
    return {
        "slot_agreement": float(slot_agreement_design(perms).compute(scores[None, :], None)[0][0]),  # type: ignore[arg-type]
        "studentised_max": float((scores.max() - scores.mean()) / sd),
        "additive_r2": float((fitted**2).sum() / (s**2).sum()),
        "agreement_best": _corr(scores, agreement[best].astype(float)),
        "agreement_max": max(_corr(scores, agreement[c].astype(float)) for c in range(len(scores))),
        "prefix_best": float(prefix),
    }


def _all(item: dict, untouched: dict[str, np.ndarray], shown: dict[str, list[int]], texts: dict[str, dict],
         task: str) -> dict[str, float]:
    scores, perms = np.array(item["scores"], float), np.array(item["perms"], int)
    out = candidates(scores, perms)
    options = texts[item["id"]]["choices"]
    block = BLOCKS[task]([options[j] for j in perms[int(np.argmax(scores))]])
    out["likelihood_per_zlib_byte"] = float(scores.max() / len(zlib.compress(block.encode("utf-8"))))
    diff = scores - untouched[item["id"]]
    out["vs_untouched_max"] = float((diff.max() - diff.mean()) / diff.std(ddof=1)) if diff.std() > 0 else 0.0
    trained = shown.get(item["id"])
    match = [j for j, p in enumerate(perms.tolist()) if trained and p == list(trained)]
    out["oracle_trained_z"] = float((scores[match[0]] - scores.mean()) / scores.std(ddof=1)) if match else float("nan")
    return out


def _zscores(item: dict) -> np.ndarray:
    scores = np.array(item["scores"], float)
    return (scores - scores.mean()) / scores.std(ddof=1)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC: P(positive > negative) + P(tie) / 2."""
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + ties / 2)


def independent_bound(shifts: np.ndarray, n: int, draws: int = 200, seed: int = 0) -> tuple[float, float]:
    """AUC and TPR at 5% FPR of the maximum of ``n`` independent standard normals, one of them raised
    by a leaked item's measured shift (each of ``shifts`` ``draws`` times), against ``n`` unraised
    ones: the search for the raised ordering at its best, simulated."""
    rng = np.random.default_rng(seed)
    raised = np.repeat(shifts, draws)
    leaked = np.maximum(raised + rng.standard_normal(raised.size), rng.standard_normal((raised.size, n - 1)).max(axis=1))
    clean = rng.standard_normal((raised.size, n)).max(axis=1)
    return auc(leaked, clean), tpr_at(leaked, clean)


def tpr_at(positive: np.ndarray, negative: np.ndarray, fpr: float = 0.05) -> float:
    threshold = np.quantile(negative, 1 - fpr)
    return float((positive > threshold).mean())


def dataset_best_case(leaked: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """One-sided p-values of dataset-level tests of one statistic with its null known exactly.

    The null is the clean items' own law. ``rank_infinite``: the mean normalised rank of all the
    items' values in that law against 1/2 (null standard deviation ``1 / sqrt(12 N)``);
    ``rank_equal``: the Mann-Whitney test of all the items against a null sample of as many values
    (normal approximation); ``count_95``: the number of items above the clean 95th percentile
    against Binomial(N, 0.05). Expected values from the run's AUC, not resampled.
    """
    n = leaked.size + clean.size
    advantage = leaked.size / n * (auc(leaked, clean) - 0.5)  # the mix's AUC against the null, minus 1/2
    threshold = np.quantile(clean, 0.95)
    above = int((leaked > threshold).sum() + (clean > threshold).sum())
    return {
        "rank_infinite": float(stats.norm.sf(advantage / np.sqrt(1 / (12 * n)))),
        "rank_equal": float(stats.norm.sf(advantage / np.sqrt((2 * n + 1) / (12 * n * n)))),
        "count_95": float(stats.binom.sf(above - 1, n, 0.05)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    for run in args.runs:
        untouched = {i["id"]: np.array(i["scores"], float)
                     for i in json.loads((run / "scores" / "epoch_0.json").read_text(encoding="utf-8"))["items"]}
        shown = json.loads((run / "split.json").read_text(encoding="utf-8"))["shown"]
        task = json.loads((run / "run.json").read_text(encoding="utf-8"))["config"].get("task") or "leak_mmlu"
        if task not in BLOCKS:
            raise SystemExit(f"{run}: scored with {task}; likelihood_per_zlib_byte knows {sorted(BLOCKS)}")
        texts = {(r := json.loads(line))["id"]: r for line in (run / "items.jsonl").read_text(encoding="utf-8").splitlines()}
        for path in sorted((run / "scores").glob("epoch_*.json"), key=lambda p: int(p.stem.split("_")[1])):
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = [(item["role"], _all(item, untouched, shown, texts, task)) for item in data["items"]]
            names = list(rows[0][1])
            print(f"{run.name} epoch {data['epoch']}: {sum(r == 'leaked' for r, _ in rows)} leaked, "
                  f"{sum(r == 'clean' for r, _ in rows)} clean")
            for name in names:
                pos = np.array([c[name] for r, c in rows if r == "leaked"])
                neg = np.array([c[name] for r, c in rows if r == "clean"])
                if name == "oracle_trained_z":  # clean items were trained on no ordering
                    every = np.concatenate([_zscores(item) for item in data["items"] if item["role"] == "clean"])
                    n = len(data["items"][0]["scores"])
                    bound = independent_bound(pos, n)
                    print(f"  {name:16s} mean over leaked items {pos.mean():+.2f} "
                          f"(above 1.645 for {(pos > 1.645).mean():.2f} of them); AUC {auc(pos, every):.3f}  "
                          f"TPR@5%FPR {tpr_at(pos, every):.3f} against every clean ordering")
                    print(f"  {'independent_bound':16s} AUC {bound[0]:.3f}  TPR@5%FPR {bound[1]:.3f} "
                          f"(best test not knowing the ordering, {n} independent scores)")
                    continue
                print(f"  {name:16s} AUC {auc(pos, neg):.3f}  TPR@5%FPR {tpr_at(pos, neg):.3f}")
                if name == "slot_agreement":
                    best = dataset_best_case(pos, neg)
                    print(f"  {'dataset best case':16s} p: rank test, infinite null {best['rank_infinite']:.2g}; "
                          f"null of {len(rows)} items {best['rank_equal']:.2g}; count above the clean 95th "
                          f"percentile {best['count_95']:.2g}")


if __name__ == "__main__":
    main()
