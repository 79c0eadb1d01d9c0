"""Controlled-contamination validation: leak a fraction of N items into a model and measure detection.

This reproduces the validation experiment of Ni et al. (arXiv 2409.01790, the paper's Tables 1
and 2; see ``docs/validation.md``) on any local Hugging Face causal LM, by default the offline
SmolLM2-135M and real MMLU items:

1. Draw a seeded sample of N eligible items, split it into leaked and clean items
   (``leaked_fraction`` of them leaked, half by default), plus optional filler items that are
   trained on but not scored (:mod:`.sampling`).
2. Build one training text per leaked (and filler) item, in scenario ``"a"`` (original order) or
   ``"b"`` (one seeded random non-identity ordering per item), in the ``"template"`` or
   ``"native"`` format (:mod:`.sampling`).
3. Fine-tune with a plain torch loop and save a checkpoint after each epoch listed in ``epochs``
   (:mod:`.training`).
4. Score the untouched model (the epoch-0 row) and every checkpoint with lm-eval's
   ``simple_evaluate`` on the project's ``leak_<benchmark>`` task over a JSONL of the N items,
   with ``log_samples`` (:mod:`.scoring`); every figure is recomputed from the logged ordering scores.
5. For every detector (:mod:`.detectors`), compute accuracy, precision, recall and F1 at its
   default threshold, ROC AUC, the true-positive rate at 5% false positives and the
   false-positive rate on the clean items; and, for the whole sample as lm-eval reports it, the
   dataset-level figures and their change against the untouched model. Write ``validation.json``,
   ``validation.md`` (tables laid out like the paper's Tables 1 and 2) and ``roc.png``
   (:mod:`.report`).

Heavy libraries (torch, transformers, lm_eval, matplotlib) are imported inside the functions that
need them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_leakage.validation.config import ValidationConfig
from lm_eval_leakage.validation.report import jsonable, write_report
from lm_eval_leakage.validation.sampling import SampledItem, read_records, sample_items
from lm_eval_leakage.validation.scoring import lm_eval_command, score_with_lm_eval
from lm_eval_leakage.validation.training import OPTIMIZER_FILE, fine_tune, resolve_device

logger = logging.getLogger("lm_eval_leakage.validation.experiment")


def machine_description() -> dict[str, Any]:
    """Where the run happened (CPU count, CPU model, torch threads, GPU if any)."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
            cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
    }


