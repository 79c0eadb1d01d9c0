"""Controlled-contamination validation: leak half of N items into a model and measure detection.

This reproduces the validation experiment of Ni et al. (arXiv 2409.01790, section 5 of METHOD.md;
the paper's Tables 1 and 2) on any local Hugging Face causal LM, by default the offline
SmolLM2-135M and real MMLU items:

1. Draw a seeded sample of N eligible items (all option texts distinct, options exchangeable by
   this project's guard, training text at most ``max_length`` tokens), split it into a leaked half
   and a clean half, and optionally draw ``filler`` further items that are trained on but not
   scored (so the clean half is not simply "a topic the model never saw").
2. Build one training text per leaked (and filler) item: scenario ``"a"`` shows the options in
   their original order, scenario ``"b"`` in one seeded random non-identity ordering per item; the
   format is either the detection template itself (``"template"``, exactly the text the ``leak_*``
   task scores) or a native exam format (``"native"``: question, ``"A. ..."`` lines,
   ``"Answer: X"`` with the letter of the correct option in the ordering shown).
3. Fine-tune with a plain torch loop (AdamW, constant learning rate, causal-LM loss on every token
   of the text, an end-of-text token after each text) and save a checkpoint after each epoch
   listed in ``epochs``.
4. Score the untouched model (the epoch-0 row) and every checkpoint with lm-eval's
   ``simple_evaluate`` on this project's ``leak_<benchmark>`` task over a JSONL of the N items,
   with ``log_samples``; every figure is recomputed from the logged ordering scores.
5. For every detector, compute accuracy, precision, recall and F1 at its default threshold, ROC
   AUC, the true-positive rate at 5% false positives and the false-positive rate on the clean
   half; write ``validation.json``, ``validation.md`` (tables laid out like the paper's Tables 1
   and 2) and ``roc.png``.

Detectors (``score``: higher means more leaked, used for ROC; ``flag``: the default decision):

* ``alg1`` (paper, scenario a): flag when the original ordering scores >= all others; the score is
  the flag itself (the rule has no continuous score, so its ROC curve has one corner).
* ``alg2_d020``, ``alg2_d017``, ``alg2_d015`` (paper, scenario b): IsolationForest score of the
  best ordering below delta = -0.20, -0.17, -0.15; score = minus the IsolationForest score (the
  same for the three, so they share AUC and TPR at 5% FPR).
* ``perm_p`` (this project, scenario a): the original ordering's exact permutation p-value
  ``(1 + above + tied) / n`` (``stats.item_stats``); flag when ``p <= alpha``; score = ``-p``.
* ``orig_z`` (this project, scenario a): the original ordering's z-score among the item's
  orderings; flag when ``z >= z_threshold`` (1.645, one-sided 5% under Gaussian exchangeable
  scores); score = ``z``.
* ``calib_b`` (this project, scenario b): the calibrated p-value of ``calibrated.scenario_b_pvalues``
  (default statistic, the studentised max; mirror null over the scored items, as lm-eval uses on
  runs of 200+ items); flag when ``p < alpha``; score = the statistic ``T+``.

Positives are the leaked items. Heavy libraries (torch, transformers, lm_eval, matplotlib) are
imported inside the functions that need them, so the metric functions import numpy/scipy/sklearn
only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.core import stats
from lm_eval_leakage.benchmarks.schemas import BENCHMARKS, InvalidItemError, Item
from lm_eval_leakage.core.calibrated import scenario_b_pvalues
from lm_eval_leakage.core.exchangeability import check_exchangeable
from lm_eval_leakage.core.orderings import build_orderings, item_seed
from lm_eval_leakage.core.reference_rule import isolation_score
from lm_eval_leakage.core.templates import LETTERS, native_block, render

logger = logging.getLogger("lm_eval_leakage.validation.experiment")

Scenario = Literal["a", "b"]
TrainFormat = Literal["template", "native"]
SCENARIOS: tuple[Scenario, ...] = ("a", "b")
TRAIN_FORMATS: tuple[TrainFormat, ...] = ("template", "native")

PAPER_DELTAS: tuple[float, ...] = (-0.20, -0.17, -0.15)
"""Algorithm 2 thresholds of the paper's Table 2 (four options)."""
OPTIMIZER_FILE = "optimizer.pt"
FPR_TARGET = 0.05
"""False-positive rate at which the true-positive rate is reported."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ValidationConfig:
    """Everything that defines one validation run (written to ``validation.json``).

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


# --------------------------------------------------------------------------- items and texts


@dataclass(frozen=True)
class SampledItem:
    """One item of the run.

    Attributes:
        item: The validated benchmark item.
        record: Its record in the benchmark's schema, with ``id`` set (written to the JSONL).
        role: ``"leaked"``, ``"clean"`` or ``"filler"``.
        shown: The ordering trained on (identity in scenario a; empty for clean items).
        text: The training text (empty for clean items).
    """

    item: Item
    record: dict[str, Any]
    role: Literal["leaked", "clean", "filler"]
    shown: tuple[int, ...] = ()
    text: str = ""


