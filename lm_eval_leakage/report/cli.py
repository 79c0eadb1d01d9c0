"""Leakage reports from lm-eval output folders, recomputed from the saved ordering scores.

``python -m lm_eval_leakage report RUN_DIR [RUN_DIR ...] --out DIR`` reads the ``results_*.json``
and ``samples_leak_*.jsonl`` files that ``lm_eval ... --log_samples`` wrote (any mix of models and
``leak_*`` tasks), recomputes every figure from each item's ordering scores (``filtered_resps``,
or ``resps``) and its ``doc["perms"]``, never from the logged metric values, and writes:

- ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.html``: models x benchmarks; scenario a
  (Algorithm 1) with its chance level, scenario b by the paper's IsolationForest rule (Algorithm 2)
  with a simulated null level, and scenario b by the calibrated test (``calibrated``) with its
  level; 95% intervals and p-values. The HTML page is self-contained: its tables sort by clicking
  a header (a few lines of inline JavaScript) and the figure is inline SVG, so it needs no network;
- ``subjects.md``, ``subjects.csv``: the same figures per subject;
- ``items.csv``: every item's recomputed statistics;
- ``top_items.md``: the most suspicious items of each run with their question and options;
- ``figures/leaderboard.{png,svg}``, ``figures/subjects_<task>.{png,svg}`` and
  ``figures/cases/<model>__<task>__<item>.{png,svg}`` (see ``plots``);
- ``delta_sweep.md``, ``delta_sweep.csv`` with ``--delta-sweep``.

No model is loaded. Detectors re-run with other settings from the saved scores: ``--delta``
(Algorithm 2's threshold; the IsolationForest scores are computed once per item and cached),
``--alpha`` and ``--b-null`` (calibrated test), ``--keep-nonexchangeable`` (the exchangeability
guard), ``--subjects``.

Bad input: a folder whose results name a ``leak_*`` task without its samples file, or with no
lm-eval output at all, stops the command with a message naming the folder (exit status 2, nothing
written). A samples line that cannot be read (malformed or truncated JSON, missing fields) is
reported as ``FILE:LINE: problem``; everything else, including the good lines of that file, still
goes into the report, whose tables count the bad lines of each run; the exit status is then 1, or
0 with ``--skip-bad-lines``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import html
import json
import logging
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.core import calibrated
from lm_eval_leakage.core import stats
from lm_eval_leakage.core.exchangeability import check_exchangeable
from lm_eval_leakage.core.reference_rule import isolation_null_scores, isolation_score

logger = logging.getLogger("lm_eval_leakage")

STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
SAMPLES_RE = re.compile(rf"^samples_(?P<task>.+)_(?P<stamp>{STAMP})\.jsonl$")
RESULTS_RE = re.compile(rf"^results_(?P<stamp>{STAMP})\.json$")
BENCHMARK_NAMES = {"mmlu": "MMLU", "cmmlu": "CMMLU", "ceval": "C-Eval", "cmb": "CMB", "custom": "custom"}
DEFAULT_NULL_DRAWS = 200


# --------------------------------------------------------------------------- errors


class ReportError(Exception):
    """Input the user can fix (a missing or unreadable file); printed without a traceback."""


class MissingSamplesError(ReportError):
    """A run folder has results for a ``leak_*`` task but not the samples needed to recompute it."""


@dataclass(frozen=True)
class LineProblem:
    """A samples line that could not be used.

    Attributes:
        path: The samples file.
        line: 1-based line number.
        problem: What is wrong with it.
    """

    path: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


class SamplesFileError(ReportError):
    """A samples file with a bad line; ``items_read`` keeps every item read before it."""

    def __init__(self, problem: LineProblem, items_read: Sequence[ItemScores]) -> None:
        self.problem = problem
        self.items_read = tuple(items_read)
        super().__init__(f"{problem} ({len(self.items_read)} item(s) read before it)")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, eq=False)
class ItemScores:
    """One item of a samples file, with the score of each of its orderings.

    Attributes:
        doc_id: lm-eval's index of the document.
        item_id: The item's id in its dataset.
        subject: Subject ("" when the benchmark has none).
        question: Question text.
        options: Option texts in the original order.
        perms: ``perms[j][p]``: original index of the option at position ``p`` in ordering ``j``.
        scores: Log-likelihood per ordering, ordering 0 the original.
        delta: The Algorithm 2 threshold the run used for this item.
        n_distinct: Distinct orderings the item has in all.
        complete: Whether every distinct ordering was scored.
        exchangeable: False when the run's exchangeability guard found the option order fixed
            by content ("All of the above", sorted numbers); such items are left out of the
            scenario-a figures unless ``keep_nonexchangeable``.
        nonexch_reasons: The guard's reasons.
        keep_nonexchangeable: Whether the run kept such items in the scenario-a figures.
        guard_applied_here: The samples predate the tasks' exchangeability guard, so the
            report applied it.
    """

    doc_id: int
    item_id: str
    subject: str
    question: str
    options: tuple[str, ...]
    perms: tuple[tuple[int, ...], ...]
    scores: np.ndarray
    delta: float
    n_distinct: int
    complete: bool
    exchangeable: bool = True
    nonexch_reasons: tuple[str, ...] = ()
    keep_nonexchangeable: bool = False
    guard_applied_here: bool = False


@dataclass(frozen=True)
class Run:
    """One model's samples for one ``leak_*`` task.

    Attributes:
        model: Display name of the model.
        task: lm-eval task name, e.g. ``leak_mmlu``.
        samples_path: The samples file read.
        results_path: The matching results file, if found.
        items: The items read.
        logged: The task's metric values as lm-eval printed them (for comparison only).
        bad_lines: Lines of the samples file that could not be used.
    """

    model: str
    task: str
    samples_path: Path
    results_path: Path | None
    items: tuple[ItemScores, ...]
    logged: dict[str, Any]
    bad_lines: tuple[LineProblem, ...] = ()

    @property
    def benchmark(self) -> str:
        """Display name of the task's benchmark, e.g. ``"MMLU"`` or ``"CMB (native)"``."""
        return benchmark_name(self.task)


def benchmark_name(task: str) -> str:
    """``leak_mmlu`` -> ``MMLU``, ``leak_cmb_native`` -> ``CMB (native)``; other names unchanged."""
    match = re.fullmatch(r"leak_([a-z]+?)(_native)?", task)
    if not match or match.group(1) not in BENCHMARK_NAMES:
        return task
    return BENCHMARK_NAMES[match.group(1)] + (" (native)" if match.group(2) else "")


def _benchmark_order(task: str) -> tuple[int, str]:
    keys = list(BENCHMARK_NAMES)
    base = task.removeprefix("leak_").removesuffix("_native")
    return (keys.index(base) if base in keys else len(keys), task)


def _float(value: Any) -> float:
    # lm-eval logs log-likelihoods as strings, e.g. ["-12.5", "False"]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("empty response")
        return _float(value[0])
    if isinstance(value, bool):
        raise TypeError(f"expected a log-likelihood, got {value!r}")
    return float(value)


