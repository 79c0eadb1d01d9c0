"""What defines one controlled-contamination run: :class:`ValidationConfig` and the quick preset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS

Scenario = Literal["a", "b"]
TrainFormat = Literal["template", "native"]
SCENARIOS: tuple[Scenario, ...] = ("a", "b")
TRAIN_FORMATS: tuple[TrainFormat, ...] = ("template", "native")


@dataclass(frozen=True)
class ValidationConfig:
    """Everything that defines one validation run (written to ``run.json`` and ``validation.json``).

    Attributes:
        out_dir: Output folder (created).
        n_items: Items scored; ``n_items // 2`` leaked, the rest clean.
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
        eval_batch_size: lm-eval batch size (24 = one four-option item per batch).
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        alpha: Level of the p-value detectors' default threshold.
        z_threshold: Default threshold of ``orig_z``.
        exchangeable_only: Sample only items that pass the exchangeability guard.
        keep_checkpoints: Keep the checkpoint folders after scoring them.
    """

    out_dir: str
    n_items: int = 60
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
        if self.n_items < 4:
            raise ValueError(f"n_items must be at least 4 (two leaked, two clean), got {self.n_items}")
        if not self.epochs or any(int(e) < 1 for e in self.epochs):
            raise ValueError(f"epochs must be a non-empty list of integers >= 1, got {self.epochs}")
        if self.filler < 0:
            raise ValueError(f"filler must be >= 0, got {self.filler}")
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; expected one of {sorted(BENCHMARKS)}")
        object.__setattr__(self, "epochs", tuple(sorted({int(e) for e in self.epochs})))

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
    "QUICK_OVERRIDES",
    "SCENARIOS",
    "TRAIN_FORMATS",
    "Scenario",
    "TrainFormat",
    "ValidationConfig",
    "quick_config",
]