def answer_indices(record: Mapping[str, Any], benchmark: str) -> tuple[int, ...]:
    """Original indices of the correct option(s) of a record.

    MMLU stores a 0-based integer ``answer``; CMMLU a letter ``Answer``; C-Eval, CMB and custom
    data a letter (or, for CMB's multiple-answer items, several letters) in ``answer``.

    Raises:
        ValueError: No answer field, or one that is neither an index nor letters.
    """
    value = record.get("Answer" if benchmark == "cmmlu" else "answer")
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(
            f"{benchmark} record {record.get('id')!r} has no answer (needed by the native format)"
        )
    if isinstance(value, int):
        return (int(value),)
    letters = str(value).strip().upper()
    if letters.isdigit():
        return (int(letters),)
    if not letters.isalpha():
        raise ValueError(f"{benchmark} record {record.get('id')!r}: cannot read answer {value!r}")
    return tuple(LETTERS.index(letter) for letter in letters)


def training_text(
    item: Item,
    shown: Sequence[int],
    *,
    train_format: TrainFormat,
    answers: Sequence[int] = (),
) -> str:
    """The text a leaked item is trained on, with its options in the ordering ``shown``.

    ``"template"`` is the reference template exactly as the ``leak_*`` task renders it (context
    followed by option block). ``"native"`` is ``question + "\\n"``, ``"A. text"`` lines and
    ``"Answer: X"``, where ``X`` is the letter at which the correct option appears in ``shown``
    (several letters, sorted, for multiple-answer items).
    """
    options = [item.options[i] for i in shown]
    if train_format == "template":
        context, block = render(item.question, options, template="reference")
        return context + block
    if train_format == "native":
        if not answers:
            raise ValueError(f"item {item.id!r}: the native format needs the answer")
        positions = sorted(list(shown).index(a) for a in answers)
        return (
            item.question + "\n" + native_block(options) + "Answer: " + "".join(LETTERS[p] for p in positions)
        )
    raise ValueError(f"unknown train_format {train_format!r}; expected one of {TRAIN_FORMATS}")


def shown_ordering(item: Item, *, scenario: Scenario, seed: int) -> tuple[int, ...]:
    """The ordering a leaked item is trained in.

    Scenario a: the original order. Scenario b: one ordering drawn uniformly from the item's
    distinct non-identity orderings, seeded by ``(seed, item id)`` (the identity is left out so
    that scenario b never degenerates into scenario a for an item).
    """
    k = len(item.options)
    if scenario == "a":
        return tuple(range(k))
    perms = build_orderings(item.options, max_orderings=math.factorial(k), seed=seed, item_id=item.id).perms
    rng = np.random.default_rng(item_seed(seed + 1, item.id))
    return tuple(int(i) for i in perms[1 + int(rng.integers(len(perms) - 1))])


def read_records(config: ValidationConfig) -> list[dict[str, Any]]:
    """The benchmark's records: ``config.data_files`` or the offline MMLU copy."""
    from lm_eval_leakage.benchmarks.loading import read_local

    source = config.data_files
    if source is None:
        if config.benchmark != "mmlu":
            raise ValueError(f"no offline copy of {config.benchmark}: pass data_files")
        from lm_eval_leakage.validation.offline import ensure_offline_assets

        source = str(ensure_offline_assets(quiet=True).mmlu_jsonl)
    return read_local(source, BENCHMARKS[config.benchmark])


def sample_items(
    records: Sequence[Mapping[str, Any]],
    config: ValidationConfig,
    count_tokens: Callable[[str], int],
) -> list[SampledItem]:
    """Draw the leaked, clean and filler items and build their training texts.

    The records are visited in a seeded random order; a record is eligible when it is a valid item,
    its option texts are all distinct (so every item has all k! orderings), it passes the
    exchangeability guard (unless ``exchangeable_only`` is off) and its training text in *both*
    formats fits ``max_length`` tokens, so that the four scenario/format runs of one seed share
    the same items and the same split. The first ``n_items`` eligible records are scored (the first
    ``n_items // 2`` of them leaked), the next ``filler`` are filler.

    Args:
        records: Records in the benchmark's schema.
        config: The run's configuration.
        count_tokens: Number of tokens of a text, end-of-text token included.

    Raises:
        ValueError: Fewer eligible records than ``n_items + filler``.
    """
    spec = BENCHMARKS[config.benchmark]
    wanted = config.n_items + config.filler
    order = np.random.default_rng(config.seed).permutation(len(records))
    chosen: list[tuple[Item, dict[str, Any], tuple[int, ...]]] = []
    for index in order:
        record = dict(records[int(index)])
        record.setdefault("id", f"{config.benchmark}-{int(index)}")
        try:
            item = spec.to_item(record, int(index))
        except InvalidItemError:
            continue
        if len(set(item.options)) != len(item.options):
            continue
        if config.exchangeable_only and not check_exchangeable(item.options).exchangeable:
            continue
        try:
            answers = answer_indices(record, config.benchmark)
        except ValueError:
            answers = ()
        identity = tuple(range(len(item.options)))
        formats: list[TrainFormat] = ["template", "native"] if answers else ["template"]
        if config.train_format == "native" and not answers:
            continue
        if any(
            count_tokens(training_text(item, identity, train_format=f, answers=answers)) > config.max_length
            for f in formats
        ):
            continue
        chosen.append((item, record, answers))
        if len(chosen) == wanted:
            break
    if len(chosen) < wanted:
        raise ValueError(
            f"only {len(chosen)} eligible items (distinct options, max_length={config.max_length} tokens"
            f"{', exchangeable' if config.exchangeable_only else ''}); {wanted} needed"
        )
    n_leaked = config.n_items // 2
    sampled = []
    for position, (item, record, answers) in enumerate(chosen):
        role: Literal["leaked", "clean", "filler"] = (
            "leaked" if position < n_leaked else "clean" if position < config.n_items else "filler"
        )
        if role == "clean":
            sampled.append(SampledItem(item, record, role))
            continue
        shown = shown_ordering(item, scenario=config.scenario, seed=config.seed)
        text = training_text(item, shown, train_format=config.train_format, answers=answers)
        sampled.append(SampledItem(item, record, role, shown, text))
    return sampled