def parse_sample(record: Any) -> ItemScores:
    """Turn one samples line (already JSON-decoded) into :class:`ItemScores`.

    Raises:
        TypeError: The line or one of its parts has the wrong JSON type.
        ValueError: The line is not a ``leak_*`` sample or its scores do not fit its orderings.
    """
    if not isinstance(record, dict):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    doc = record.get("doc")
    if not isinstance(doc, dict):
        raise TypeError("no 'doc' object")
    missing = [k for k in ("id", "question", "options", "perms") if k not in doc]
    if missing:
        raise ValueError(f"doc lacks {', '.join(missing)}: not a leak_* sample")
    if "filtered_resps" in record:
        raw = record["filtered_resps"]
    elif "resps" in record:
        raw = [r[0] if isinstance(r, list) and r and isinstance(r[0], list) else r for r in record["resps"]]
    else:
        raise ValueError("no 'filtered_resps' or 'resps': the ordering scores are missing")
    if not isinstance(raw, list):
        raise TypeError("'filtered_resps' is not a list")
    try:
        scores = np.array([_float(r) for r in raw], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unreadable score: {exc}") from None
    perms = tuple(tuple(int(i) for i in p) for p in doc["perms"])
    options = tuple(str(o) for o in doc["options"])
    if scores.shape[0] != len(perms):
        raise ValueError(f"{scores.shape[0]} scores for {len(perms)} orderings")
    if not perms or any(sorted(p) != list(range(len(options))) for p in perms):
        raise ValueError(f"'perms' are not orderings of the {len(options)} options")
    if "exchangeable" in doc:
        exchangeable = bool(doc["exchangeable"])
        reasons = tuple(str(r) for r in doc.get("nonexchangeable_reasons") or ())
    else:
        # Samples written before the tasks had the exchangeability guard: apply it here, so that
        # old and new runs count the same items in scenario a.
        guard = check_exchangeable(options)
        exchangeable, reasons = guard.exchangeable, guard.reasons
    return ItemScores(
        doc_id=int(record.get("doc_id", -1)),
        item_id=str(doc["id"]),
        subject=str(doc.get("subject") or ""),
        question=str(doc["question"]),
        options=options,
        perms=perms,
        scores=scores,
        delta=float(doc.get("delta", math.nan)),
        n_distinct=int(doc.get("n_distinct", len(perms))),
        complete=bool(doc.get("complete", True)),
        exchangeable=exchangeable,
        nonexch_reasons=reasons,
        keep_nonexchangeable=bool(doc.get("keep_nonexchangeable", False)),
        guard_applied_here="exchangeable" not in doc,
    )


def read_samples(
    path: Path, *, on_bad_line: Literal["raise", "collect"] = "raise"
) -> tuple[list[ItemScores], list[LineProblem]]:
    """Read a ``samples_leak_*.jsonl`` file line by line.

    Args:
        path: The file.
        on_bad_line: ``"raise"``: stop at the first bad line with :class:`SamplesFileError`, which
            carries the items read before it; ``"collect"``: skip bad lines and return them.

    Returns:
        The items (first occurrence of each ``doc_id``; lm-eval writes one line per filter) and
        the bad lines.

    Raises:
        SamplesFileError: A bad line, with ``on_bad_line="raise"``.
        ReportError: The file cannot be opened.
    """
    items: list[ItemScores] = []
    problems: list[LineProblem] = []
    seen: set[int] = set()
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise ReportError(f"{path}: cannot open the samples file ({exc.strerror})") from None
    with handle:
        number = 0
        while True:
            number += 1
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                problem = LineProblem(path, number, f"not UTF-8 text ({exc.reason})")
                if on_bad_line == "raise":
                    raise SamplesFileError(problem, items) from None
                problems.append(problem)
                break  # the decoder cannot resynchronise; what was read is kept
            if not line:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                truncated = not line.endswith("\n")
                hint = " (the last line is cut off: was the run interrupted?)" if truncated else ""
                problem = LineProblem(path, number, f"not valid JSON: {exc.msg} at column {exc.colno}{hint}")
            else:
                try:
                    item = parse_sample(record)
                except (TypeError, ValueError) as exc:
                    problem = LineProblem(path, number, str(exc))
                else:
                    if item.doc_id not in seen or item.doc_id < 0:
                        seen.add(item.doc_id)
                        items.append(item)
                    continue
            if on_bad_line == "raise":
                raise SamplesFileError(problem, items)
            problems.append(problem)
    return items, problems


@dataclass(frozen=True)
class RunFiles:
    """Where one run's files are: a model folder, a task and lm-eval's timestamp."""

    folder: Path
    task: str
    stamp: str
    samples: Path | None
    results: Path | None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read the results file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: the results file is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: the results file is not a JSON object")
    return data


def find_runs(paths: Sequence[Path]) -> list[RunFiles]:
    """Find the ``leak_*`` runs under lm-eval output folders (or given result/sample files).

    Args:
        paths: ``--output_path`` folders, model sub-folders, or single files (a samples file
            brings the results file of its run, a results file brings its runs' samples files).

    Returns:
        One entry per (folder, task, timestamp), oldest first.

    Raises:
        ReportError: A path does not exist or holds no lm-eval output, or a results file is
            unreadable.
        MissingSamplesError: A results file lists a ``leak_*`` task whose samples file is absent.
    """
    found: dict[tuple[Path, str, str], RunFiles] = {}
    for root in paths:
        if not root.exists():
            raise ReportError(f"{root}: no such file or folder")
        given_samples = root.is_file() and SAMPLES_RE.match(root.name) is not None
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else _run_files(root)
        results = [p for p in files if RESULTS_RE.match(p.name)]
        samples = [p for p in files if SAMPLES_RE.match(p.name)]
        if not results and not samples:
            raise ReportError(
                f"{root}: no lm_eval output here (expected results_<time>.json and "
                "samples_<task>_<time>.jsonl files, as written by "
                "`lm_eval ... --output_path DIR --log_samples`)"
            )
        leak_tasks_seen = False
        for path in samples:
            match = SAMPLES_RE.match(path.name)
            assert match is not None
            if match["task"].startswith("leak_"):
                leak_tasks_seen = True
                key = (path.parent, match["task"], match["stamp"])
                found[key] = RunFiles(path.parent, match["task"], match["stamp"], path, None)
        for path in results:
            stamp = RESULTS_RE.match(path.name)["stamp"]  # type: ignore[index]
            tasks = [t for t in _read_json(path).get("results", {}) if str(t).startswith("leak_")]
            leak_tasks_seen |= bool(tasks)
            for task in tasks:
                key = (path.parent, task, stamp)
                if given_samples and key not in found:
                    continue  # the user named one samples file; its results file may list other tasks
                sample = found[key].samples if key in found else None
                if sample is None:
                    raise MissingSamplesError(
                        f"{path.parent}: {path.name} has results for {task} but there is no "
                        f"samples_{task}_{stamp}.jsonl beside it; the report recomputes every figure from "
                        f"the per-item scores, so rerun lm_eval with --log_samples"
                    )
                found[key] = dataclasses.replace(found[key], results=path)
        if not leak_tasks_seen:
            raise ReportError(f"{root}: lm_eval output found, but no leak_* task in it")
    return sorted(found.values(), key=lambda r: (r.stamp, str(r.folder), r.task))


def _run_files(path: Path) -> list[Path]:
    """A results or samples file with the other files of the same run (same timestamp) beside it."""
    match = SAMPLES_RE.match(path.name) or RESULTS_RE.match(path.name)
    if match is None:
        return [path]
    stamp = match["stamp"]
    return sorted({path} | {p for p in path.parent.glob(f"*_{stamp}.json*") if p.is_file()})


def model_name(files: RunFiles) -> str:
    """The model's display name: the results' ``model_name`` (last path part for local folders)."""
    if files.results is not None:
        name = str(_read_json(files.results).get("model_name") or "")
        if name:
            return Path(name).name if name.startswith(("/", ".", "~")) else name
    return files.folder.name


def load_runs(paths: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """Read every ``leak_*`` run under ``paths``; bad samples lines are kept on each :class:`Run`.

    When the same model and task appear more than once, the latest run is used and the others
    are reported in the notes.

    Returns:
        The runs, and notes for the user (superseded runs).

    Raises:
        ReportError: See :func:`find_runs`.
    """
    chosen: dict[tuple[str, str], RunFiles] = {}
    notes: list[str] = []
    for files in find_runs(paths):
        key = (model_name(files), files.task)
        if key in chosen:
            notes.append(f"{chosen[key].samples} is superseded by the later run {files.samples}")
        chosen[key] = files
    runs: list[Run] = []
    for (model, task), files in chosen.items():
        assert files.samples is not None
        items, problems = read_samples(files.samples, on_bad_line="collect")
        logged: dict[str, Any] = {}
        if files.results is not None:
            values = _read_json(files.results).get("results", {}).get(task, {})
            logged = {k.split(",")[0]: v for k, v in values.items() if k.endswith(",none")}
        runs.append(Run(model, task, files.samples, files.results, tuple(items), logged, tuple(problems)))
    runs.sort(key=lambda r: (r.model, _benchmark_order(r.task)))
    return runs, notes


# --------------------------------------------------------------------------- recomputing


@cache
def _isolation_cached(raw: bytes) -> float:
    return isolation_score(np.frombuffer(raw, dtype=np.float64))


BNull = Literal["auto", "mirror", "gaussian"]


@dataclass(frozen=True)
class Settings:
    """How the report recomputes the detectors.

    Attributes:
        delta: Algorithm 2's threshold for every item; ``None`` keeps each run's own (the paper's:
            -0.20 for four options, -0.25 for five or more, unless the run set one).
        alpha: Per-item level of the calibrated scenario-b test (``calibrated``); its flagged
            fraction is ``alpha`` with no leakage.
        b_null: Null of the calibrated test: ``"auto"`` (the tasks' choice: mirror within each
            pool of a run's items with the same number of orderings, from
            ``calibrated.MIN_MIRROR_ITEMS`` items up, else Gaussian), ``"mirror"`` or
            ``"gaussian"``.
        keep_nonexchangeable: Keep items whose option order is fixed by content in the
            scenario-a figures; ``None`` does what each run did.
        reference_rule: Run the paper's IsolationForest rule (about 0.1-0.2 s per item).
        null_draws: Simulated clean items per number of orderings for the paper rule's null
            level (0: no null level, no p-value).
        seed: Seed of that simulation.
        subjects: Keep only these subjects (empty: all).
    """

    delta: float | None = None
    alpha: float = 0.05
    b_null: BNull = "auto"
    keep_nonexchangeable: bool | None = None
    reference_rule: bool = True
    null_draws: int = DEFAULT_NULL_DRAWS
    seed: int = 0
    subjects: tuple[str, ...] = ()

    def delta_label(self) -> str:
        return "as run (paper)" if self.delta is None else f"{self.delta:g}"


@dataclass(frozen=True, eq=False)
class ItemResult:
    """An item with its recomputed statistics.

    Attributes:
        item: The item and its scores.
        stats: :func:`stats.item_stats` of its scores.
        isolation: Algorithm 2's anomaly score of the best ordering (NaN when excluded or the
            rule is off); it does not depend on the threshold, so thresholds change without
            refitting.
        cal_statistic: The calibrated test's ``T+`` (``calibrated`` module; NaN when invalid).
        cal_pvalue: Its p-value under the run's null (all valid items of the run pooled).
    """

    item: ItemScores
    stats: stats.ItemStats
    isolation: float
    cal_statistic: float
    cal_pvalue: float

    def flag_b(self, delta: float | None = None) -> bool:
        """Algorithm 2's flag with ``delta`` (default: the threshold the run used)."""
        threshold = self.item.delta if delta is None else delta
        return bool(self.stats.ok and self.isolation < threshold)

    def in_scenario_a(self, keep_nonexchangeable: bool | None = None) -> bool:
        """Whether the item counts in the scenario-a figures (usable scores, exchangeable options)."""
        keep = self.item.keep_nonexchangeable if keep_nonexchangeable is None else keep_nonexchangeable
        return self.stats.ok and (self.item.exchangeable or keep)


@dataclass(frozen=True)
class RunAnalysis:
    """A run with every item recomputed.

    Attributes:
        run: The run.
        items: Per-item results.
        cal_null: The calibrated test's null as resolved for this run.
        cal_n_reference: Size of the null sample behind its p-values.
    """

    run: Run
    items: tuple[ItemResult, ...]
    cal_null: str
    cal_n_reference: int


def analyse(run: Run, settings: Settings | None = None) -> RunAnalysis:
    """Recompute every item's statistics, isolation score and calibrated p-value.

    The calibrated p-values follow the tasks' own procedure: each item's ``T+``, ``T-`` and
    Gaussian-null p-value alone, then the run's null over all its valid items
    (``calibrated.combine_item_statistics``), so they equal what lm-eval aggregated.
    """
    settings = settings or Settings()
    per_item = []
    for item in run.items:
        item_stats = stats.item_stats(item.scores)
        isolation = math.nan
        if item_stats.ok and settings.reference_rule:
            isolation = _isolation_cached(item.scores.tobytes())
        single = (calibrated.scenario_b_pvalues(item.scores[None, :], np.asarray(item.perms), null="gaussian")
                  if item_stats.ok else None)
        per_item.append((item, item_stats, isolation, single))
    valid = [(i, s) for i, (_, _, _, s) in enumerate(per_item) if s is not None]
    pvalues = np.full(len(per_item), np.nan)
    statistics = np.full(len(per_item), np.nan)
    null, n_reference = "none", 0
    if valid:
        index = [i for i, _ in valid]
        combined = calibrated.combine_item_statistics(
            [float(s.statistic[0]) for _, s in valid], [float(s.decoy[0]) for _, s in valid],
            [s.model[0] for _, s in valid], [float(s.pvalue[0]) for _, s in valid], null=settings.b_null,
            n_orderings=[len(per_item[i][0].scores) for i in index],
        )
        pvalues[index] = combined.pvalue
        statistics[index] = combined.statistic
        null, n_reference = combined.null, combined.n_reference
    results = tuple(
        ItemResult(item, item_stats, isolation, float(statistics[i]), float(pvalues[i]))
        for i, (item, item_stats, isolation, _) in enumerate(per_item)
    )
    return RunAnalysis(run, results, null, n_reference)


@cache
@dataclass(frozen=True)
class Summary:
    """Dataset-level figures of one run (or one subject of it), all recomputed.

    Attributes:
        model: Model name.
        task: Task name.
        benchmark: Benchmark display name.
        subject: The subject, or ``""`` for the whole run.
        n_items: Items with usable scores (the scenario-b figures count these).
        n_excluded: Items with unusable scores (constant or non-finite, fewer than two orderings).
        n_nonexch: Usable items left out of scenario a by the exchangeability guard.
        bad_lines: Unreadable samples lines of the run (the summary covers the rest).
        a_items: Items in the scenario-a figures.
        a_rate: Algorithm 1 flagged fraction (the original ordering scores highest; ties count).
        a_lo: Lower end of its 95% Wilson interval.
        a_hi: Upper end.
        a_chance: Its expected value with no leakage, ``mean(1 / n_orderings)``.
        a_excess: ``a_rate - a_chance``.
        a_pvalue: Exact one-sided Poisson-binomial p-value of the flagged count against chance.
        mean_rank: Mean normalised rank of the original (0 = first; 0.5 with no leakage).
        rank_pvalue: One-sided p-value of the mean rank below 0.5 (:func:`stats.rank_test`).
        b_rate: Algorithm 2 (the paper's rule) flagged fraction at ``b_delta``.
        b_lo: Lower end of its 95% Wilson interval.
        b_hi: Upper end.
        b_delta: The threshold used (a number, or ``"as run (paper)"``).
        b_null: Mean flag rate of Algorithm 2 on simulated i.i.d. normal scores with the same
            numbers of orderings and thresholds (NaN with ``null_draws == 0``).
        b_pvalue: One-sided Poisson-binomial p-value of the flagged count against that null.
        bcal_rate: Calibrated scenario-b test: fraction of items with ``p < bcal_alpha``.
        bcal_lo: Lower end of its 95% Wilson interval.
        bcal_hi: Upper end.
        bcal_alpha: The level, which is also the rate with no leakage.
        bcal_excess: ``bcal_rate - bcal_alpha``.
        bcal_pvalue: One-sided p-value of the rate above ``bcal_alpha``.
        bcal_null: The null behind the item p-values (``mirror`` or ``gaussian``).
    """

    model: str
    task: str
    benchmark: str
    subject: str
    n_items: int
    n_excluded: int
    n_nonexch: int
    bad_lines: int
    a_items: int
    a_rate: float
    a_lo: float
    a_hi: float
    a_chance: float
    a_excess: float
    a_pvalue: float
    mean_rank: float
    rank_pvalue: float
    b_rate: float
    b_lo: float
    b_hi: float
    b_delta: str
    b_null: float
    b_pvalue: float
    bcal_rate: float
    bcal_lo: float
    bcal_hi: float
    bcal_alpha: float
    bcal_excess: float
    bcal_pvalue: float
    bcal_null: str


def null_rate(n_orderings: int, delta: float, settings: Settings) -> float:
    """The paper rule's simulated null flag rate for one item (NaN when the simulation is off)."""
    if settings.null_draws <= 0:
        return math.nan
    scores = _isolation_null(n_orderings, settings.null_draws, settings.seed)
    return float(np.mean(scores < delta))


@cache
def _isolation_null(n_orderings: int, draws: int, seed: int) -> np.ndarray:
    # One simulation per number of orderings, shared by every item, subject and delta of a report:
    # each draw fits an IsolationForest (about 0.1 s), so per-item simulation cost minutes.
    scores = isolation_null_scores(n_orderings, draws=draws, seed=seed)
    scores.flags.writeable = False
    return scores


def _calibrated_summary(analysis: RunAnalysis, kept: Sequence[ItemResult], alpha: float) -> Any:
    pvalues = np.array([r.cal_pvalue for r in kept], dtype=np.float64)
    if not np.isfinite(pvalues).any():
        return None
    result = calibrated.ScenarioBResult(
        pvalue=pvalues, statistic=np.array([r.cal_statistic for r in kept]), decoy=np.full(len(kept), np.nan),
        outlier_ordering=np.full(len(kept), -1, dtype=np.int64), reason=("",) * len(kept),
        model=("",) * len(kept), method=calibrated.DEFAULT_METHOD,
        null=analysis.cal_null,  # type: ignore[arg-type]
        n_reference=analysis.cal_n_reference,
    )
    return calibrated.summarise_scenario_b(result, alpha=alpha)


def summarise(analysis: RunAnalysis, settings: Settings, *, subject: str | None = None) -> Summary:
    """Dataset-level figures of a run, or of one subject of it when ``subject`` is given."""
    run = analysis.run
    chosen = [r for r in analysis.items if subject is None or r.item.subject == subject]
    kept = [r for r in chosen if r.stats.ok]
    in_a = [r for r in kept if r.in_scenario_a(settings.keep_nonexchangeable)]
    n_orderings = np.array([r.stats.n_orderings for r in in_a], dtype=np.int64)
    a = stats.scenario_a([r.stats.original_first for r in in_a], n_orderings)
    a_lo, a_hi = stats.wilson_interval(sum(r.stats.original_first for r in in_a), len(in_a))
    rank = stats.rank_test([r.stats.rank for r in in_a], n_orderings)

    with_rule = [r for r in kept if not math.isnan(r.isolation)]
    b_count = sum(r.flag_b(settings.delta) for r in with_rule)
    b_lo, b_hi = stats.wilson_interval(b_count, len(with_rule))
    deltas = [r.item.delta if settings.delta is None else settings.delta for r in with_rule]
    nulls = np.array(
        [null_rate(r.stats.n_orderings, d, settings) for r, d in zip(with_rule, deltas, strict=True)]
    )
    has_null = bool(with_rule) and settings.null_draws > 0
    cal = _calibrated_summary(analysis, kept, settings.alpha)
    return Summary(
        model=run.model,
        task=run.task,
        benchmark=run.benchmark,
        subject="" if subject is None else subject,
        n_items=len(kept),
        n_excluded=len(chosen) - len(kept),
        n_nonexch=sum(not r.item.exchangeable for r in kept),
        bad_lines=len(run.bad_lines),
        a_items=len(in_a),
        a_rate=a.rate,
        a_lo=a_lo,
        a_hi=a_hi,
        a_chance=a.chance,
        a_excess=a.excess,
        a_pvalue=a.pvalue,
        mean_rank=rank.mean_rank,
        rank_pvalue=rank.pvalue,
        b_rate=b_count / len(with_rule) if with_rule else math.nan,
        b_lo=b_lo,
        b_hi=b_hi,
        b_delta=settings.delta_label() if settings.reference_rule else "off",
        b_null=float(nulls.mean()) if has_null else math.nan,
        b_pvalue=stats.poisson_binomial_sf(b_count, nulls) if has_null else math.nan,
        bcal_rate=cal.flagged_fraction if cal else math.nan,
        bcal_lo=cal.flagged_low if cal else math.nan,
        bcal_hi=cal.flagged_high if cal else math.nan,
        bcal_alpha=settings.alpha,
        bcal_excess=cal.excess if cal else math.nan,
        bcal_pvalue=cal.pvalue if cal else math.nan,
        bcal_null=analysis.cal_null,
    )


def restrict(analysis: RunAnalysis, subjects: Sequence[str]) -> RunAnalysis:
    """The analysis limited to ``subjects`` (all of it when empty); p-values keep the run's pool."""
    if not subjects:
        return analysis
    return dataclasses.replace(analysis, items=tuple(r for r in analysis.items if r.item.subject in subjects))


def subjects_of(analysis: RunAnalysis) -> list[str]:
    """Subjects of a run, sorted."""
    return sorted({r.item.subject for r in analysis.items})


def most_suspicious(
    analysis: RunAnalysis,
    *,
    scenario: Literal["a", "b"],
    count: int,
    keep_nonexchangeable: bool | None = None,
) -> list[ItemResult]:
    """The items that look most leaked.

    Scenario a: highest z-score of the original ordering (flagged items have it first), among the
    items the scenario-a figures count (see :meth:`ItemResult.in_scenario_a`).
    Scenario b: lowest calibrated p-value, then largest ``T+`` (the standout ordering, whichever
    it is, beats what the other orderings predict).
    """
    kept = [r for r in analysis.items if r.stats.ok]
    if scenario == "a":
        kept = [r for r in kept if r.in_scenario_a(keep_nonexchangeable)]
        return sorted(kept, key=lambda r: (-r.stats.zscore, r.stats.rank))[:count]
    return sorted(kept, key=lambda r: (_nan_last(r.cal_pvalue), _nan_last(-r.cal_statistic)))[:count]


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


# --------------------------------------------------------------------------- formatting


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _pval(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "item"


def _interval(rate: float, lo: float, hi: float) -> str:
    return f"{_num(rate)} [{_num(lo)}, {_num(hi)}]"


def _star(pvalue: float) -> str:
    return "*" if pvalue < 0.05 else ""


def _cells(s: Summary) -> list[str]:
    """The leaderboard grid's three cells of one run: scenario a, the paper's b, calibrated b."""
    return [
        f"{_num(s.a_rate)}{_star(s.a_pvalue)} [{_num(s.a_lo)}, {_num(s.a_hi)}] (chance {_num(s.a_chance)})",
        f"{_num(s.b_rate)}{_star(s.b_pvalue)} [{_num(s.b_lo)}, {_num(s.b_hi)}] (null {_num(s.b_null)})",
        (f"{_num(s.bcal_rate)}{_star(s.bcal_pvalue)} [{_num(s.bcal_lo)}, {_num(s.bcal_hi)}] "
         f"(level {_num(s.bcal_alpha, 2)})"),
    ]


def _grid(
    summaries: Sequence[Summary],
) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str], Summary]]:
    models = list(dict.fromkeys(s.model for s in summaries))
    tasks = sorted({(s.task, s.benchmark) for s in summaries}, key=lambda t: _benchmark_order(t[0]))
    return models, tasks, {(s.model, s.task): s for s in summaries}