@dataclass
class _Run:
    """The state of one run in progress: what it scores, and what ``run.json`` records."""

    config: ValidationConfig
    out: Path
    model_dir: str
    device: str
    scored: list[SampledItem]
    texts: list[str]
    resume: bool
    previous: dict[str, Any]
    started: float
    cpu_started: float
    timings: dict[str, float] = field(init=False, default_factory=dict)
    # CPU seconds of this process (all its threads): on a shared machine, wall time overstates
    # the cost, and CPU seconds / threads estimates the wall time of an idle machine.
    cpu_timings: dict[str, float] = field(init=False, default_factory=dict)
    training: dict[int, dict[str, float]] = field(init=False, default_factory=dict)
    commands: dict[int, str] = field(init=False, default_factory=dict)
    lm_eval_results: dict[int, dict[str, Any]] = field(init=False, default_factory=dict)
    earlier_wall: float = field(init=False, default=0.0)
    earlier_cpu: float = field(init=False, default=0.0)
    sessions: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        previous = self.previous
        self.timings = dict(previous.get("timings", {}))
        self.cpu_timings = dict(previous.get("cpu_timings", {}))
        self.training = {int(k): v for k, v in previous.get("training", {}).items()}
        self.commands = {int(k): v for k, v in previous.get("lm_eval_commands", {}).items()}
        self.lm_eval_results = {int(k): v for k, v in previous.get("lm_eval_results", {}).items()}
        self.earlier_wall = float(self.timings.get("total_seconds", 0.0))
        self.earlier_cpu = float(self.cpu_timings.get("total_seconds", 0.0))
        self.sessions = int(previous.get("sessions", 0)) + 1

    @property
    def items_jsonl(self) -> Path:
        return self.out / "items.jsonl"

    def score(self, epoch: int, path: str | os.PathLike[str]) -> None:
        """Score one model through lm-eval and write ``scores/epoch_<epoch>.json``."""
        config = self.config
        t0, c0 = time.perf_counter(), time.process_time()
        scores, perms, aggregated = score_with_lm_eval(
            path, self.items_jsonl, task=config.detection_task, batch_size=config.eval_batch_size, device=self.device
        )
        seconds = time.perf_counter() - t0
        self.timings[f"score_epoch_{epoch}"] = seconds
        self.cpu_timings[f"score_epoch_{epoch}"] = time.process_time() - c0
        self.commands[epoch] = lm_eval_command(
            path, self.items_jsonl, config.detection_task, config.eval_batch_size, self.device
        )
        self.lm_eval_results[epoch] = aggregated
        missing = [s.item.id for s in self.scored if s.item.id not in scores]
        if missing:
            raise RuntimeError(f"lm-eval returned no scores for {len(missing)} item(s), e.g. {missing[:3]}")
        items = [
            {"id": s.item.id, "role": s.role, "scores": scores[s.item.id], "perms": perms[s.item.id]}
            for s in self.scored
        ]
        payload = {"epoch": epoch, "seconds": seconds, "items": items}
        (self.out / "scores" / f"epoch_{epoch}.json").write_text(json.dumps(payload), encoding="utf-8")

    def save_info(self) -> dict[str, Any]:
        """Write ``run.json`` (configuration, timings, lm-eval commands and results so far)."""
        self.timings["train_seconds"] = float(sum(v["seconds"] for v in self.training.values()))
        self.timings["total_seconds"] = self.earlier_wall + time.perf_counter() - self.started
        self.cpu_timings["train_seconds"] = float(sum(v["cpu_seconds"] for v in self.training.values()))
        self.cpu_timings["total_seconds"] = self.earlier_cpu + time.process_time() - self.cpu_started
        run_info = {
            "config": asdict(self.config),
            "model_dir": self.model_dir,
            "device": self.device,
            "machine": machine_description(),
            "n_training_texts": len(self.texts),
            "training": {str(k): v for k, v in self.training.items()},
            "timings": self.timings,
            "cpu_timings": self.cpu_timings,
            "lm_eval_commands": {str(k): v for k, v in self.commands.items()},
            "lm_eval_results": {str(k): v for k, v in self.lm_eval_results.items()},
            "complete": sorted(self.training) == list(self.config.epochs),
            "sessions": self.sessions,
        }
        (self.out / "run.json").write_text(json.dumps(jsonable(run_info), indent=1), encoding="utf-8")
        return run_info

    def scored_already(self, epoch: int) -> bool:
        return self.resume and (self.out / "scores" / f"epoch_{epoch}.json").is_file() and epoch in self.commands


def recorded_config(previous: dict[str, Any], config: ValidationConfig) -> dict[str, Any]:
    """The configuration an earlier session recorded in ``run.json``, in today's fields.

    A field the earlier session did not record (one added since, such as ``leaked_fraction``)
    counts as its default, which reproduces what the code did before the field existed; every
    recorded field is kept as it was written, so any change (a different fraction included)
    still differs from ``config``. ``{}`` (which differs from every configuration) when nothing
    was recorded.
    """
    recorded = previous.get("config")
    if not isinstance(recorded, dict):
        return {}
    return {**jsonable(asdict(ValidationConfig(out_dir=config.out_dir))), **recorded}