# --------------------------------------------------------------------------- detectors and metrics


@dataclass(frozen=True)
class Detector:
    """A detector as reported: name, which rule it is, and its default threshold in words."""

    name: str
    origin: Literal["paper", "this project"]
    scenario: Scenario
    threshold: str


def detectors(*, alpha: float = 0.05, z_threshold: float = 1.645) -> tuple[Detector, ...]:
    """The detectors evaluated, in report order."""
    return (
        Detector("alg1", "paper", "a", "original ordering scores >= every other (Algorithm 1)"),
        Detector("perm_p", "this project", "a", f"permutation p-value of the original <= {alpha:g}"),
        Detector("orig_z", "this project", "a", f"z-score of the original >= {z_threshold:g}"),
        *(
            Detector(
                f"alg2_d{round(-d * 100):03d}", "paper", "b", f"IsolationForest score of the best < {d:.2f}"
            )
            for d in PAPER_DELTAS
        ),
        Detector(
            "calib_b", "this project", "b",
            f"calibrated scenario-b p-value (studentised max, mirror null) < {alpha:g}",
        ),
    )


def detector_outputs(
    scores: np.ndarray,
    perms: np.ndarray,
    *,
    alpha: float = 0.05,
    z_threshold: float = 1.645,
) -> dict[str, dict[str, np.ndarray]]:
    """Per-detector continuous scores (higher = more leaked) and default flags.

    Args:
        scores: ``(m, n)`` ordering scores; ordering 0 is the original.
        perms: ``(m, n, k)`` orderings of each item.
        alpha: Level of the p-value detectors.
        z_threshold: Threshold of ``orig_z``.

    Returns:
        ``{detector: {"score": (m,), "flag": (m,) bool, "valid": (m,) bool}}``; an item whose
        scores cannot be analysed (``stats.item_status``) or that gets no calibrated p-value is
        marked invalid for that detector and left out of its metrics.
    """
    s = np.asarray(scores, dtype=np.float64)
    m = s.shape[0]
    ok = np.array([stats.item_status(row) == "ok" for row in s], dtype=bool)
    per_item = [stats.item_stats(row) for row in s]
    first = np.array([p.original_first for p in per_item], dtype=bool)
    pvalue = np.array([p.pvalue for p in per_item])
    zscore = np.array([p.zscore for p in per_item])
    iso = np.array([isolation_score(row) if good else np.nan for row, good in zip(s, ok, strict=True)])

    out: dict[str, dict[str, np.ndarray]] = {
        "alg1": {"score": first.astype(float), "flag": first, "valid": ok},
        "perm_p": {"score": -pvalue, "flag": pvalue <= alpha, "valid": ok},
        "orig_z": {"score": zscore, "flag": zscore >= z_threshold, "valid": ok & np.isfinite(zscore)},
    }
    for delta in PAPER_DELTAS:
        out[f"alg2_d{round(-delta * 100):03d}"] = {"score": -iso, "flag": iso < delta, "valid": ok}

    calib = np.full(m, np.nan)
    statistic = np.full(m, np.nan)
    n_orderings = np.array([row.shape[0] for row in s])
    for n in np.unique(n_orderings):  # the calibrated detector takes one number of orderings at a time
        members = np.flatnonzero(n_orderings == n)
        # The mirror null, as on a full benchmark (lm-eval runs of 200+ items use it); with the
        # few items of a validation run "auto" would fall back to the Gaussian table.
        result = scenario_b_pvalues(s[members], np.asarray(perms)[members], null="mirror")
        calib[members] = result.pvalue
        statistic[members] = result.statistic
    # Score = the statistic itself: the mirror p-value is a coarse (1/m steps) monotone map of it.
    out["calib_b"] = {"score": statistic, "flag": calib < alpha, "valid": ok & np.isfinite(calib)}
    return out


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
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    tp, fp = int(np.sum(f & y)), int(np.sum(f & ~y))
    fn, tn = int(np.sum(~f & y)), int(np.sum(~f & ~y))
    n_pos, n_neg = tp + fn, fp + tn
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / n_pos if n_pos else math.nan
    f1 = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else math.nan
    if n_pos and n_neg:
        # +inf scores (p-values at the floor) would break sklearn; order-preserving replacement.
        x = np.asarray(scores, dtype=np.float64)
        finite = x[np.isfinite(x)]
        top = finite.max() + 1.0 if finite.size else 1.0
        x = np.where(np.isposinf(x), top, np.where(np.isneginf(x), -top, x))
        fpr, tpr, _ = roc_curve(y, x, drop_intermediate=False)
        auc = float(roc_auc_score(y, x))
        tpr_at = float(np.max(tpr[fpr <= FPR_TARGET + 1e-12]))
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
) -> dict[str, DetectionMetrics]:
    """:func:`detection_metrics` of every detector on one checkpoint's scores."""
    outputs = detector_outputs(scores, perms, alpha=alpha, z_threshold=z_threshold)
    y = np.asarray(labels, dtype=bool)
    return {
        name: detection_metrics(y[o["valid"]], o["flag"][o["valid"]], o["score"][o["valid"]])
        for name, o in outputs.items()
    }