SUMMARY_COLUMNS = [f.name for f in dataclasses.fields(Summary)]


def _row(summary: Summary) -> dict[str, Any]:
    return dataclasses.asdict(summary)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV with ``columns`` (floats at full precision, NaN as empty)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return path


COLUMN_NOTES = [
    ("a", (
        "Algorithm 1 (paper): fraction of items whose original ordering scores >= every other ordering, over "
        "items with exchangeable options; 95% Wilson interval; * = exact one-sided p < 0.05 against chance."
    )),
    ("chance", (
        "scenario a with no leakage: mean of 1 / (orderings scored) over items "
        "(1/24 = 0.042 for four options)."
    )),
    ("b", (
        "Algorithm 2 (paper): fraction of items whose best ordering's IsolationForest score is below delta; "
        "95% Wilson interval; * = p < 0.05 against the null."
    )),
    ("null", (
        "the paper's rule on simulated clean items (i.i.d. normal scores, same orderings and delta): a "
        "reference level only; the rule is uncalibrated and real clean models differ."
    )),
    ("b cal.", (
        "calibrated scenario-b test (studentised maximum of the item's ordering scores): fraction of items "
        "with p < level; its rate with no leakage is the level; * = p < 0.05 for a rate above it."
    )),
    ("mean rank", "mean normalised rank of the original ordering (0 = first, 0.5 with no leakage)."),
]


