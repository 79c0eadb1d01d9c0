"""Writing a whole report folder: tables, figures and the HTML page from analysed runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lm_eval_leakage.report import figures as plots
from lm_eval_leakage.report.analysis import (
    RunAnalysis,
    Settings,
    Summary,
    most_suspicious,
    restrict,
    subjects_of,
    summarise,
)
from lm_eval_leakage.report.columns import ITEM_COLUMNS, SUMMARY_COLUMNS, file_slug, slug, summary_row
from lm_eval_leakage.report.figure_data import bar_data, bar_series, case_data, sorted_for_figure
from lm_eval_leakage.report.fonts import drawable, has_cjk_font
from lm_eval_leakage.report.html_page import inline_svg, leaderboard_html
from lm_eval_leakage.report.runs import benchmark_name, benchmark_order
from lm_eval_leakage.report.tables import (
    DELTA_SWEEP_COLUMNS,
    delta_sweep_markdown,
    item_rows,
    leaderboard_markdown,
    subjects_markdown,
    top_items_markdown,
    write_csv,
)

FONT_NOTE = (
    "no installed font draws some characters of these items (e.g. CJK): the figures show them as □; "
    "pass --font FILE (e.g. NotoSansCJK) to draw them; the Markdown, CSV and HTML files have the full "
    "text"
)


@dataclass(frozen=True)
class ReportOutput:
    """What :func:`write_report` produced."""

    summaries: tuple[Summary, ...]
    subject_summaries: tuple[Summary, ...]
    files: tuple[Path, ...]
    font_note: str


def delta_sweep(analyses: Sequence[RunAnalysis], deltas: Sequence[float], settings: Settings) -> list[Summary]:
    """Scenario b's figures for each threshold in ``deltas`` (the isolation scores are not refitted)."""
    return [summarise(a, dataclasses.replace(settings, delta=delta)) for a in analyses for delta in deltas]


def _bar_figures(summaries: Sequence[Summary], subject_summaries: Sequence[Summary], tasks: Sequence[str],
                 settings: Settings, folder: Path, formats: Sequence[str]) -> list[Path]:
    """The leaderboard figure and one subject figure per task with more than one subject."""
    files: list[Path] = []
    series = bar_series(settings)
    data = bar_data(sorted_for_figure(summaries), panel="benchmark", label="model")
    if data:
        files += plots.save(plots.bar_figure(data, series, title="Leakage by option shuffling"),
                            folder / "leaderboard", formats)
    for task in sorted(set(tasks), key=benchmark_order):
        rows = [s for s in subject_summaries if s.task == task]
        data = bar_data(rows, panel="model", label="subject", label_n=True)
        if data and len({s.subject for s in rows}) > 1:
            files += plots.save(plots.bar_figure(data, series, title=f"{benchmark_name(task)} by subject"),
                                folder / f"subjects_{slug(task)}", formats)
    return files


def _case_figures(analyses: Sequence[RunAnalysis], settings: Settings, folder: Path, formats: Sequence[str],
                  *, count: int, ids: Sequence[str]) -> list[Path]:
    """Case plots of each run's top scenario-a items and of the items named by ``ids``, one file name each."""
    files: list[Path] = []
    used: set[str] = set()
    for analysis in analyses:
        top_a = most_suspicious(analysis, scenario="a", count=count,
                                keep_nonexchangeable=settings.keep_nonexchangeable)
        chosen = {r.item.doc_id: r for r in top_a}
        chosen |= {r.item.doc_id: r for r in analysis.items if r.item.item_id in ids}
        for r in chosen.values():
            name = f"{file_slug(analysis.run.model)}__{slug(analysis.run.task)}__{file_slug(r.item.item_id)}"
            name = name if name not in used else f"{name}-doc{r.item.doc_id}"  # the same id on two docs
            used.add(name)
            files += plots.save(plots.case_figure(case_data(analysis, r, settings)), folder / "cases" / name,
                                formats)
    return files


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _font_note(analyses: Sequence[RunAnalysis]) -> str:
    texts = [a.run.model for a in analyses] + [r.item.question + "".join(r.item.options)
                                               for a in analyses for r in a.items]
    return "" if has_cjk_font() or not any(drawable(t)[1] for t in texts) else FONT_NOTE


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
    notes: Sequence[str] = (),
) -> ReportOutput:
    """Write every table and figure of the report under ``out``.

    Args:
        analyses: Scored runs (see ``analysis.analyse``).
        out: Output folder (created).
        settings: Detector settings.
        top: Items per run and scenario in the top-items list.
        case_count: Case plots per run, for its top scenario-a items.
        case_ids: Item ids to draw case plots for, in every run that has them.
        deltas: Thresholds for the delta sweep (none: no sweep).
        formats: Figure formats.
        problems: Problems to list in the report (bad lines).
        notes: Notes to list in ``leaderboard.md`` (``--subjects``, control items).

    Returns:
        The summaries and the files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    analyses = [restrict(a, settings.subjects) for a in analyses]
    summaries = [summarise(a, settings) for a in analyses]
    subject_summaries = [summarise(a, settings, subject=s) for a in analyses for s in subjects_of(a)]
    files = _bar_figures(summaries, subject_summaries, [a.run.task for a in analyses], settings, figures, formats)
    files += _case_figures(analyses, settings, figures, formats, count=case_count, ids=case_ids)
    missing = sorted(set(case_ids) - {r.item.item_id for a in analyses for r in a.items})
    problems = list(problems) + [f"--case {i}: no run has an item with this id" for i in missing]

    files.append(write_csv(out / "leaderboard.csv", [summary_row(s) for s in summaries], SUMMARY_COLUMNS))
    superseded = [f"{a.run.model} / {a.run.task}: {old} (replaced by the later run {a.run.samples_path})"
                  for a in analyses for old in a.run.superseded]
    board = leaderboard_markdown(summaries, settings, problems, notes, superseded)
    files.append(_write_text(out / "leaderboard.md", board))
    files.append(write_csv(out / "subjects.csv", [summary_row(s) for s in subject_summaries], SUMMARY_COLUMNS))
    files.append(_write_text(out / "subjects.md", subjects_markdown(subject_summaries)))
    files.append(write_csv(out / "items.csv", item_rows(analyses, settings), ITEM_COLUMNS))
    files.append(_write_text(out / "top_items.md", top_items_markdown(analyses, settings, count=top)))
    if deltas:
        sweep = delta_sweep(analyses, deltas, settings)
        files.append(write_csv(out / "delta_sweep.csv", [summary_row(s) for s in sweep], DELTA_SWEEP_COLUMNS))
        files.append(_write_text(out / "delta_sweep.md", delta_sweep_markdown(sweep)))
    svg = figures / "leaderboard.svg"
    page = leaderboard_html(summaries, subject_summaries, analyses, settings,
                            figure_svg=inline_svg(svg) if svg.exists() else "", problems=problems, top=top)
    files.append(_write_text(out / "leaderboard.html", page))
    return ReportOutput(tuple(summaries), tuple(subject_summaries), tuple(files), _font_note(analyses))
