"""Per-item leakage statistics: where the original ordering ranks among an item's orderings.

Scores are summed log-likelihoods of an item's option block, one per ordering, with ordering 0 the
original (see ``orderings``). The flag is Algorithm 1 of Ni et al. (arXiv 2409.01790); the rank,
permutation p-value, z-score and gap ratio are this project's additions (docs/method.md, section
5.1).

Pure module: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Status = Literal["ok", "nonfinite", "constant", "too_few", "too_long"]
STATUS_REASONS: dict[str, str] = {
    "ok": "scored",
    "nonfinite": "a score is NaN or infinite (the model returned no usable log-likelihood)",
    "constant": "every ordering has the same score, so no ordering can stand out",
    "too_few": "fewer than two distinct orderings, so there is nothing to compare",
    "too_long": "the item does not fit the model's context window, so it was not scored (the run's warning gives its lengths)",
}


@dataclass(frozen=True)
class ItemStats:
    """Statistics of the original ordering among one item's orderings.

    Attributes:
        status: ``"ok"`` or why the item is excluded (see ``STATUS_REASONS``); every other field
            is NaN/False when the status is not ``"ok"``.
        n_orderings: Number of scored orderings ``n``.
        original_first: Algorithm 1's flag: the original scores >= every other ordering (ties
            count as flagged, as in the reference).
        rank: Normalised mid-rank of the original, ``(above + tied / 2) / (n - 1)`` where
            ``above`` counts orderings scoring strictly higher and ``tied`` those scoring equal;
            0 = highest, 1 = lowest, expectation 0.5 under no leakage.
        pvalue: Exact permutation p-value of the original, ``(1 + above + tied) / n``: the
            probability, under exchangeable orderings, that a random ordering scores at least as
            high. Ties count against the original, so the test is conservative with ties.
        zscore: ``(s_0 - mean(s)) / sd(s)`` with the sample standard deviation (ddof = 1).
        gap_ratio: ``(max - second) / (max - min)`` of the scores, whichever ordering is best.
        best: Index of the best-scoring ordering (the first one on ties).
    """

    status: Status
    n_orderings: int
    original_first: bool
    rank: float
    pvalue: float
    zscore: float
    gap_ratio: float
    best: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def item_status(scores: np.ndarray) -> Status:
    """Whether ``scores`` can be analysed, or why not."""
    if scores.shape[0] < 2:
        return "too_few"
    if not np.all(np.isfinite(scores)):
        return "nonfinite"
    if np.all(scores == scores[0]):
        return "constant"
    return "ok"


def item_stats(scores: Sequence[float] | np.ndarray) -> ItemStats:
    """Compute :class:`ItemStats` for one item.

    Args:
        scores: One log-likelihood per ordering; ``scores[0]`` is the original ordering.

    Returns:
        The item's statistics; an item with fewer than two orderings, a non-finite score or all
        scores equal gets that status and NaN statistics instead of an exception.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    status = item_status(s)
    if status != "ok":
        return unscored(status, int(s.shape[0]))
    batch = batch_item_stats(s[None, :])
    return ItemStats(
        status="ok",
        n_orderings=int(s.shape[0]),
        original_first=bool(batch["original_first"][0]),
        rank=float(batch["rank"][0]),
        pvalue=float(batch["pvalue"][0]),
        zscore=float(batch["zscore"][0]),
        gap_ratio=float(batch["gap_ratio"][0]),
        best=int(batch["best"][0]),
    )


def batch_item_stats(scores: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised per-item statistics for items that all have ``n`` orderings.

    Args:
        scores: Array of shape ``(items, n)`` with ``n >= 2``, finite and not constant per row
            (check with :func:`item_status` first; rows that are constant get NaN z-scores and
            gap ratios).

    Returns:
        Arrays ``original_first``, ``rank``, ``pvalue``, ``zscore``, ``gap_ratio`` and ``best``,
        one entry per item, defined as in :class:`ItemStats`.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"expected shape (items, n>=2), got {s.shape}")
    n = s.shape[1]
    original = s[:, :1]
    above = (s[:, 1:] > original).sum(axis=1)
    tied = (s[:, 1:] == original).sum(axis=1)
    ordered = np.sort(s, axis=1)
    spread = ordered[:, -1] - ordered[:, 0]
    sd = s.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(sd > 0, (s[:, 0] - s.mean(axis=1)) / sd, np.nan)
        gap_ratio = np.where(spread > 0, (ordered[:, -1] - ordered[:, -2]) / spread, np.nan)
    return {
        "original_first": above == 0,
        "rank": (above + 0.5 * tied) / (n - 1),
        "pvalue": (1.0 + above + tied) / n,
        "zscore": zscore,
        "gap_ratio": gap_ratio,
        "best": np.argmax(s, axis=1),
    }


def unscored(status: Status, n_orderings: int) -> ItemStats:
    """The statistics of an item left out for ``status``: NaN everywhere, never a silent 0."""
    return ItemStats(status, n_orderings, False, np.nan, np.nan, np.nan, np.nan, -1)