def _settings_line(settings: Settings, count: int) -> str:
    keep = {None: "as run", True: "kept", False: "left out"}[settings.keep_nonexchangeable]
    return (
        f"Recomputed from the saved ordering scores of {count} run(s). Algorithm 2 threshold: "
        f"{settings.delta_label() if settings.reference_rule else 'off'}; calibrated test level "
        f"{settings.alpha:g}, null {settings.b_null}; items with non-exchangeable options in scenario a: "
        f"{keep}"
        + (f"; subjects: {', '.join(settings.subjects)}" if settings.subjects else "")
        + "."
    )


def leaderboard_markdown(summaries: Sequence[Summary], settings: Settings, problems: Sequence[str]) -> str:
    """The leaderboard as Markdown: a models x benchmarks grid, then every figure per run."""
    models, tasks, grid = _grid(summaries)
    lines = ["# Leakage leaderboard", "", _settings_line(settings, len(summaries)), ""]
    header = ["model"] + [f"{b} {x}" for _, b in tasks for x in ("a", "b", "b cal.")]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        cells = [_md(model)]
        for task, _ in tasks:
            s = grid.get((model, task))
            cells += _cells(s) if s else ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| column | meaning |", "|---|---|"]
    lines += [f"| {name} | {text} |" for name, text in COLUMN_NOTES]
    lines += ["", "## Every figure", ""]
    columns = ["model", "benchmark", "items", "excluded", "non-exch.", "a", "chance", "a - chance", "p (a)",
               "mean rank", "p (rank)", "b", "delta", "null (b)", "p (b)", "b cal.", "p (b cal.)",
               "null (b cal.)"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for s in summaries:
        partial = f" (+{s.bad_lines} bad lines)" if s.bad_lines else ""
        lines.append("| " + " | ".join([
            _md(s.model), _md(s.benchmark), f"{s.n_items}{partial}", str(s.n_excluded), str(s.n_nonexch),
            _interval(s.a_rate, s.a_lo, s.a_hi), _num(s.a_chance), _num(s.a_excess), _pval(s.a_pvalue),
            _num(s.mean_rank), _pval(s.rank_pvalue), _interval(s.b_rate, s.b_lo, s.b_hi), s.b_delta,
            _num(s.b_null), _pval(s.b_pvalue), _interval(s.bcal_rate, s.bcal_lo, s.bcal_hi),
            _pval(s.bcal_pvalue), s.bcal_null,
        ]) + " |")
    if problems:
        lines += ["", "## Problems", ""] + [f"- {_md(p)}" for p in problems]
    return "\n".join(lines) + "\n"


def subjects_markdown(summaries: Sequence[Summary]) -> str:
    """Per-subject figures as Markdown, one table per run."""
    lines = ["# Leakage by subject", ""]
    for (model, task), group in _group(summaries):
        lines += [f"## {_md(model)} / {task}", ""]
        lines += ["| subject | items | a | chance | p (a) | b | null (b) | b cal. | mean rank |",
                  "|" + "---|" * 9]
        for s in group:
            lines.append(
                f"| {_md(s.subject) or '(none)'} | {s.n_items} | {_interval(s.a_rate, s.a_lo, s.a_hi)} | "
                f"{_num(s.a_chance)} | {_pval(s.a_pvalue)} | {_interval(s.b_rate, s.b_lo, s.b_hi)} | "
                f"{_num(s.b_null)} | {_interval(s.bcal_rate, s.bcal_lo, s.bcal_hi)} | {_num(s.mean_rank)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _group(summaries: Sequence[Summary]) -> list[tuple[tuple[str, str], list[Summary]]]:
    groups: dict[tuple[str, str], list[Summary]] = {}
    for s in summaries:
        groups.setdefault((s.model, s.task), []).append(s)
    return list(groups.items())


def _ordering_text(item: ItemScores, j: int) -> str:
    from lm_eval_leakage.report.figures import LETTERS

    return "; ".join(f"{LETTERS[p]}: {item.options[i]}" for p, i in enumerate(item.perms[j]))


def _item_line(r: ItemResult, settings: Settings) -> str:
    from lm_eval_leakage.report.figures import ordering_label

    item, st = r.item, r.stats
    flags = [
        f"a: {'yes' if st.original_first else 'no'}"
        + ("" if r.in_scenario_a(settings.keep_nonexchangeable)
           else " (not counted: options not exchangeable)"),
        f"b: {'yes' if r.flag_b(settings.delta) else 'no'}" if not math.isnan(r.isolation) else "b: off",
        f"b cal.: {'yes' if r.cal_pvalue < settings.alpha else 'no'}",
    ]
    nonexch = "" if item.exchangeable else f"; options not exchangeable ({', '.join(item.nonexch_reasons)})"
    return (
        f"**{_md(item.item_id)}** ({_md(item.subject) or 'no subject'}): flagged {', '.join(flags)}; "
        f"original z = {_num(st.zscore, 2)}, p = {_pval(st.pvalue)}, rank {_num(st.rank, 2)}; best ordering "
        f"{ordering_label(item.perms[st.best])} (isolation {_num(r.isolation)}, "
        f"calibrated p {_pval(r.cal_pvalue)})"
        f"{_md(nonexch)}"
    )


def top_items_markdown(analyses: Sequence[RunAnalysis], settings: Settings, *, count: int) -> str:
    """The most suspicious items of each run with their question and options (the case study)."""
    from lm_eval_leakage.report.figures import LETTERS

    lines = ["# Most suspicious items", ""]
    lines.append(
        "Per run, the items whose original ordering stands out most (scenario a, by its z-score among the "
        "orderings) and the items whose best ordering stands out most whichever it is (scenario b, by the "
        "calibrated test's p-value)."
    )
    for analysis in analyses:
        run = analysis.run
        scenarios = (("a", "scenario a (original first)"), ("b", "scenario b (any ordering stands out)"))
        for scenario, title in scenarios:
            lines += ["", f"## {_md(run.model)} / {run.task}: {title}", ""]
            top = most_suspicious(analysis, scenario=scenario, count=count,  # type: ignore[arg-type]
                                  keep_nonexchangeable=settings.keep_nonexchangeable)
            if not top:
                lines.append("No analysable item.")
            for r in top:
                item = r.item
                lines.append("- " + _item_line(r, settings))
                lines.append(f"  - Q: {_md(item.question)}")
                lines.append(
                    "  - options: " + "; ".join(f"{LETTERS[i]}: {_md(o)}" for i, o in enumerate(item.options))
                )
                if r.stats.best != 0:
                    lines.append(f"  - best ordering shows: {_md(_ordering_text(item, r.stats.best))}")
    return "\n".join(lines) + "\n"


ITEM_COLUMNS = [
    "model", "task", "doc_id", "item_id", "subject", "status", "n_orderings", "exchangeable",
    "nonexch_reasons",
    "original_first", "rank", "pvalue", "zscore", "gap_ratio", "best", "best_ordering", "isolation", "delta",
    "flag_b", "cal_statistic", "cal_pvalue", "flag_b_cal", "question", "options",
]


def item_rows(analyses: Sequence[RunAnalysis], settings: Settings) -> list[dict[str, Any]]:
    """One CSV row per item with its recomputed statistics."""
    from lm_eval_leakage.report.figures import ordering_label

    rows = []
    for analysis in analyses:
        for r in analysis.items:
            item, st = r.item, r.stats
            rows.append({
                "model": analysis.run.model, "task": analysis.run.task, "doc_id": item.doc_id,
                "item_id": item.item_id, "subject": item.subject, "status": st.status,
                "n_orderings": st.n_orderings, "exchangeable": int(item.exchangeable),
                "nonexch_reasons": "; ".join(item.nonexch_reasons), "original_first": int(st.original_first),
                "rank": st.rank, "pvalue": st.pvalue, "zscore": st.zscore, "gap_ratio": st.gap_ratio,
                "best": st.best, "best_ordering": ordering_label(item.perms[st.best]) if st.ok else "",
                "isolation": r.isolation, "delta": item.delta if settings.delta is None else settings.delta,
                "flag_b": int(r.flag_b(settings.delta)), "cal_statistic": r.cal_statistic,
                "cal_pvalue": r.cal_pvalue, "flag_b_cal": int(r.cal_pvalue < settings.alpha),
                "question": item.question, "options": " | ".join(item.options),
            })
    return rows


# --------------------------------------------------------------------------- HTML

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var ascending = th.getAttribute("data-dir") !== "asc";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", ascending ? "asc" : "desc");
      var key = function (row) {
        var cell = row.cells[col];
        var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
        var num = parseFloat(raw);
        var numeric = !isNaN(num) && /^\\s*[-+]?[0-9.]/.test(raw);
        return numeric ? {n: true, v: num} : {n: false, v: raw.trim().toLowerCase()};
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var a = key(r1), b = key(r2), c;
        if (a.n && b.n) { c = a.v - b.v; } else if (a.n !== b.n) { return a.n ? -1 : 1; }
        else { c = a.v < b.v ? -1 : (a.v > b.v ? 1 : 0); }
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
td.text, th.text { text-align: left; }
table.sortable th { cursor: pointer; background: #f2f2f2; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.problems { color: #a00; }
figure svg { max-width: 100%; height: auto; }
"""


def _html_table(columns: Sequence[tuple[str, bool]], rows: Iterable[Sequence[tuple[str, Any]]]) -> str:
    """A sortable table; each cell is (shown text, sort value); columns are (name, is_text)."""
    out = ['<table class="sortable"><thead><tr>']
    out += [
        f'<th class="{"text" if is_text else "num"}">{html.escape(name)}</th>' for name, is_text in columns
    ]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for (shown, value), (_, is_text) in zip(row, columns, strict=True):
            attr = "" if value is None else f' data-value="{html.escape(str(value))}"'
            out.append(f'<td class="{"text" if is_text else "num"}"{attr}>{html.escape(str(shown))}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _sv(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def leaderboard_html(
    summaries: Sequence[Summary],
    subject_summaries: Sequence[Summary],
    analyses: Sequence[RunAnalysis],
    settings: Settings,
    *,
    figure_svg: str,
    problems: Sequence[str],
    top: int,
) -> str:
    """One self-contained page: sortable tables and the figure inline (nothing loaded from the network)."""
    from lm_eval_leakage.report.figures import ordering_label

    def figure_rows(rows: Sequence[Summary], first: tuple[str, str]) -> list[list[tuple[Any, Any]]]:
        return [[
            (getattr(s, first[0]), None), (getattr(s, first[1]) or "(none)", None),
            (s.n_items, s.n_items), (s.n_excluded, s.n_excluded), (s.n_nonexch, s.n_nonexch),
            (s.bad_lines, s.bad_lines),
            (_interval(s.a_rate, s.a_lo, s.a_hi), _sv(s.a_rate)), (_num(s.a_chance), _sv(s.a_chance)),
            (_num(s.a_excess), _sv(s.a_excess)), (_pval(s.a_pvalue), _sv(s.a_pvalue)),
            (_num(s.mean_rank), _sv(s.mean_rank)), (_pval(s.rank_pvalue), _sv(s.rank_pvalue)),
            (_interval(s.b_rate, s.b_lo, s.b_hi), _sv(s.b_rate)), (s.b_delta, None),
            (_num(s.b_null), _sv(s.b_null)), (_pval(s.b_pvalue), _sv(s.b_pvalue)),
            (_interval(s.bcal_rate, s.bcal_lo, s.bcal_hi), _sv(s.bcal_rate)),
            (_pval(s.bcal_pvalue), _sv(s.bcal_pvalue)), (s.bcal_null, None),
        ] for s in rows]

    numeric = [("items", False), ("excluded", False), ("non-exch.", False), ("bad lines", False),
               ("a [95% CI]", False), ("chance", False), ("a - chance", False), ("p (a)", False),
               ("mean rank", False), ("p (rank)", False), ("b [95% CI]", False), ("delta", True),
               ("null (b)", False), ("p (b)", False), ("b cal. [95% CI]", False), ("p (b cal.)", False),
               ("null (b cal.)", True)]
    board_columns = [("model", True), ("benchmark", True), *numeric]
    subject_columns = [("run", True), ("subject", True), *numeric]
    subject_data = [dataclasses.replace(s, model=f"{s.model} / {s.task}") for s in subject_summaries]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>Leakage leaderboard</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>Leakage leaderboard</h1>",
        (f'<p class="note">Option-shuffling leakage test (Ni et al., arXiv 2409.01790). '
         f"{html.escape(_settings_line(settings, len(summaries)))} Click a column header to sort.</p>"),
    ]
    if problems:
        parts.append('<div class="problems"><h2>Problems</h2><ul>')
        parts += [f"<li>{html.escape(p)}</li>" for p in problems]
        parts.append("</ul></div>")
    parts.append(_html_table(board_columns, figure_rows(summaries, ("model", "benchmark"))))
    parts.append('<ul class="note">' + "".join(
        f"<li><b>{html.escape(n)}</b>: {html.escape(t)}</li>" for n, t in COLUMN_NOTES) + "</ul>")
    parts.append(f"<figure>{figure_svg}</figure>")
    parts.append("<h2>By subject</h2>")
    parts.append(_html_table(subject_columns, figure_rows(subject_data, ("model", "subject"))))
    parts.append("<h2>Most suspicious items</h2>")
    item_columns = [("model", True), ("task", True), ("item", True), ("subject", True),
                    ("z (original)", False),
                    ("p (original)", False), ("rank", False), ("flag a", False), ("isolation (best)", False),
                    ("flag b", False), ("p (b cal.)", False), ("best ordering", True),
                    ("question and options", True)]
    item_data = []
    for analysis in analyses:
        shown: dict[int, ItemResult] = {}
        for scenario in ("a", "b"):
            for r in most_suspicious(analysis, scenario=scenario, count=top,  # type: ignore[arg-type]
                                     keep_nonexchangeable=settings.keep_nonexchangeable):
                shown.setdefault(r.item.doc_id, r)
        for r in shown.values():
            item, st = r.item, r.stats
            options = " | ".join(f"{chr(65 + i)}: {o}" for i, o in enumerate(item.options))
            text = f"{item.question} || {options}"
            flag_b = int(r.flag_b(settings.delta))
            item_data.append([
                (analysis.run.model, None), (analysis.run.task, None), (item.item_id, None),
                (item.subject, None),
                (_num(st.zscore, 2), _sv(st.zscore)), (_pval(st.pvalue), _sv(st.pvalue)),
                (_num(st.rank, 2), _sv(st.rank)), (int(st.original_first), int(st.original_first)),
                (_num(r.isolation), _sv(r.isolation)), (flag_b, flag_b),
                (_pval(r.cal_pvalue), _sv(r.cal_pvalue)),
                (ordering_label(item.perms[st.best]), None), (text, None),
            ])
    parts.append(_html_table(item_columns, item_data))
    parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _inline_svg(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("<svg"):]


# --------------------------------------------------------------------------- figures


def bar_series(settings: Settings) -> list[Any]:
    """The bars of each row: scenario a, the paper's scenario b (unless off), the calibrated test."""
    from lm_eval_leakage.report.figures import COLOURS, Series

    series = [Series("a", "scenario a: original ordering first (paper, Alg. 1)", COLOURS["a"])]
    if settings.reference_rule:
        delta = "the paper's delta" if settings.delta is None else f"delta {settings.delta:g}"
        label = f"scenario b: best ordering isolated (paper, Alg. 2, {delta})"
        series.append(Series("b", label, COLOURS["b"]))
    series.append(Series("bcal", f"scenario b: calibrated test, p < {settings.alpha:g}", COLOURS["bcal"]))
    return series


def bar_data(summaries: Sequence[Summary], *, panel: str, label: str, label_n: bool = False) -> list[Any]:
    """Rows of :func:`plots.bar_figure` from summaries.

    Args:
        summaries: The figures.
        panel: Summary field that names the panel.
        label: Summary field that names the row.
        label_n: Add the number of items to the row label.
    """
    from lm_eval_leakage.report.figures import Bar, BarDatum

    return [
        BarDatum(
            panel=getattr(s, panel),
            label=(getattr(s, label) or "(none)") + (f" (n={s.n_items})" if label_n else ""),
            n_items=s.n_items,
            bars=(
                ("a", Bar(s.a_rate, s.a_lo, s.a_hi, s.a_chance)),
                ("b", Bar(s.b_rate, s.b_lo, s.b_hi, s.b_null)),
                ("bcal", Bar(s.bcal_rate, s.bcal_lo, s.bcal_hi, s.bcal_alpha)),
            ),
        )
        for s in summaries
        if s.n_items > 0
    ]


def _sorted_for_figure(summaries: Sequence[Summary]) -> list[Summary]:
    # The paper's figure lists models by their score: highest scenario-a rate at the top.
    mean_a: dict[str, list[float]] = {}
    for s in summaries:
        mean_a.setdefault(s.model, []).append(s.a_rate)
    order = sorted(mean_a, key=lambda m: -float(np.nanmean(mean_a[m])) if mean_a[m] else 0.0)
    return sorted(summaries, key=lambda s: (order.index(s.model), _benchmark_order(s.task)))


def case_data(analysis: RunAnalysis, result: ItemResult, settings: Settings) -> Any:
    """Input of :func:`plots.case_figure` for one item."""
    from lm_eval_leakage.report.figures import CaseData

    item, st = result.item, result.stats
    note = (
        f"original: z = {_num(st.zscore, 2)}, rank {_num(st.rank, 2)}, p = {_pval(st.pvalue)}; "
        f"best ordering: isolation score {_num(result.isolation)} "
        f"(flagged b at delta {settings.delta if settings.delta is not None else item.delta:g}: "
        f"{'yes' if result.flag_b(settings.delta) else 'no'}), calibrated p = {_pval(result.cal_pvalue)}"
        + ("" if item.exchangeable else f"; options not exchangeable ({', '.join(item.nonexch_reasons)})")
        if st.ok else f"excluded: {stats.STATUS_REASONS[st.status]}"
    )
    return CaseData(
        title=f"{analysis.run.model} / {analysis.run.task} / item {item.item_id}"
        + (f" ({item.subject})" if item.subject else ""),
        question=item.question,
        options=item.options,
        perms=item.perms,
        scores=tuple(float(s) for s in item.scores),
        note=note,
    )


def delta_sweep(
    analyses: Sequence[RunAnalysis], deltas: Sequence[float], settings: Settings
) -> list[Summary]:
    """Scenario b's figures for each threshold in ``deltas`` (no refitting: scores are cached)."""
    return [
        summarise(analysis, dataclasses.replace(settings, delta=delta))
        for analysis in analyses
        for delta in deltas
    ]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ReportOutput:
    """What :func:`write_report` produced."""

    summaries: tuple[Summary, ...]
    subject_summaries: tuple[Summary, ...]
    files: tuple[Path, ...]
    font_note: str


def write_report(
    analyses: Sequence[RunAnalysis],
    out: Path,
    settings: Settings,
    *,
    top: int = 10,
    case_count: int = 3,
    case_ids: Sequence[str] = (),
    deltas: Sequence[float] = (),
    formats: Sequence[str] = ("png", "svg"),
    problems: Sequence[str] = (),
) -> ReportOutput:
    """Write every table and figure of the report under ``out``.

    Args:
        analyses: Recomputed runs (see :func:`analyse`).
        out: Output folder (created).
        settings: Detector settings.
        top: Items per run and scenario in the top-items list.
        case_count: Case plots per run, for its top scenario-a items.
        case_ids: Item ids to draw case plots for, in every run that has them.
        deltas: Thresholds for the delta sweep (none: no sweep).
        formats: Figure formats.
        problems: Problems to list in the report (bad lines).

    Returns:
        The summaries and the files written.
    """
    from lm_eval_leakage.report import figures as plots

    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    analyses = [restrict(a, settings.subjects) for a in analyses]
    summaries = [summarise(a, settings) for a in analyses]
    subject_summaries = [summarise(a, settings, subject=s) for a in analyses for s in subjects_of(a)]
    files: list[Path] = []

    series = bar_series(settings)
    data = bar_data(_sorted_for_figure(summaries), panel="benchmark", label="model")
    if data:
        files += plots.save(plots.bar_figure(data, series, title="Leakage by option shuffling"),
                            figures / "leaderboard", formats)
    for task in sorted({a.run.task for a in analyses}, key=_benchmark_order):
        rows = [s for s in subject_summaries if s.task == task]
        data = bar_data(rows, panel="model", label="subject", label_n=True)
        if data and len({s.subject for s in rows}) > 1:
            title = f"{benchmark_name(task)} by subject"
            files += plots.save(plots.bar_figure(data, series, title=title),
                                figures / f"subjects_{_slug(task)}", formats)
    for analysis in analyses:
        top_a = most_suspicious(analysis, scenario="a", count=case_count,
                                keep_nonexchangeable=settings.keep_nonexchangeable)
        chosen = {r.item.doc_id: r for r in top_a}
        chosen |= {r.item.doc_id: r for r in analysis.items if r.item.item_id in case_ids}
        for r in chosen.values():
            name = f"{_slug(analysis.run.model)}__{_slug(analysis.run.task)}__{_slug(r.item.item_id)}"
            stem = figures / "cases" / name
            files += plots.save(plots.case_figure(case_data(analysis, r, settings)), stem, formats)
    missing = sorted(set(case_ids) - {r.item.item_id for a in analyses for r in a.items})
    problems = list(problems) + [f"--case {i}: no run has an item with this id" for i in missing]

    files.append(write_csv(out / "leaderboard.csv", [_row(s) for s in summaries], SUMMARY_COLUMNS))
    (out / "leaderboard.md").write_text(leaderboard_markdown(summaries, settings, problems), encoding="utf-8")
    files.append(out / "leaderboard.md")
    files.append(write_csv(out / "subjects.csv", [_row(s) for s in subject_summaries], SUMMARY_COLUMNS))
    (out / "subjects.md").write_text(subjects_markdown(subject_summaries), encoding="utf-8")
    files.append(out / "subjects.md")
    files.append(write_csv(out / "items.csv", item_rows(analyses, settings), ITEM_COLUMNS))
    (out / "top_items.md").write_text(top_items_markdown(analyses, settings, count=top), encoding="utf-8")
    files.append(out / "top_items.md")
    if deltas:
        sweep = delta_sweep(analyses, deltas, settings)
        columns = ["model", "task", "b_delta", "n_items", "b_rate", "b_lo", "b_hi", "b_null", "b_pvalue"]
        files.append(write_csv(out / "delta_sweep.csv", [_row(s) for s in sweep], columns))
        lines = ["# Algorithm 2 at other thresholds", "",
                 "| model | benchmark | delta | b [95% CI] | null (b) | p (b) |", "|---|---|---|---|---|---|"]
        lines += [f"| {_md(s.model)} | {_md(s.benchmark)} | {s.b_delta} | {_num(s.b_rate)} [{_num(s.b_lo)}, "
                  f"{_num(s.b_hi)}] | {_num(s.b_null)} | {_pval(s.b_pvalue)} |" for s in sweep]
        (out / "delta_sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(out / "delta_sweep.md")
    svg = figures / "leaderboard.svg"
    figure_svg = _inline_svg(svg) if svg.exists() else ""
    page = leaderboard_html(summaries, subject_summaries, analyses, settings, figure_svg=figure_svg,
                            problems=problems, top=top)
    (out / "leaderboard.html").write_text(page, encoding="utf-8")
    files.append(out / "leaderboard.html")
    texts = [a.run.model for a in analyses] + [r.item.question + "".join(r.item.options)
                                               for a in analyses for r in a.items]
    font_note = "" if plots.has_cjk_font() or not any(plots.drawable(t)[1] for t in texts) else (
        "no installed font draws some characters of these items (e.g. CJK): the figures show them as □; "
        "pass --font FILE (e.g. NotoSansCJK) to draw them; the Markdown, CSV and HTML files have the full "
        "text"
    )
    return ReportOutput(tuple(summaries), tuple(subject_summaries), tuple(files), font_note)


def _parse_deltas(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``report`` command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m lm_eval_leakage report",
        description="Leaderboard, figures and re-analysis of leak_* runs from lm_eval output folders "
        "(written with --log_samples); every figure is recomputed from the saved ordering scores, no model.",
        epilog="Exit status: 0 done; 1 report written but some samples lines were unreadable (listed as "
        "FILE:LINE; use --skip-bad-lines to accept); 2 nothing written (bad arguments, missing samples, "
        "no lm_eval output).",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="lm_eval --output_path folders, model sub-folders, or results/samples files")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the report to")
    parser.add_argument("--delta", type=float, default=None,
                        help="Algorithm 2 threshold for every item (default: each run's own, the paper's "
                        "-0.20 for four options and -0.25 for five or more)")
    parser.add_argument("--delta-sweep", type=_parse_deltas, default=[], metavar="D1,D2,...",
                        help="also tabulate scenario b at these thresholds (e.g. -0.25,-0.2,-0.17,-0.15)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="level of the calibrated scenario-b test (its flagged rate with no leakage)")
    parser.add_argument("--b-null", choices=["auto", "mirror", "gaussian"], default="auto",
                        help="null of the calibrated scenario-b test (auto: mirror from 200 items of a run "
                        "up, as the tasks do)")
    parser.add_argument("--keep-nonexchangeable", action=argparse.BooleanOptionalAction, default=None,
                        help="keep (or leave out) items whose option order is fixed by content in scenario a "
                        "(default: what each run did)")
    parser.add_argument("--no-reference-rule", action="store_true",
                        help="skip the paper's IsolationForest rule (about 0.1-0.2 s per item)")
    parser.add_argument("--subjects", default="", metavar="S1,S2,...",
                        help="restrict every table and figure to these subjects")
    parser.add_argument("--top", type=int, default=10, help="items per run and scenario in top_items.md")
    parser.add_argument("--cases", type=int, default=3, help="case plots per run (its top scenario-a items)")
    parser.add_argument("--case", action="append", default=[], metavar="ITEM_ID",
                        help="also draw the case plot of this item (repeatable)")
    parser.add_argument("--null-draws", type=int, default=DEFAULT_NULL_DRAWS,
                        help="simulated clean items per number of orderings for the paper rule's null "
                        "level (0 to skip; about 0.1-0.2 s each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the null simulation")
    parser.add_argument("--formats", default="png,svg", help="figure formats, comma-separated")
    parser.add_argument("--font", type=Path, default=None,
                        help="font file for figure text (e.g. a CJK font for CMMLU, C-Eval, CMB)")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="exit 0 even when some samples lines were unreadable (they are still listed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``report`` command; see :func:`build_parser` and the module docstring."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 < args.alpha < 1.0:
        parser.error(f"--alpha must lie in (0, 1), got {args.alpha}")
    settings = Settings(
        delta=args.delta,
        alpha=args.alpha,
        b_null=args.b_null,
        keep_nonexchangeable=args.keep_nonexchangeable,
        reference_rule=not args.no_reference_rule,
        null_draws=max(0, args.null_draws) if not args.no_reference_rule else 0,
        seed=args.seed,
        subjects=tuple(s.strip() for s in args.subjects.split(",") if s.strip()),
    )
    try:
        if args.font is not None:
            from lm_eval_leakage.report import figures as plots

            plots.use_font_file(args.font)
        runs, notes = load_runs(args.runs)
    except (ReportError, FileNotFoundError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"report: note: {note}", file=sys.stderr)
    problems = [str(p) for run in runs for p in run.bad_lines]
    for problem in problems:
        print(f"report: bad line: {problem}", file=sys.stderr)
    runs = [r for r in runs if r.items or not r.bad_lines]
    if not any(r.items for r in runs):
        print("report: error: no item could be read from any samples file", file=sys.stderr)
        return 2
    analyses = [analyse(run, settings) for run in runs]
    for analysis in analyses:
        _check_against_logged(analysis, settings)
    output = write_report(
        analyses, args.out, settings, top=args.top, case_count=args.cases, case_ids=args.case,
        deltas=args.delta_sweep, formats=[f.strip() for f in args.formats.split(",") if f.strip()],
        problems=problems,
    )
    if output.font_note:
        print(f"report: note: {output.font_note}", file=sys.stderr)
    n_items = sum(len(a.items) for a in analyses)
    print(f"report: {len(runs)} run(s), {n_items} items; wrote {len(output.files)} files to {args.out} "
          f"(open {args.out / 'leaderboard.html'})")
    if problems and not args.skip_bad_lines:
        print(f"report: {len(problems)} unreadable samples line(s): the report covers the rest "
              "(rerun with --skip-bad-lines to accept)", file=sys.stderr)
        return 1
    return 0


def _check_against_logged(analysis: RunAnalysis, settings: Settings) -> None:
    """Warn when a recomputed figure disagrees with what lm-eval printed for the same samples."""
    run = analysis.run
    if not run.logged or run.bad_lines:
        return
    summary = summarise(analysis, dataclasses.replace(settings, delta=None, keep_nonexchangeable=None,
                                                      null_draws=0, subjects=()))
    checks = [
        ("leak_a", summary.a_rate), ("leak_a_chance", summary.a_chance), ("orig_rank", summary.mean_rank)
    ]
    newly_left_out = sum(r.item.guard_applied_here and not r.item.exchangeable for r in analysis.items)
    if newly_left_out:
        print(f"report: note: {run.model} / {run.task}: the samples predate the exchangeability guard; the "
              f"report leaves {newly_left_out} item(s) with order-bound options out of scenario a, which "
              "lm_eval counted (--keep-nonexchangeable counts them)", file=sys.stderr)
        checks = []
    if settings.reference_rule:
        checks.append(("leak_b", summary.b_rate))
    if settings.b_null == "auto":
        checks.append(("leak_b_cal", summary.bcal_rate if settings.alpha == 0.05 else math.nan))
    for name, value in checks:
        logged = run.logged.get(name)
        if not isinstance(logged, (int, float)) or math.isnan(value) or math.isnan(float(logged)):
            continue
        if not math.isclose(float(logged), value, rel_tol=1e-9, abs_tol=1e-12):
            print(f"report: warning: {run.model} / {run.task}: recomputed {name} = {value:.6g} but "
                  f"{run.results_path} says {logged:.6g}", file=sys.stderr)