def summary_statistics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Sanity figures per half: how often the original ranks first, its mean rank and z-score."""
    y = np.asarray(labels, dtype=bool)
    per_item = [stats.item_stats(row) for row in np.asarray(scores, dtype=np.float64)]
    first = np.array([p.original_first for p in per_item])
    rank = np.array([p.rank for p in per_item])
    z = np.array([p.zscore for p in per_item])
    best = np.array([p.best for p in per_item])
    out: dict[str, float] = {}
    for name, mask in (("leaked", y), ("clean", ~y)):
        out[f"{name}_original_first"] = int(np.sum(first[mask]))
        out[f"{name}_mean_rank"] = float(np.nanmean(rank[mask]))
        out[f"{name}_mean_z"] = float(np.nanmean(z[mask]))
        out[f"{name}_n"] = int(np.sum(mask))
    out["_best"] = best.tolist()  # type: ignore[assignment]
    return out


# --------------------------------------------------------------------------- training


def resolve_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def fine_tune(
    model_dir: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    epochs: Sequence[int],
    checkpoint_dir: str | os.PathLike[str],
    learning_rate: float,
    batch_size: int,
    max_length: int,
    seed: int,
    device: str = "cpu",
    resume_epoch: int = 0,
) -> Iterator[tuple[int, Path, dict[str, float]]]:
    """Continue the pre-training of a causal LM on ``texts``; yield after each listed epoch.

    Plain torch loop: AdamW (constant learning rate, no weight decay), batches of ``batch_size``
    texts in a seeded random order per epoch, right padding, causal-LM loss on every real token
    (the tokenizer's end-of-text token is appended to each text as a document boundary), texts
    truncated to ``max_length`` tokens. The model has no dropout in eval mode and this loop
    uses no other randomness, so a run is reproducible from ``seed`` on one device.

    Each checkpoint also holds the optimiser state (``optimizer.pt``, removed from the previous
    checkpoint when the next one is written), so that ``resume_epoch`` can continue an interrupted
    run exactly: the model and optimiser come from ``checkpoint_dir/epoch_<resume_epoch>`` and the
    shuffling generator replays the epochs already done.

    Yields:
        ``(epoch, checkpoint folder, {"loss", "seconds", "cpu_seconds"})`` after each epoch in
        ``epochs`` (loss: mean training loss of that epoch; the times: training and saving since
        the previous checkpoint); the folder holds the model and tokenizer.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(checkpoint_dir) / f"epoch_{resume_epoch}" if resume_epoch else Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(device)
    model.config.use_cache = False
    eos = tokenizer.eos_token or ""
    encoded = [
        tokenizer(text + eos, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        for text in texts
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    if resume_epoch:
        optimizer.load_state_dict(torch.load(source / OPTIMIZER_FILE, map_location=device))
        for _ in range(resume_epoch):
            rng.permutation(len(encoded))
    last = max(epochs)
    steps_per_epoch = math.ceil(len(encoded) / batch_size)
    bar = tqdm(
        total=last * steps_per_epoch, initial=resume_epoch * steps_per_epoch, desc="fine-tuning", unit="step"
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    previous = source if resume_epoch else None
    for epoch in range(resume_epoch + 1, last + 1):
        model.train()
        losses = []
        order = rng.permutation(len(encoded))
        for start in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[start : start + batch_size]]
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
            labels = input_ids.masked_fill(attention == 0, -100)
            loss = model(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)
            ).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
        if epoch in epochs:
            model.eval()
            folder = Path(checkpoint_dir) / f"epoch_{epoch}"
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
            if previous is not None:
                (previous / OPTIMIZER_FILE).unlink(missing_ok=True)
            previous = folder
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            yield (
                epoch,
                folder,
                {"loss": float(np.mean(losses)), "seconds": seconds, "cpu_seconds": cpu_seconds},
            )
            started, cpu_started = time.perf_counter(), time.process_time()
    bar.close()


# --------------------------------------------------------------------------- scoring through lm-eval


def lm_eval_command(
    model_path: str | os.PathLike[str], items_jsonl: Path, task: str, batch_size: int, device: str
) -> str:
    """The ``lm_eval`` command line equivalent to :func:`score_with_lm_eval` (for the record)."""
    metadata = json.dumps({"data_files": str(items_jsonl)})
    return (
        f"lm_eval --model hf --model_args pretrained={model_path},dtype=float32 --tasks {task} "
        f"--metadata '{metadata}' --device {device} --batch_size {batch_size} --log_samples --output_path OUT"
    )


def score_with_lm_eval(
    model_path: str | os.PathLike[str],
    items_jsonl: Path,
    *,
    task: str,
    batch_size: int,
    device: str,
) -> tuple[dict[str, list[float]], dict[str, list[list[int]]], dict[str, Any]]:
    """Score every ordering of every item with lm-eval's ``simple_evaluate`` and ``log_samples``.

    Returns:
        Per item id: the ordering scores (``filtered_resps``) and the orderings (``doc["perms"]``);
        and the task's aggregated lm-eval results (as lm-eval reports them).
    """
    import lm_eval

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_path},dtype=float32",
        tasks=[task],
        device=device,
        batch_size=batch_size,
        log_samples=True,
        metadata={"data_files": str(items_jsonl)},
    )
    if results is None:  # non-zero ranks of a distributed run
        raise RuntimeError("simple_evaluate returned nothing (run the validation in a single process)")
    scores: dict[str, list[float]] = {}
    perms: dict[str, list[list[int]]] = {}
    for sample in results["samples"][task]:
        responses = sample.get("filtered_resps") or sample["resps"]
        values = [float(r[0]) if isinstance(r, (list, tuple)) else float(r) for r in responses]
        # lm-eval nests one level deeper for some filters: [[ll, greedy]] per request.
        if (
            responses
            and isinstance(responses[0], (list, tuple))
            and isinstance(responses[0][0], (list, tuple))
        ):
            values = [float(r[0][0]) for r in responses]
        scores[str(sample["doc"]["id"])] = values
        perms[str(sample["doc"]["id"])] = [list(p) for p in sample["doc"]["perms"]]
    aggregated = {k: v for k, v in results["results"][task].items() if isinstance(v, (int, float))}
    return scores, perms, aggregated


