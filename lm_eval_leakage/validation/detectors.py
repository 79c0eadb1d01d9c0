"""The detectors compared by the validation, and their detection figures against the known split.

Each detector has a continuous ``score`` (higher means more leaked, used for ROC) and a default
``flag``; every per-item number comes from :func:`lm_eval_leakage.core.pipeline.score_item` and
the calibrated p-values from :func:`lm_eval_leakage.core.pipeline.summarise`. Each is named after
the lm-eval column that aggregates the same per-item figure (``harness.columns``):

* ``leak_a`` (paper's Algorithm 1, scenario a): flag when the original ordering scores >= all
  others; the score is the flag itself (the rule has no continuous score, so its ROC curve has one
  corner).
* ``leak_b_d020``, ``leak_b_d017``, ``leak_b_d015`` (paper's Algorithm 2, scenario b):
  IsolationForest score of the best ordering below delta = -0.20, -0.17, -0.15; score = minus the
  IsolationForest score (the same for the three, so they share AUC and TPR at 5% FPR).
* ``orig_p`` (this project, scenario a): the original ordering's exact permutation p-value
  ``(1 + above + tied) / n``; flag when ``p <= alpha``; score = ``-p``.
* ``orig_z`` (this project, scenario a): the original ordering's z-score among the item's
  orderings; flag when ``z >= z_threshold`` (1.645, one-sided 5% under Gaussian exchangeable
  scores); score = ``z``.
* ``leak_b_cal`` (this project, scenario b): the calibrated scenario-b p-value (default statistic,
  slot agreement; mirror null pooled over the scored items of the same fitted model and number of
  orderings, as lm-eval uses on runs without control items); flag when ``p < alpha``; score = the
  statistic ``T+``.

Positives are the leaked items. See ``docs/method.md`` for the statistics.

:func:`dataset_figures` answers the other question, the one a user of the tool asks of a model:
did it see the benchmark? It reads lm-eval's dataset-level columns from ``pipeline.summarise``
over all the scored items, leaked and clean together, with no use of the labels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.core import pipeline
from lm_eval_leakage.harness.columns import COLUMNS
from lm_eval_leakage.validation.config import Scenario

PAPER_DELTAS: tuple[float, ...] = (-0.20, -0.17, -0.15)
"""Algorithm 2 thresholds of the paper's Table 2 (four options)."""
FPR_TARGET = 0.05
"""False-positive rate at which the true-positive rate is reported."""

Outputs = dict[str, dict[str, np.ndarray]]

# Names the detectors had before they were named after lm-eval's columns. Reports written then
# (``validation.json``) still use them; :func:`with_current_names` reads them under the new names.
OLD_NAMES: dict[str, str] = {
    "alg1": "leak_a",
    "perm_p": "orig_p",
    "alg2_d020": "leak_b_d020",
    "alg2_d017": "leak_b_d017",
    "alg2_d015": "leak_b_d015",
    "calib_b": "leak_b_cal",
}


def with_current_names(report: Mapping[str, Any]) -> dict[str, Any]:
    """A ``validation.json`` report with any old detector names (:data:`OLD_NAMES`) replaced.

    Renames the keys of every epoch's ``"detectors"`` and the ``"name"`` of each entry of the
    report's ``"detectors"`` list; everything else is returned as it is (a report already written
    with the current names comes back equal).
    """
    out = dict(report)
    if isinstance(report.get("epochs"), Mapping):
        out["epochs"] = {
            epoch: (
                {**figures, "detectors": {OLD_NAMES.get(k, k): v for k, v in figures["detectors"].items()}}
                if isinstance(figures, Mapping) and isinstance(figures.get("detectors"), Mapping)
                else figures
            )
            for epoch, figures in report["epochs"].items()
        }
    if isinstance(report.get("detectors"), list):
        out["detectors"] = [
            {**d, "name": OLD_NAMES.get(d["name"], d["name"])} if isinstance(d, Mapping) and "name" in d else d
            for d in report["detectors"]
        ]
    return out


@dataclass(frozen=True)
class Detector:
    """A detector as reported: name, which rule it is, and its default threshold in words."""

    name: str
    origin: Literal["paper", "this project"]
    scenario: Scenario
    threshold: str


