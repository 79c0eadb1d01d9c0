"""The ROC figure of a validation run (``roc.png``): one panel per scored epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval_leakage.validation.detectors import FPR_TARGET, with_current_names
from lm_eval_leakage.validation.tables import fmt

ROC_DETECTORS: tuple[tuple[str, str, str], ...] = (
    ("leak_a", "leak_a (paper a)", ":"),
    ("leak_b_d020", "leak_b IsolationForest (paper b)", "--"),
    ("orig_p", "orig_p rank (ours a)", "-"),
    ("orig_z", "orig_z (ours a)", "-"),
    ("leak_b_cal", "leak_b_cal (ours b)", "-."),
)


def _panel(ax: Any, epoch: str, figures: Mapping[str, Any]) -> None:
    """ROC curves of one epoch's detectors, with the diagonal and the target false-positive rate."""
    for name, label, style in ROC_DETECTORS:
        m = figures[name]
        if m["roc_fpr"]:
            ax.plot(m["roc_fpr"], m["roc_tpr"], style, label=f"{label}: AUC {fmt(m['roc_auc'])}", lw=1.6)
    ax.plot([0, 1], [0, 1], color="lightgrey", lw=0.8)
    ax.axvline(FPR_TARGET, color="grey", lw=0.6, ls="--")
    ax.set_title(f"epoch {epoch}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("false-positive rate (clean items)")
    ax.set_ylabel("true-positive rate (leaked items)")
    ax.legend(fontsize=7, loc="lower right")


def roc_figure(report: Mapping[str, Any], path: Path) -> Path:
    """One panel per epoch with the ROC curve of each detector (the three Algorithm 2 deltas share one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = with_current_names(report)["epochs"]
    keys = sorted(epochs, key=int)
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows), squeeze=False)
    cfg = report.get("config", {})
    for ax, e in zip(axes.ravel(), keys, strict=False):
        _panel(ax, e, epochs[e]["detectors"])
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    scenario, train_format = cfg.get("scenario", "?"), cfg.get("train_format", "?")
    fig.suptitle(
        f"Controlled contamination, scenario {scenario}, {train_format} format, "
        + f"{cfg.get('n_items', '?')} items"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["ROC_DETECTORS", "roc_figure"]