# --------------------------------------------------------------------------- the run


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def run_validation(config: ValidationConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the whole experiment and write its outputs; returns what ``validation.json`` holds.

    Writes under ``config.out_dir``: ``items.jsonl`` (the scored items, the detection input),
    ``split.json`` (roles, orderings shown and training texts), ``scores/epoch_E.json`` (ordering
    scores per checkpoint, from lm-eval's logged samples), ``checkpoints/epoch_E/`` (unless
    ``keep_checkpoints`` is off), ``run.json`` (configuration, timings, lm-eval commands), then
    :func:`write_report`'s outputs.

    Args:
        config: The run's configuration.
        resume: Continue an interrupted run in the same folder with the same configuration:
            checkpoints already scored are not scored again, and training continues from the
            latest checkpoint that holds its optimiser state (from scratch when there is none).

    Raises:
        ValueError: ``resume`` with a folder written by a different configuration or item sample.
    """
    from transformers import AutoTokenizer

    started, cpu_started = time.perf_counter(), time.process_time()
    out = Path(config.out_dir)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    model_dir = config.model_dir
    if model_dir is None:
        from lm_eval_leakage.validation.offline import ensure_offline_assets

        model_dir = str(ensure_offline_assets(quiet=True).model_dir)
    device = resolve_device(config.device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    eos = tokenizer.eos_token or ""

    def count_tokens(text: str) -> int:
        return len(tokenizer(text + eos, add_special_tokens=False)["input_ids"])

    sampled = sample_items(read_records(config), config, count_tokens)
    scored = [s for s in sampled if s.role != "filler"]
    items_jsonl = out / "items.jsonl"
    items_text = "".join(json.dumps(s.record, ensure_ascii=False) + "\n" for s in scored)
    previous: dict[str, Any] = {}
    if resume and (out / "run.json").is_file():
        previous = json.loads((out / "run.json").read_text(encoding="utf-8"))
        if previous.get("config") != _jsonable(asdict(config)):
            raise ValueError(f"cannot resume {out}: it was written with a different configuration")
        if items_jsonl.read_text(encoding="utf-8") != items_text:
            raise ValueError(f"cannot resume {out}: its items differ from this configuration's sample")
    items_jsonl.write_text(items_text, encoding="utf-8")
    split = {
        "roles": {s.item.id: s.role for s in sampled},
        "shown": {s.item.id: list(s.shown) for s in sampled if s.role != "clean"},
        "training_texts": [s.text for s in sampled if s.role != "clean"],
        "token_lengths": {s.item.id: count_tokens(s.text) for s in sampled if s.role != "clean"},
    }
    (out / "split.json").write_text(json.dumps(split, indent=1, ensure_ascii=False), encoding="utf-8")
    texts = split["training_texts"]
    logger.info(
        "%d scored items (%d leaked), %d filler, %d training texts",
        len(scored),
        sum(s.role == "leaked" for s in scored),
        config.filler,
        len(texts),
    )

    timings: dict[str, float] = dict(previous.get("timings", {}))
    # CPU seconds of this process (all its threads): on a shared machine, wall time overstates
    # the cost, and CPU seconds / threads estimates the wall time of an idle machine.
    cpu_timings: dict[str, float] = dict(previous.get("cpu_timings", {}))
    training: dict[int, dict[str, float]] = {int(k): v for k, v in previous.get("training", {}).items()}
    commands: dict[int, str] = {int(k): v for k, v in previous.get("lm_eval_commands", {}).items()}
    lm_eval_results: dict[int, dict[str, Any]] = {
        int(k): v for k, v in previous.get("lm_eval_results", {}).items()
    }
    earlier_wall = float(timings.get("total_seconds", 0.0))
    earlier_cpu = float(cpu_timings.get("total_seconds", 0.0))
    sessions = int(previous.get("sessions", 0)) + 1

    def score(epoch: int, path: str | os.PathLike[str]) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        scores, perms, aggregated = score_with_lm_eval(
            path, items_jsonl, task=config.detection_task, batch_size=config.eval_batch_size, device=device
        )
        seconds = time.perf_counter() - t0
        timings[f"score_epoch_{epoch}"] = seconds
        cpu_timings[f"score_epoch_{epoch}"] = time.process_time() - c0
        commands[epoch] = lm_eval_command(
            path, items_jsonl, config.detection_task, config.eval_batch_size, device
        )
        lm_eval_results[epoch] = aggregated
        missing = [s.item.id for s in scored if s.item.id not in scores]
        if missing:
            raise RuntimeError(f"lm-eval returned no scores for {len(missing)} item(s), e.g. {missing[:3]}")
        payload = {
            "epoch": epoch,
            "seconds": seconds,
            "items": [
                {"id": s.item.id, "role": s.role, "scores": scores[s.item.id], "perms": perms[s.item.id]}
                for s in scored
            ],
        }
        (out / "scores" / f"epoch_{epoch}.json").write_text(json.dumps(payload), encoding="utf-8")

    def save_run_info() -> dict[str, Any]:
        timings["train_seconds"] = float(sum(v["seconds"] for v in training.values()))
        timings["total_seconds"] = earlier_wall + time.perf_counter() - started
        cpu_timings["train_seconds"] = float(sum(v["cpu_seconds"] for v in training.values()))
        cpu_timings["total_seconds"] = earlier_cpu + time.process_time() - cpu_started
        run_info = {
            "config": asdict(config),
            "model_dir": model_dir,
            "device": device,
            "machine": machine_description(),
            "n_training_texts": len(texts),
            "training": {str(k): v for k, v in training.items()},
            "timings": timings,
            "cpu_timings": cpu_timings,
            "lm_eval_commands": {str(k): v for k, v in commands.items()},
            "lm_eval_results": {str(k): v for k, v in lm_eval_results.items()},
            "complete": sorted(training) == list(config.epochs),
            "sessions": sessions,
        }
        (out / "run.json").write_text(json.dumps(_jsonable(run_info), indent=1), encoding="utf-8")
        return run_info

    def scored_already(epoch: int) -> bool:
        return resume and (out / "scores" / f"epoch_{epoch}.json").is_file() and epoch in commands

    if not scored_already(0):
        score(0, model_dir)
        save_run_info()
    resume_epoch = 0
    if resume:
        done = [
            e
            for e in config.epochs
            if e in training and (out / "checkpoints" / f"epoch_{e}" / OPTIMIZER_FILE).is_file()
        ]
        resume_epoch = max(done, default=0)
        if resume_epoch and not scored_already(resume_epoch):
            score(resume_epoch, out / "checkpoints" / f"epoch_{resume_epoch}")
            save_run_info()
        training = {e: v for e, v in training.items() if e <= resume_epoch}
        logger.info("resuming %s after epoch %d", out, resume_epoch)
    checkpoints: Iterator[tuple[int, Path, dict[str, float]]] = iter(())
    if resume_epoch < max(config.epochs):
        checkpoints = fine_tune(
            model_dir,
            texts,
            epochs=config.epochs,
            checkpoint_dir=out / "checkpoints",
            learning_rate=config.learning_rate,
            batch_size=config.train_batch_size,
            max_length=config.max_length,
            seed=config.seed,
            device=device,
            resume_epoch=resume_epoch,
        )
    for epoch, folder, info in checkpoints:
        training[epoch] = info
        save_run_info()  # a checkpoint with its optimiser state exists from here on
        score(epoch, folder)
        if not config.keep_checkpoints:
            shutil.rmtree(folder, ignore_errors=True)
        save_run_info()
        write_report(out)  # partial results survive an interrupted run

    save_run_info()
    return write_report(out)


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


# --------------------------------------------------------------------------- report


def load_epoch_scores(out_dir: Path) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, list[str]]]:
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


def write_report(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Recompute every figure from ``scores/`` and write ``validation.json``, ``validation.md``, ``roc.png``.

    Can be re-run on a finished (or partly finished) output folder without a model.
    """
    out = Path(out_dir)
    run_info = (
        json.loads((out / "run.json").read_text(encoding="utf-8")) if (out / "run.json").is_file() else {}
    )
    cfg = run_info.get("config", {})
    alpha, z_threshold = float(cfg.get("alpha", 0.05)), float(cfg.get("z_threshold", 1.645))
    epochs: dict[str, Any] = {}
    for epoch, labels, scores, perms, ids in load_epoch_scores(out):
        metrics = evaluate_epoch(labels, scores, perms, alpha=alpha, z_threshold=z_threshold)
        sanity = summary_statistics(labels, scores)
        shown = (
            json.loads((out / "split.json").read_text(encoding="utf-8"))["shown"]
            if (out / "split.json").is_file()
            else {}
        )
        best = sanity.pop("_best")
        if shown:
            # Scenario b check: how often the trained ordering is the best-scoring one.
            hits = 0
            for item_id, b, perm_rows in zip(ids, best, perms, strict=True):
                if item_id in shown and list(perm_rows[b]) == shown[item_id]:
                    hits += 1
            sanity["leaked_trained_ordering_first"] = hits
        epochs[str(epoch)] = {"sanity": sanity, "detectors": {k: asdict(v) for k, v in metrics.items()}}
    report = {
        **run_info,
        "detectors": [asdict(d) for d in detectors(alpha=alpha, z_threshold=z_threshold)],
        "fpr_target": FPR_TARGET,
        "epochs": epochs,
    }
    (out / "validation.json").write_text(json.dumps(_jsonable(report), indent=1), encoding="utf-8")
    (out / "validation.md").write_text(markdown_report(report), encoding="utf-8")
    if epochs:
        roc_figure(report, out / "roc.png")
    return report


def _f(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}".replace("0.", ".", 1) if 0 <= value < 1 else f"{value:.3f}"


def markdown_report(report: Mapping[str, Any]) -> str:
    """Tables laid out like the paper's Tables 1 and 2, then every figure of every detector."""
    cfg = report.get("config", {})
    epochs = report["epochs"]
    keys = sorted(epochs, key=int)
    det = {d["name"]: d for d in report["detectors"]}
    task = cfg.get("task") or f"leak_{cfg.get('benchmark', '?')}"
    n_items = cfg.get("n_items", 0)
    setup = (
        f"{n_items} items ({n_items // 2} leaked), {cfg.get('filler', 0)} filler, "
        f"model `{report.get('model_dir', '?')}`, task `{task}`, lr {cfg.get('learning_rate', '?')}, "
        f"batch {cfg.get('train_batch_size', '?')}, max length {cfg.get('max_length', '?')} tokens, "
        f"seed {cfg.get('seed', '?')}."
    )
    sanity_header = (
        "| epoch | leaked: original first | clean: original first | leaked mean rank | clean mean rank "
        "| leaked mean z | clean mean z | leaked: trained ordering first |"
    )
    lines = [
        f"# Controlled-contamination validation: scenario {cfg.get('scenario', '?')}, "
        + f"{cfg.get('train_format', '?')} training format",
        "",
        setup,
        "Positives are the leaked items; epoch 0 is the untouched model.",
        "",
        "## Sanity: where the original ordering ranks among the item's orderings",
        "",
        sanity_header,
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in keys:
        s = epochs[e]["sanity"]
        cells = [
            e,
            f"{s['leaked_original_first']}/{s['leaked_n']}",
            f"{s['clean_original_first']}/{s['clean_n']}",
            _f(s["leaked_mean_rank"]),
            _f(s["clean_mean_rank"]),
            f"{s['leaked_mean_z']:.2f}",
            f"{s['clean_mean_z']:.2f}",
            f"{s.get('leaked_trained_ordering_first', 'n/a')}/{s['leaked_n']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Table 1 layout: scenario-a detectors (accuracy, precision, recall, F1; AUC)",
        "",
        "| epoch | alg1 acc | P | R | F1 | perm_p acc | P | R | F1 | AUC | orig_z acc | P | R | F1 | AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in keys:
        d = epochs[e]["detectors"]
        cells = [e]
        for name, with_auc in (("alg1", False), ("perm_p", True), ("orig_z", True)):
            m = d[name]
            cells += [_f(m["accuracy"]), _f(m["precision"]), _f(m["recall"]), _f(m["f1"])]
            if with_auc:
                cells.append(_f(m["roc_auc"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Table 2 layout: scenario-b detectors, accuracy / F1 per epoch",
        "",
        "| detector | " + " | ".join(f"ep {e}" for e in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for name in [d["name"] for d in report["detectors"] if d["scenario"] == "b"]:
        cells = [
            f"{_f(epochs[e]['detectors'][name]['accuracy'])}/{_f(epochs[e]['detectors'][name]['f1'])}"
            for e in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    fpr_target = report.get("fpr_target", FPR_TARGET)
    lines += [
        "",
        "## Every detector: default threshold and threshold-free figures",
        "",
        f"TPR@5%FPR: the largest true-positive rate at a false-positive rate <= {fpr_target:g}; "
        + "FPR clean: flagged fraction of the clean half at the default threshold.",
        "",
        "| epoch | detector | acc | P | R | F1 | AUC | TPR@5%FPR | FPR clean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in keys:
        for name, m in epochs[e]["detectors"].items():
            values = [
                m[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "tpr_at_fpr", "fpr_clean")
            ]
            lines.append(f"| {e} | {name} | " + " | ".join(_f(v) for v in values) + " |")
    lines += ["", "Detectors:", ""]
    lines += [
        f"- `{n}` ({d['origin']}, scenario {d['scenario']}): flagged when {d['threshold']}."
        for n, d in det.items()
    ]
    timings = report.get("timings", {})
    if timings:
        lines += [
            "",
            f"Runtime: {timings.get('total_seconds', float('nan')) / 60:.1f} min in all, "
            f"{timings.get('train_seconds', float('nan')) / 60:.1f} min of it training; "
            + ", ".join(
                f"epoch {k.rsplit('_', 1)[1]} scored in {v / 60:.1f} min"
                for k, v in timings.items()
                if k.startswith("score_epoch_")
            )
            + ".",
        ]
        cpu = report.get("cpu_timings", {})
        threads = (report.get("machine") or {}).get("torch_threads") or 1
        if cpu.get("total_seconds"):
            lines += [
                "",
                f"CPU time of the process: {cpu['total_seconds'] / 60:.1f} min over {threads} threads "
                + "(on a shared machine this and the wall time above overstate an idle machine's cost).",
            ]
    machine = report.get("machine")
    if machine:
        lines += [
            "",
            (
                f"Machine: {machine.get('cpu')}, {machine.get('cpu_count')} CPUs, torch threads "
                f"{machine.get('torch_threads')}, GPU {machine.get('gpu')}; load average at the end "
                f"{machine.get('load_average_at_end')}."
            ),
        ]
    return "\n".join(lines) + "\n"


def run_label(report: Mapping[str, Any]) -> str:
    """``"a / template"``: the scenario and training format of a run, from its configuration."""
    cfg = report.get("config", {})
    return f"{cfg.get('scenario', '?')} / {cfg.get('train_format', '?')}"


COMPARED_AUC: tuple[tuple[str, str], ...] = (
    ("alg1", "alg1"),
    ("perm_p", "perm_p"),
    ("orig_z", "orig_z"),
    ("alg2_d020", "alg2"),  # the three deltas share one score, hence one AUC
    ("calib_b", "calib_b"),
)
COMPARED_F1: tuple[str, ...] = ("alg2_d020", "alg2_d017", "alg2_d015", "calib_b")


def comparison_markdown(reports: Sequence[Mapping[str, Any]]) -> str:
    """Side-by-side tables of several runs (e.g. the four scenario x format combinations).

    Three tables over the epochs every run scored: ROC AUC of each detector; F1 of the paper's
    Algorithm 2 at its three deltas next to the calibrated scenario-b detector's; and the flagged
    fraction of the clean half (false-positive rate) at each default threshold. Cells are "n/a"
    where a figure is undefined (e.g. F1 when nothing is flagged).

    Args:
        reports: Outputs of :func:`write_report` (or their ``validation.json``).

    Raises:
        ValueError: If ``reports`` is empty or the runs share no epoch.
    """
    if not reports:
        raise ValueError("no runs to compare")
    shared = set.intersection(*(set(r["epochs"]) for r in reports))
    if not shared:
        raise ValueError("the runs share no scored epoch")
    keys = sorted(shared, key=int)
    header = "| run | detector | " + " | ".join(f"ep {e}" for e in keys) + " |"
    rule = "|---|---|" + "---|" * len(keys)

    def rows(names: Sequence[tuple[str, str]], figure: str) -> list[str]:
        out = []
        for report in reports:
            for name, label in names:
                cells = [_f(report["epochs"][e]["detectors"][name][figure]) for e in keys]
                out.append(f"| {run_label(report)} | {label} | " + " | ".join(cells) + " |")
        return out

    fpr_names = [(n, n) for n in ("alg1", "perm_p", "orig_z", *COMPARED_F1)]
    return "\n".join(
        [
            "ROC AUC of leaked against clean items (0.5 = no separation):",
            "",
            header,
            rule,
            *rows(COMPARED_AUC, "roc_auc"),
            "",
            "F1 at the default threshold, the paper's Algorithm 2 against the calibrated detector:",
            "",
            header,
            rule,
            *rows([(n, n) for n in COMPARED_F1], "f1"),
            "",
            "Flagged fraction of the clean half at the default threshold (false-positive rate):",
            "",
            header,
            rule,
            *rows(fpr_names, "fpr_clean"),
        ]
    ) + "\n"


ROC_DETECTORS: tuple[tuple[str, str, str], ...] = (
    ("alg1", "alg1 (paper a)", ":"),
    ("alg2_d020", "alg2 IsolationForest (paper b)", "--"),
    ("perm_p", "perm_p rank (ours a)", "-"),
    ("orig_z", "orig_z (ours a)", "-"),
    ("calib_b", "calib_b (ours b)", "-."),
)


def roc_figure(report: Mapping[str, Any], path: Path) -> Path:
    """One panel per epoch with the ROC curve of each detector (the three Algorithm 2 deltas share one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = report["epochs"]
    keys = sorted(epochs, key=int)
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows), squeeze=False)
    cfg = report.get("config", {})
    for ax, e in zip(axes.ravel(), keys, strict=False):
        for name, label, style in ROC_DETECTORS:
            m = epochs[e]["detectors"][name]
            if m["roc_fpr"]:
                ax.plot(m["roc_fpr"], m["roc_tpr"], style, label=f"{label}: AUC {_f(m['roc_auc'])}", lw=1.6)
        ax.plot([0, 1], [0, 1], color="lightgrey", lw=0.8)
        ax.axvline(FPR_TARGET, color="grey", lw=0.6, ls="--")
        ax.set_title(f"epoch {e}")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("false-positive rate (clean items)")
        ax.set_ylabel("true-positive rate (leaked items)")
        ax.legend(fontsize=7, loc="lower right")
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


__all__ = [
    "QUICK_OVERRIDES",
    "DetectionMetrics",
    "Detector",
    "SampledItem",
    "ValidationConfig",
    "answer_indices",
    "detection_metrics",
    "detector_outputs",
    "detectors",
    "evaluate_epoch",
    "fine_tune",
    "quick_config",
    "run_validation",
    "sample_items",
    "score_with_lm_eval",
    "shown_ordering",
    "training_text",
    "write_report",
]