def _leak_b_name(delta: float) -> str:
    """``leak_b_d020`` for delta = -0.20: lm-eval's ``leak_b`` at one of the paper's thresholds."""
    return f"leak_b_d{round(-delta * 100):03d}"


def detectors(*, alpha: float = 0.05, z_threshold: float = 1.645) -> tuple[Detector, ...]:
    """The detectors evaluated, in report order."""
    return (
        Detector("leak_a", "paper", "a", "original ordering scores >= every other (Algorithm 1)"),
        Detector("orig_p", "this project", "a", f"permutation p-value of the original <= {alpha:g}"),
        Detector("orig_z", "this project", "a", f"z-score of the original >= {z_threshold:g}"),
        *(Detector(_leak_b_name(d), "paper", "b", f"IsolationForest score of the best < {d:.2f}") for d in PAPER_DELTAS),
        Detector(
            "leak_b_cal", "this project", "b",
            f"calibrated scenario-b p-value (slot agreement, mirror null) < {alpha:g}",
        ),
    )


def item_records(scores: np.ndarray, perms: np.ndarray) -> list[pipeline.ItemRecord]:
    """One :func:`pipeline.score_item` record per item (Algorithm 2's IsolationForest included).

    Args:
        scores: ``(m, n)`` ordering scores (or ``m`` rows of varying length); ordering 0 is the original.
        perms: ``(m, n, k)`` orderings of each item (or ``m`` arrays of varying length).
    """
    return [pipeline.score_item(row, perm) for row, perm in zip(scores, perms, strict=True)]


def outputs_from_records(
    records: Sequence[pipeline.ItemRecord], *, alpha: float = 0.05, z_threshold: float = 1.645
) -> Outputs:
    """:func:`detector_outputs` from records already scored (see :func:`item_records`)."""
    ok = np.array([r.ok for r in records], dtype=bool)
    first = np.array([r.stats.original_first for r in records], dtype=bool)
    pvalue = np.array([r.stats.pvalue for r in records], dtype=np.float64)
    zscore = np.array([r.stats.zscore for r in records], dtype=np.float64)
    iso = np.array([r.isolation for r in records], dtype=np.float64)
    out: Outputs = {
        "leak_a": {"score": first.astype(float), "flag": first, "valid": ok},
        "orig_p": {"score": -pvalue, "flag": pvalue <= alpha, "valid": ok},
        "orig_z": {"score": zscore, "flag": zscore >= z_threshold, "valid": ok & np.isfinite(zscore)},
    }
    for delta in PAPER_DELTAS:
        out[_leak_b_name(delta)] = {"score": -iso, "flag": iso < delta, "valid": ok}
    # The mirror null, as an lm-eval run without control items uses it (a validation run has none).
    calib = pipeline.summarise(records, pipeline.Settings(b_null="mirror")).b_pvalues
    statistic = np.array([r.b_statistic for r in records], dtype=np.float64)
    # Score = the statistic itself: the mirror p-value is a coarse (1/m steps) monotone map of it.
    out["leak_b_cal"] = {"score": statistic, "flag": calib < alpha, "valid": ok & np.isfinite(calib)}
    return out


def detector_outputs(
    scores: np.ndarray,
    perms: np.ndarray,
    *,
    alpha: float = 0.05,
    z_threshold: float = 1.645,
) -> Outputs:
    """Per-detector continuous scores (higher = more leaked) and default flags.

    Args:
        scores: ``(m, n)`` ordering scores; ordering 0 is the original.
        perms: ``(m, n, k)`` orderings of each item.
        alpha: Level of the p-value detectors.
        z_threshold: Threshold of ``orig_z``.

    Returns:
        ``{detector: {"score": (m,), "flag": (m,) bool, "valid": (m,) bool}}``; an item whose
        scores cannot be analysed (``ItemRecord.ok`` false) or that gets no calibrated p-value is
        marked invalid for that detector and left out of its metrics.
    """
    return outputs_from_records(item_records(scores, perms), alpha=alpha, z_threshold=z_threshold)


