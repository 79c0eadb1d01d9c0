"""What the report says about its input beside the figures: subjects and control items.

:func:`check_subjects` turns ``--subjects`` that no run has into an error listing the subjects the
runs have, and those some runs lack into notes; :func:`control_notes` warns when a ``*_control``
run has no control items (no item found a donor) or observed-minus-control figures that are NaN.
Both notes go to stderr and into ``leaderboard.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lm_eval_leakage.core import pipeline
from lm_eval_leakage.report.analysis import RunAnalysis, Settings
from lm_eval_leakage.report.reader import ReportError
from lm_eval_leakage.report.runs import Run

CONTROL_FIGURES = ("leak_a", "orig_rank", "leak_b_cal")


def check_subjects(runs: Sequence[Run], subjects: Sequence[str]) -> list[str]:
    """Notes on runs without some of ``subjects``.

    Raises:
        ReportError: A subject is in no run (the message lists the subjects the runs have).
    """
    if not subjects:
        return []
    per_run = {(r.model, r.task): {i.subject for i in r.items if i.role == "observed"} for r in runs}
    known = set().union(*per_run.values())
    unknown = [s for s in subjects if s not in known]
    if unknown:
        have = ", ".join(sorted(s for s in known if s)) or "none (no item has a subject)"
        raise ReportError(f"--subjects: no run has an item of subject {', '.join(unknown)}; "
                          f"the runs' subjects: {have}")
    notes = []
    for (model, task), have_run in per_run.items():
        lacking = [s for s in subjects if s not in have_run]
        if lacking:
            empty = "; its figures are n/a" if len(lacking) == len(subjects) else ""
            notes.append(f"--subjects: {model} / {task} has no item of subject {', '.join(lacking)}{empty}")
    return notes


def control_notes(analyses: Sequence[RunAnalysis], settings: Settings) -> list[str]:
    """Warnings on ``*_control`` runs whose observed-minus-control figures are missing or NaN."""
    notes = []
    for analysis in analyses:
        run = analysis.run
        if not run.task.endswith("_control"):
            continue
        control = [r for r in analysis.records if r.role == "control"]
        if not control:
            notes.append(f"{run.model} / {run.task}: no control items (no item found a donor), so there is "
                         "nothing to compare the observed items with; its figures are the observed items' only")
            continue
        figures = pipeline.summarise(analysis.records, settings.pipeline())
        assert figures.vs_control is not None
        missing = [n for n in CONTROL_FIGURES if math.isnan(getattr(figures.vs_control, n).difference)]
        if missing:
            keep = settings.keep_nonexchangeable
            in_a = {role: sum(r.role == role and r.passes_guard(keep) for r in analysis.records)
                    for role in ("observed", "control")}
            notes.append(f"{run.model} / {run.task}: observed minus control is n/a (NaN) for "
                         f"{', '.join(missing)}: too few usable items ({in_a['observed']} observed and "
                         f"{in_a['control']} control item(s) in scenario a, of {len(control)} control item(s))")
    return notes
