"""Every figure of a run recomputed from its ``scores/``: ``validation.json``, ``validation.md``, ``roc.png``.

Needs no model: :func:`write_report` can be re-run on a finished (or partly finished) output folder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_leakage.core.pipeline import ItemRecord
from lm_eval_leakage.validation.detectors import (
    FPR_TARGET,
    dataset_figures,
    detectors,
    evaluate_epoch,
    item_records,
    summary_statistics,
)
from lm_eval_leakage.validation.roc import roc_figure
from lm_eval_leakage.validation.tables import markdown_report

EpochScores = tuple[int, np.ndarray, np.ndarray, np.ndarray, list[str]]


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` and numpy scalars and tuples as plain JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


def load_epoch_scores(out_dir: Path) -> list[EpochScores]:
    """``(epoch, labels, scores, perms, ids)`` for every ``scores/epoch_E.json``, by epoch."""
    rows = []
    for path in (out_dir / "scores").glob("epoch_*.json"):
        payload = json.loads(path.read_text(encoding="utf-8"))
        items = payload["items"]
        labels = np.array([it["role"] == "leaked" for it in items])
        lengths = {len(it["scores"]) for it in items}
        if len(lengths) != 1:
            raise ValueError(f"{path}: items have different numbers of orderings {sorted(lengths)}")
        scores = np.array([it["scores"] for it in items], dtype=np.float64)
        perms = np.array([it["perms"] for it in items], dtype=np.int64)
        rows.append((int(payload["epoch"]), labels, scores, perms, [it["id"] for it in items]))
    return sorted(rows, key=lambda row: row[0])


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _trained_ordering_first(
    ids: Sequence[str], best: Sequence[int], perms: np.ndarray, shown: Mapping[str, list[int]]
) -> int:
    """Scenario-b check: how many leaked items score best in the ordering they were trained in."""
    return sum(
        1
        for item_id, b, perm_rows in zip(ids, best, perms, strict=True)
        if item_id in shown and list(perm_rows[b]) == shown[item_id]
    )


def _epoch_figures(
    epoch: EpochScores,
    records: Sequence[ItemRecord],
    untouched: Sequence[ItemRecord] | None,
    shown: Mapping[str, list[int]],
    thresholds: tuple[float, float],
) -> dict:
    """``{"sanity", "detectors", "dataset"}`` of one scored epoch.

    Args:
        epoch: The epoch's scores (:func:`load_epoch_scores`).
        records: Their :func:`~lm_eval_leakage.validation.detectors.item_records`.
        untouched: The untouched model's records (``None`` for epoch 0 itself).
        shown: The orderings the leaked items were trained in (``split.json``).
        thresholds: ``alpha`` and ``z_threshold`` of the detectors.
    """
    _, labels, scores, perms, ids = epoch
    alpha, z_threshold = thresholds
    metrics = evaluate_epoch(labels, scores, perms, alpha=alpha, z_threshold=z_threshold, records=records)
    sanity = summary_statistics(labels, records)
    best = sanity.pop("_best")
    if shown:
        sanity["leaked_trained_ordering_first"] = _trained_ordering_first(ids, best, perms, shown)  # type: ignore[arg-type]
    return {
        "sanity": sanity,
        "detectors": {k: asdict(v) for k, v in metrics.items()},
        "dataset": dataset_figures(records, untouched),
    }


def write_report(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Recompute every figure from ``scores/`` and write ``validation.json``, ``validation.md``, ``roc.png``.

    Per scored epoch, ``validation.json`` holds ``"sanity"`` (where the original ordering ranks among
    the leaked and among the clean items), ``"detectors"`` (every detector against the known labels) and ``"dataset"`` (lm-eval's
    dataset-level figures over all the scored items and their change against the untouched model:
    :func:`~lm_eval_leakage.validation.detectors.dataset_figures`). Can be re-run on a finished
    (or partly finished) output folder without a model.
    """
    out = Path(out_dir)
    run_info = _read_json(out / "run.json")
    cfg = run_info.get("config", {})
    alpha, z_threshold = float(cfg.get("alpha", 0.05)), float(cfg.get("z_threshold", 1.645))
    shown = _read_json(out / "split.json").get("shown", {})
    scored = load_epoch_scores(out)
    records = {epoch[0]: item_records(epoch[2], epoch[3]) for epoch in scored}
    untouched = records.get(0)
    epochs = {
        str(epoch[0]): _epoch_figures(
            epoch, records[epoch[0]], None if epoch[0] == 0 else untouched, shown, (alpha, z_threshold)
        )
        for epoch in scored
    }
    report = {
        **run_info,
        "detectors": [asdict(d) for d in detectors(alpha=alpha, z_threshold=z_threshold)],
        "fpr_target": FPR_TARGET,
        "epochs": epochs,
    }
    (out / "validation.json").write_text(json.dumps(jsonable(report), indent=1), encoding="utf-8")
    (out / "validation.md").write_text(markdown_report(report), encoding="utf-8")
    if epochs:
        roc_figure(report, out / "roc.png")
    return report


__all__ = ["jsonable", "load_epoch_scores", "write_report"]