@dataclass(frozen=True)
class DetectionMetrics:
    """Detection figures of one detector on one checkpoint (positives: leaked items).

    Attributes:
        n_leaked, n_clean: Items counted (valid for this detector).
        accuracy, precision, recall, f1: At the default threshold; precision is NaN when nothing
            is flagged, F1 NaN when precision and recall are both 0 or undefined.
        fpr_clean: Flagged fraction of the clean half at the default threshold.
        roc_auc: Area under the ROC curve of the detector's score (ties count half).
        tpr_at_fpr: Largest true-positive rate among thresholds whose false-positive rate is at
            most ``FPR_TARGET`` (with 30 clean items: at most one false positive).
        roc_fpr, roc_tpr: The ROC curve's points.
    """

    n_leaked: int
    n_clean: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    fpr_clean: float
    roc_auc: float
    tpr_at_fpr: float
    roc_fpr: tuple[float, ...] = field(repr=False)
    roc_tpr: tuple[float, ...] = field(repr=False)


def _roc(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """ROC points, AUC and TPR at ``FPR_TARGET`` (both classes present)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    # +inf scores (p-values at the floor) would break sklearn; order-preserving replacement.
    x = np.asarray(scores, dtype=np.float64)
    finite = x[np.isfinite(x)]
    top = finite.max() + 1.0 if finite.size else 1.0
    x = np.where(np.isposinf(x), top, np.where(np.isneginf(x), -top, x))
    fpr, tpr, _ = roc_curve(y, x, drop_intermediate=False)
    return fpr, tpr, float(roc_auc_score(y, x)), float(np.max(tpr[fpr <= FPR_TARGET + 1e-12]))


def detection_metrics(labels: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> DetectionMetrics:
    """Classification and ROC figures for one detector.

    Args:
        labels: True for leaked items.
        flags: The detector's default decision.
        scores: The detector's continuous score, higher = more leaked (finite, or +inf).

    Returns:
        The figures; NaN (never a silent 0) where a ratio has a zero denominator, and NaN ROC
        figures when one class is empty.
    """
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    tp, fp = int(np.sum(f & y)), int(np.sum(f & ~y))
    fn, tn = int(np.sum(~f & y)), int(np.sum(~f & ~y))
    n_pos, n_neg = tp + fn, fp + tn
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / n_pos if n_pos else math.nan
    f1 = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else math.nan
    if n_pos and n_neg:
        fpr, tpr, auc, tpr_at = _roc(y, scores)
    else:
        fpr, tpr, auc, tpr_at = np.array([]), np.array([]), math.nan, math.nan
    return DetectionMetrics(
        n_leaked=n_pos,
        n_clean=n_neg,
        accuracy=(tp + tn) / (n_pos + n_neg) if n_pos + n_neg else math.nan,
        precision=precision,
        recall=recall,
        f1=f1,
        fpr_clean=fp / n_neg if n_neg else math.nan,
        roc_auc=auc,
        tpr_at_fpr=tpr_at,
        roc_fpr=tuple(float(v) for v in fpr),
        roc_tpr=tuple(float(v) for v in tpr),
    )


def evaluate_epoch(
    labels: np.ndarray,
    scores: np.ndarray,
    perms: np.ndarray,
    *,
    alpha: float = 0.05,
    z_threshold: float = 1.645,
    records: Sequence[pipeline.ItemRecord] | None = None,
) -> dict[str, DetectionMetrics]:
    """:func:`detection_metrics` of every detector on one checkpoint's scores.

    ``records`` (from :func:`item_records` on the same scores) saves scoring the items again.
    """
    scored = item_records(scores, perms) if records is None else records
    outputs = outputs_from_records(scored, alpha=alpha, z_threshold=z_threshold)
    y = np.asarray(labels, dtype=bool)
    return {
        name: detection_metrics(y[o["valid"]], o["flag"][o["valid"]], o["score"][o["valid"]])
        for name, o in outputs.items()
    }


def summary_statistics(labels: np.ndarray, records: Sequence[pipeline.ItemRecord]) -> dict[str, float]:
    """Sanity figures per half: how often the original ranks first, its mean rank and z-score.

    ``records`` are the items' :func:`item_records`; the result's ``"_best"`` lists each item's
    best-scoring ordering.
    """
    y = np.asarray(labels, dtype=bool)
    first = np.array([r.stats.original_first for r in records])
    rank = np.array([r.stats.rank for r in records], dtype=np.float64)
    z = np.array([r.stats.zscore for r in records], dtype=np.float64)
    best = np.array([r.stats.best for r in records])
    out: dict[str, float] = {}
    for name, mask in (("leaked", y), ("clean", ~y)):
        out[f"{name}_original_first"] = int(np.sum(first[mask]))
        out[f"{name}_mean_rank"] = float(np.nanmean(rank[mask]))
        out[f"{name}_mean_z"] = float(np.nanmean(z[mask]))
        out[f"{name}_n"] = int(np.sum(mask))
    out["_best"] = best.tolist()  # type: ignore[assignment]
    return out


DATASET_COLUMNS: tuple[str, ...] = (
    "leak_a", "leak_a_chance", "leak_a_p", "leak_a_excess", "leak_a_excess_lo", "leak_a_excess_hi",
    "orig_rank", "orig_rank_p",
    "leak_b_cal", "leak_b_cal_excess", "leak_b_cal_lo", "leak_b_cal_hi", "leak_b_cal_p",
    "n_excluded",
)
"""lm-eval's columns (``harness.columns``) reported per checkpoint over all the scored items."""
UNTOUCHED = "_vs_untouched"
"""Suffix of a figure's change against the untouched model (epoch E minus epoch 0)."""
_VS_CONTROL = tuple(c for c in COLUMNS if c.control_only and "_vs_control" in c.name)
UNTOUCHED_COLUMNS: tuple[str, ...] = tuple(c.name.replace("_vs_control", UNTOUCHED) for c in _VS_CONTROL)
"""``leak_a_vs_untouched``, ``..._lo``, ``..._hi``, and the same for ``orig_rank`` and ``leak_b_cal``."""


def dataset_figures(
    records: Sequence[pipeline.ItemRecord], untouched: Sequence[pipeline.ItemRecord] | None = None
) -> dict[str, float | str]:
    """lm-eval's dataset-level figures of one checkpoint, and their change against the untouched model.

    Every figure is read, by the reader lm-eval's aggregation uses (``harness.columns``), from
    :func:`pipeline.summarise` over ``records`` with the default settings (calibrated null
    ``"auto"``: the mirror null, as a run without control items has), as a ``leak_*`` task
    reports them on the same items. Unlike the detectors, nothing here uses the labels: leaked
    and clean items count alike.

    The changes (:data:`UNTOUCHED_COLUMNS`) are the same summary's observed-minus-control figures
    (``leak_a_vs_control``, ...: Newcombe's interval for the two fractions, Welch's for the mean
    rank, each 95%) with ``untouched``, the untouched model's records, as the control set (so the
    calibrated column's null is the untouched model's statistics of the same items). Those
    intervals treat the two samples as independent; the same items scored twice are positively
    correlated, so the intervals are wider than a paired interval would be (conservative).

    Args:
        records: The checkpoint's records (:func:`item_records`), one per scored item.
        untouched: The untouched model's records of the same items; ``None`` (the untouched model
            itself, or a run that has not scored it) leaves the changes NaN.

    Returns:
        ``n_items`` (items with usable scores), ``b_null`` (the null behind ``leak_b_cal``),
        ``verdict`` (the verdict in words a report states for these items with no control task:
        each figure's lift over chance, ``core.verdict``), every column of
        :data:`DATASET_COLUMNS` and of :data:`UNTOUCHED_COLUMNS`; NaN where a figure is undefined.
    """
    figures = pipeline.summarise(records)
    columns = {c.name: c for c in COLUMNS}
    out: dict[str, float | str] = {"n_items": figures.n_items, "b_null": figures.b_null,
                                   "verdict": figures.verdict.text}
    out.update({name: columns[name].read(figures) for name in DATASET_COLUMNS})
    out.update(dict.fromkeys(UNTOUCHED_COLUMNS, math.nan))
    if untouched is not None:
        control = [dataclasses.replace(r, role="control") for r in untouched]
        both = pipeline.summarise([*records, *control])
        out.update({c.name.replace("_vs_control", UNTOUCHED): c.read(both) for c in _VS_CONTROL})
    return out


__all__ = [
    "DATASET_COLUMNS",
    "FPR_TARGET",
    "OLD_NAMES",
    "PAPER_DELTAS",
    "UNTOUCHED",
    "UNTOUCHED_COLUMNS",
    "DetectionMetrics",
    "Detector",
    "dataset_figures",
    "detection_metrics",
    "detector_outputs",
    "detectors",
    "evaluate_epoch",
    "item_records",
    "outputs_from_records",
    "summary_statistics",
    "with_current_names",
]
