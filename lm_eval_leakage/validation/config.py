"""What defines one controlled-contamination run: :class:`ValidationConfig` and the quick preset."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS

Scenario = Literal["a", "b"]
TrainFormat = Literal["template", "native"]
SCENARIOS: tuple[Scenario, ...] = ("a", "b")
TRAIN_FORMATS: tuple[TrainFormat, ...] = ("template", "native")
MIN_ITEMS = 4
"""Fewest items a run scores."""


def _exact(fraction: float) -> Fraction:
    """``fraction`` as the decimal it is written as (``0.1`` is 1/10, not the nearest binary double)."""
    return Fraction(repr(float(fraction)))


def leaked_count(n_items: int, leaked_fraction: float) -> int:
    """Number of leaked items among ``n_items``: ``leaked_fraction * n_items`` rounded to the nearest integer.

    The product is taken exactly, with ``leaked_fraction`` read as the decimal it is written as,
    and a tie (a product exactly halfway between two integers) is rounded *down*: 0.5 of 61 items
    is 30, 0.1 of 15 is 1, 0.1 of 25 is 2. So ``leaked_fraction = 0.5`` leaks ``n_items // 2``.
    No bounds are applied here; :class:`ValidationConfig` rejects a count below 1 or above
    ``n_items - 1``.
    """
    return math.ceil(_exact(leaked_fraction) * n_items - Fraction(1, 2))


def min_items(leaked_fraction: float) -> int:
    """Fewest items for which ``leaked_fraction`` leaves at least one leaked and one clean item.

    :func:`leaked_count` is at least 1 exactly when ``F * N > 1/2`` and at most ``N - 1`` exactly
    when ``(1 - F) * N >= 1/2``; both hold from some ``N`` on. Never below :data:`MIN_ITEMS`.
    """
    fraction = _exact(leaked_fraction)
    enough_leaked = math.floor(1 / (2 * fraction)) + 1
    enough_clean = math.ceil(1 / (2 * (1 - fraction)))
    return max(MIN_ITEMS, enough_leaked, enough_clean)


@dataclass(frozen=True)
class ValidationConfig:
    """Everything that defines one validation run (written to ``run.json`` and ``validation.json``).

    Attributes:
        out_dir: Output folder (created).
        n_items: Items scored; :attr:`n_leaked` of them leaked, the rest clean.
        leaked_fraction: Fraction of the ``n_items`` that is leaked, strictly between 0 and 1;
            the count is rounded as :func:`leaked_count` says (nearest integer, a tie down, so
            0.5 leaks ``n_items // 2``) and must leave at least one leaked and one clean item.
        epochs: Epochs after which a checkpoint is saved and scored (sorted, each >= 1).
        scenario: ``"a"`` (original order trained) or ``"b"`` (one random ordering per item).
        train_format: ``"template"`` (the detection template) or ``"native"`` (exam format).
        filler: Further items trained on (same scenario and format) but not scored.
        model_dir: Local Hugging Face causal LM; ``None`` for the offline SmolLM2-135M.
        data_files: Local data in the benchmark's schema; ``None`` for the offline MMLU copy.
        benchmark: Key of ``benchmarks.BENCHMARKS``; the detection task is ``leak_<benchmark>``.
        task: lm-eval task to detect with; ``None`` for ``leak_<benchmark>``.
        seed: Seeds the item sample and split, the scenario-b orderings and the training order.
        learning_rate: AdamW learning rate (constant; no warm-up, no weight decay).
        train_batch_size: Sequences per optimiser step.
        max_length: Items whose training text (either format, original order, plus the
            end-of-text token) is longer than this many tokens are not sampled.
        eval_batch_size: lm-eval batch size (``hf-prefix``: rows of 256 new tokens per forward pass).
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        alpha: Level of the p-value detectors' default threshold.
        z_threshold: Default threshold of ``orig_z``.
        exchangeable_only: Sample only items that pass the exchangeability guard.
        keep_checkpoints: Keep the checkpoint folders after scoring them.
    """

    out_dir: str
    n_items: int = 60
    leaked_fraction: float = 0.5
    epochs: tuple[int, ...] = (1, 2, 3, 5, 10)
    scenario: Scenario = "a"
    train_format: TrainFormat = "template"
    filler: int = 0
    model_dir: str | None = None
    data_files: str | None = None
    benchmark: str = "mmlu"
    task: str | None = None
    seed: int = 0
    learning_rate: float = 5e-5
    train_batch_size: int = 4
    max_length: int = 128
    eval_batch_size: int = 24
    device: str | None = None
    alpha: float = 0.05
    z_threshold: float = 1.645
    exchangeable_only: bool = True
    keep_checkpoints: bool = True

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}, got {self.scenario!r}")
        if self.train_format not in TRAIN_FORMATS:
            raise ValueError(f"train_format must be one of {TRAIN_FORMATS}, got {self.train_format!r}")
        if self.n_items < MIN_ITEMS:
            raise ValueError(f"n_items must be at least {MIN_ITEMS}, got {self.n_items}")
        self._check_leaked_fraction()
        if not self.epochs or any(int(e) < 1 for e in self.epochs):
            raise ValueError(f"epochs must be a non-empty list of integers >= 1, got {self.epochs}")
        if self.filler < 0:
            raise ValueError(f"filler must be >= 0, got {self.filler}")
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; expected one of {sorted(BENCHMARKS)}")
        object.__setattr__(self, "epochs", tuple(sorted({int(e) for e in self.epochs})))

    def _check_leaked_fraction(self) -> None:
        fraction = self.leaked_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(
                f"leaked_fraction must be a number strictly between 0 and 1 (e.g. 0.1 leaks 10% of the "
                f"items), got {fraction!r}"
            )
        object.__setattr__(self, "leaked_fraction", float(fraction))
        n_leaked = leaked_count(self.n_items, fraction)
        if not 1 <= n_leaked <= self.n_items - 1:
            raise ValueError(
                f"n_items={self.n_items} is too small for leaked_fraction={fraction:g}: it rounds to "
                f"{n_leaked} leaked and {self.n_items - n_leaked} clean items, and a run needs at least "
                f"one of each (n_items >= {min_items(fraction)} for this fraction)"
            )

    @property
    def n_leaked(self) -> int:
        """Number of leaked items (:func:`leaked_count` of ``n_items`` and ``leaked_fraction``)."""
        return leaked_count(self.n_items, self.leaked_fraction)

    @property
    def detection_task(self) -> str:
        return self.task or f"leak_{self.benchmark}"


QUICK_OVERRIDES: dict[str, Any] = {
    "n_items": 8,
    "epochs": (1,),
    "learning_rate": 1e-3,
    "train_batch_size": 1,
    "max_length": 64,
}
"""The quick configuration (test suite, smoke runs): a few short items, one epoch, a higher rate."""


def quick_config(out_dir: str | os.PathLike[str], **overrides: Any) -> ValidationConfig:
    """The quick configuration, with any field overridden."""
    return ValidationConfig(out_dir=str(out_dir), **{**QUICK_OVERRIDES, **overrides})


__all__ = [
    "MIN_ITEMS",
    "QUICK_OVERRIDES",
    "SCENARIOS",
    "TRAIN_FORMATS",
    "Scenario",
    "TrainFormat",
    "ValidationConfig",
    "leaked_count",
    "min_items",
    "quick_config",
]
