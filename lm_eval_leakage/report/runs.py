"""lm-eval output folders: which ``leak_*`` runs they hold, each read into a :class:`Run`.

``lm_eval ... --output_path DIR --log_samples`` writes, per model folder, ``results_<time>.json``
and one ``samples_<task>_<time>.jsonl`` per task. :func:`find_runs` pairs them (a folder whose
results name a ``leak_*`` task without its samples file is an error: the report recomputes every
figure from the per-item scores); :func:`load_runs` reads the latest run of each model and task.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_leakage.report.model_names import ModelId, display_names, model_id
from lm_eval_leakage.report.reader import (
    ItemScores,
    LineProblem,
    MissingSamplesError,
    ReportError,
    read_samples,
)

STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
SAMPLES_RE = re.compile(rf"^samples_(?P<task>.+)_(?P<stamp>{STAMP})\.jsonl$")
RESULTS_RE = re.compile(rf"^results_(?P<stamp>{STAMP})\.json$")
BENCHMARK_NAMES = {"mmlu": "MMLU", "cmmlu": "CMMLU", "ceval": "C-Eval", "cmb": "CMB", "custom": "custom"}


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
        model_key: The model's full identity (``model_names.ModelId.key``: type and arguments as
            the results file wrote them, or the run folder).
        superseded: Samples files of earlier runs of the same model and task that this run replaces.
    """

    model: str
    task: str
    samples_path: Path
    results_path: Path | None
    items: tuple[ItemScores, ...]
    logged: dict[str, Any]
    bad_lines: tuple[LineProblem, ...] = ()
    model_key: str = ""
    superseded: tuple[Path, ...] = ()

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


def benchmark_order(task: str) -> tuple[int, str]:
    """Sort key of a task: the benchmarks in :data:`BENCHMARK_NAMES` order, then the others."""
    keys = list(BENCHMARK_NAMES)
    base = task.removeprefix("leak_").removesuffix("_native")
    return (keys.index(base) if base in keys else len(keys), task)


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
        _add_runs_under(root, found)
    return sorted(found.values(), key=lambda r: (r.stamp, str(r.folder), r.task))


def _add_runs_under(root: Path, found: dict[tuple[Path, str, str], RunFiles]) -> None:
    """Add the runs under one path of :func:`find_runs` to ``found`` (keyed by folder, task, stamp)."""
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


def _run_files(path: Path) -> list[Path]:
    """A results or samples file with the other files of the same run (same timestamp) beside it."""
    match = SAMPLES_RE.match(path.name) or RESULTS_RE.match(path.name)
    if match is None:
        return [path]
    stamp = match["stamp"]
    return sorted({path} | {p for p in path.parent.glob(f"*_{stamp}.json*") if p.is_file()})


def model_name(files: RunFiles) -> str:
    """The model's short name: the results' ``model_name`` (last path part for local folders)."""
    return run_model(files).name


def run_model(files: RunFiles) -> ModelId:
    """The model of a run (see ``model_names``)."""
    return model_id(None if files.results is None else _read_json(files.results), str(files.folder))


def load_runs(paths: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """Read every ``leak_*`` run under ``paths``; bad samples lines are kept on each :class:`Run`.

    Runs are keyed by the model's full identity (``model_names``), so two models whose paths end
    in the same folder name stay apart, each with a unique display name. When the same model and
    task appear more than once, the latest run is used; the others are listed on it
    (``Run.superseded``) and in the notes.

    Returns:
        The runs, and notes for the user (superseded runs).

    Raises:
        ReportError: See :func:`find_runs`.
    """
    chosen: dict[tuple[str, str], RunFiles] = {}
    models: dict[str, ModelId] = {}
    superseded: dict[tuple[str, str], list[Path]] = {}
    notes: list[str] = []
    for files in find_runs(paths):
        model = run_model(files)
        models[model.key] = model
        key = (model.key, files.task)
        if key in chosen:
            notes.append(f"{chosen[key].samples} is superseded by the later run {files.samples}")
            superseded.setdefault(key, []).append(chosen[key].samples)  # type: ignore[arg-type]
        chosen[key] = files
    names = display_names(list(models.values()))
    runs: list[Run] = []
    for (model_key, task), files in chosen.items():
        assert files.samples is not None
        items, problems = read_samples(files.samples, on_bad_line="collect")
        logged: dict[str, Any] = {}
        if files.results is not None:
            values = _read_json(files.results).get("results", {}).get(task, {})
            logged = {k.split(",")[0]: v for k, v in values.items() if k.endswith(",none")}
        runs.append(Run(names[model_key], task, files.samples, files.results, tuple(items), logged,
                        tuple(problems), model_key, tuple(superseded.get((model_key, task), ()))))
    runs.sort(key=lambda r: (r.model, benchmark_order(r.task)))
    return runs, notes