def _write_inputs(config: ValidationConfig, out: Path, resume: bool, model_dir: str) -> tuple[list[SampledItem], dict]:
    """Sample the items and write ``items.jsonl`` and ``split.json``; returns the sample and ``run.json`` so far.

    Raises:
        ValueError: ``resume`` with a folder written by a different configuration (see
            :func:`recorded_config`) or item sample.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    eos = tokenizer.eos_token or ""

    def count_tokens(text: str) -> int:
        return len(tokenizer(text + eos, add_special_tokens=False)["input_ids"])

    sampled = sample_items(read_records(config), config, count_tokens)
    items_jsonl = out / "items.jsonl"
    items_text = "".join(json.dumps(s.record, ensure_ascii=False) + "\n" for s in sampled if s.role != "filler")
    previous: dict[str, Any] = {}
    if resume and (out / "run.json").is_file():
        previous = json.loads((out / "run.json").read_text(encoding="utf-8"))
        if recorded_config(previous, config) != jsonable(asdict(config)):
            raise ValueError(f"cannot resume {out}: it was written with a different configuration")
        if items_jsonl.read_text(encoding="utf-8") != items_text:
            raise ValueError(f"cannot resume {out}: its items differ from this configuration's sample")
    items_jsonl.write_text(items_text, encoding="utf-8")
    trained = [s for s in sampled if s.role != "clean"]
    split = {
        "roles": {s.item.id: s.role for s in sampled},
        "shown": {s.item.id: list(s.shown) for s in trained},
        "training_texts": [s.text for s in trained],
        "token_lengths": {s.item.id: count_tokens(s.text) for s in trained},
    }
    (out / "split.json").write_text(json.dumps(split, indent=1, ensure_ascii=False), encoding="utf-8")
    return sampled, previous


def _start(config: ValidationConfig, resume: bool) -> _Run:
    """Resolve the model and device, write the run's inputs, and load what an earlier session recorded."""
    started, cpu_started = time.perf_counter(), time.process_time()
    out = Path(config.out_dir)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    model_dir = config.model_dir
    if model_dir is None:
        from lm_eval_leakage.validation.offline import ensure_offline_assets

        model_dir = str(ensure_offline_assets(quiet=True).model_dir)
    device = resolve_device(config.device)
    sampled, previous = _write_inputs(config, out, resume, model_dir)
    run = _Run(
        config, out, model_dir, device, [s for s in sampled if s.role != "filler"],
        [s.text for s in sampled if s.role != "clean"], resume, previous, started, cpu_started,
    )
    logger.info(
        "%d scored items (%d leaked), %d filler, %d training texts",
        len(run.scored), sum(s.role == "leaked" for s in run.scored), config.filler, len(run.texts),
    )
    return run


def _resume_epoch(run: _Run) -> int:
    """The latest checkpoint training continues from (0: the untouched model), scored if it was not."""
    if not run.resume:
        return 0
    checkpoints = run.out / "checkpoints"
    done = [e for e in run.config.epochs if e in run.training and (checkpoints / f"epoch_{e}" / OPTIMIZER_FILE).is_file()]
    epoch = max(done, default=0)
    if epoch and not run.scored_already(epoch):
        run.score(epoch, checkpoints / f"epoch_{epoch}")
        run.save_info()
    run.training = {e: v for e, v in run.training.items() if e <= epoch}
    logger.info("resuming %s after epoch %d", run.out, epoch)
    return epoch


def _checkpoints(run: _Run, resume_epoch: int) -> Iterator[tuple[int, Path, dict[str, float]]]:
    """The checkpoints still to train (none when the last listed epoch is done)."""
    config = run.config
    if resume_epoch >= max(config.epochs):
        return iter(())
    return fine_tune(
        run.model_dir,
        run.texts,
        epochs=config.epochs,
        checkpoint_dir=run.out / "checkpoints",
        learning_rate=config.learning_rate,
        batch_size=config.train_batch_size,
        max_length=config.max_length,
        seed=config.seed,
        device=run.device,
        resume_epoch=resume_epoch,
    )


def run_validation(config: ValidationConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the whole experiment and write its outputs; returns what ``validation.json`` holds.

    Writes under ``config.out_dir``: ``items.jsonl`` (the scored items, the detection input),
    ``split.json`` (roles, orderings shown and training texts), ``scores/epoch_E.json`` (ordering
    scores per checkpoint, from lm-eval's logged samples), ``checkpoints/epoch_E/`` (unless
    ``keep_checkpoints`` is off), ``run.json`` (configuration, timings, lm-eval commands), then
    :func:`~lm_eval_leakage.validation.report.write_report`'s outputs.

    Args:
        config: The run's configuration.
        resume: Continue an interrupted run in the same folder with the same configuration:
            checkpoints already scored are not scored again, and training continues from the
            latest checkpoint that holds its optimiser state (from scratch when there is none).

    Raises:
        ValueError: ``resume`` with a folder written by a different configuration or item sample.
    """
    run = _start(config, resume)
    if not run.scored_already(0):
        run.score(0, run.model_dir)
        run.save_info()
    for epoch, folder, info in _checkpoints(run, _resume_epoch(run)):
        run.training[epoch] = info
        run.save_info()  # a checkpoint with its optimiser state exists from here on
        run.score(epoch, folder)
        if not config.keep_checkpoints:
            shutil.rmtree(folder, ignore_errors=True)
        run.save_info()
        write_report(run.out)  # partial results survive an interrupted run
    run.save_info()
    return write_report(run.out)


__all__ = ["machine_description", "recorded_config", "run_validation"]
