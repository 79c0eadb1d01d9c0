"""The report's Markdown and CSV files: leaderboard, subjects, items, top items, delta sweep."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval_leakage.core.templates import LETTERS
from lm_eval_leakage.report.analysis import ItemResult, RunAnalysis, Settings, Summary, most_suspicious
from lm_eval_leakage.report.columns import (
    COLUMNS,
    GRID_NOTES,
    LEADERBOARD_MD,
    SUBJECTS_MD,
    grid_cells,
    md,
    num,
    pval,
)
from lm_eval_leakage.report.figures import ordering_label
from lm_eval_leakage.report.runs import benchmark_order

DELTA_SWEEP_COLUMNS = [
    "model", "task", "leak_b_delta", "n_items", "leak_b", "leak_b_ci_lo", "leak_b_ci_hi", "leak_b_null",
    "leak_b_p",
]
"""``delta_sweep.csv``: Algorithm 2's figures (fields of ``analysis.Summary``) at each threshold."""


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV with ``columns`` (floats at full precision, NaN as empty)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return path


def settings_line(settings: Settings, count: int) -> str:
    """The sentence under the title that says how the figures were recomputed."""
    keep = {None: "as run", True: "kept", False: "left out"}[settings.keep_nonexchangeable]
    return (
        f"Recomputed from the saved ordering scores of {count} run(s). Algorithm 2 threshold: "
        f"{settings.delta_label() if settings.reference_rule else 'off'}; calibrated test level "
        f"{settings.alpha:g}, null {settings.b_null}; items with non-exchangeable options in scenario a: "
        f"{keep}"
        + (f"; subjects: {', '.join(settings.subjects)}" if settings.subjects else "")
        + "."
    )


def _table(summaries: Sequence[Summary], names: Sequence[str]) -> list[str]:
    columns = [COLUMNS[n] for n in names]
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md(c.show(s)) for c in columns) + " |" for s in summaries]
    return lines


def _grid(summaries: Sequence[Summary]) -> list[str]:
    """The models x benchmarks grid, three cells per benchmark."""
    models = list(dict.fromkeys(s.model for s in summaries))
    tasks = sorted({(s.task, s.benchmark) for s in summaries}, key=lambda t: benchmark_order(t[0]))
    by_run = {(s.model, s.task): s for s in summaries}
    header = ["model"] + [f"{b} {x}" for _, b in tasks for x in ("a", "b", "b cal.")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        cells = [md(model)]
        for task, _ in tasks:
            s = by_run.get((model, task))
            cells += grid_cells(s) if s else ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def leaderboard_markdown(summaries: Sequence[Summary], settings: Settings, problems: Sequence[str],
                         notes: Sequence[str] = (), superseded: Sequence[str] = ()) -> str:
    """The leaderboard as Markdown: a models x benchmarks grid, every figure per run, then the notes
    (``--subjects``, control items), the superseded runs and the problems (bad lines), when any."""
    lines = ["# Leakage leaderboard", "", settings_line(settings, len(summaries)), "", *_grid(summaries)]
    lines += ["", "| column | meaning |", "|---|---|"]
    lines += [f"| {name} | {text} |" for name, text in GRID_NOTES]
    lines += ["", "## Verdicts", ""] + [f"- {md(s.model)} / {md(s.benchmark)}: {md(s.verdict)}" for s in summaries]
    lines += ["", "## Every figure", "", *_table(summaries, LEADERBOARD_MD)]
    for title, entries in (("Notes", notes), ("Superseded runs", superseded), ("Problems", problems)):
        if entries:
            lines += ["", f"## {title}", ""] + [f"- {md(e)}" for e in entries]
    return "\n".join(lines) + "\n"


def subjects_markdown(summaries: Sequence[Summary]) -> str:
    """Per-subject figures as Markdown, one table per run."""
    lines = ["# Leakage by subject", ""]
    groups: dict[tuple[str, str], list[Summary]] = {}
    for s in summaries:
        groups.setdefault((s.model, s.task), []).append(s)
    for (model, task), group in groups.items():
        lines += [f"## {md(model)} / {task}", "", *_table(group, SUBJECTS_MD), ""]
    return "\n".join(lines)


def delta_sweep_markdown(sweep: Sequence[Summary]) -> str:
    """Algorithm 2's figures at each threshold of ``--delta-sweep``."""
    lines = ["# Algorithm 2 at other thresholds", "",
             "| model | benchmark | delta | b [95% CI] | null (b) | p (b) |", "|---|---|---|---|---|---|"]
    lines += [f"| {md(s.model)} | {md(s.benchmark)} | {s.leak_b_delta} | {num(s.leak_b)} "
              f"[{num(s.leak_b_ci_lo)}, {num(s.leak_b_ci_hi)}] | {num(s.leak_b_null)} | {pval(s.leak_b_p)} |"
              for s in sweep]
    return "\n".join(lines) + "\n"


def _ordering_text(r: ItemResult, j: int) -> str:
    return "; ".join(f"{LETTERS[p]}: {r.item.options[i]}" for p, i in enumerate(r.item.perms[j]))


def _item_line(r: ItemResult, settings: Settings) -> str:
    item, st = r.item, r.stats
    flags = [
        f"a: {'yes' if st.original_first else 'no'}"
        + ("" if r.passes_guard(settings.keep_nonexchangeable)
           else " (not counted: options not exchangeable)"),
        f"b: {'yes' if r.flag_b(settings.delta) else 'no'}" if not math.isnan(r.isolation) else "b: off",
        f"b cal.: {'yes' if r.cal_pvalue < settings.alpha else 'no'}",
    ]
    nonexch = "" if item.exchangeable else f"; options not exchangeable ({', '.join(item.nonexch_reasons)})"
    return (
        f"**{md(item.item_id)}** ({md(item.subject) or 'no subject'}): flagged {', '.join(flags)}; "
        f"original z = {num(st.zscore, 2)}, p = {pval(st.pvalue)}, rank {num(st.rank, 2)}; best ordering "
        f"{ordering_label(item.perms[st.best])} (isolation {num(r.isolation)}, "
        f"calibrated p {pval(r.cal_pvalue)})"
        f"{md(nonexch)}"
    )


def _item_block(r: ItemResult, settings: Settings) -> list[str]:
    lines = ["- " + _item_line(r, settings), f"  - Q: {md(r.item.question)}",
             "  - options: " + "; ".join(f"{LETTERS[i]}: {md(o)}" for i, o in enumerate(r.item.options))]
    if r.stats.best != 0:
        lines.append(f"  - best ordering shows: {md(_ordering_text(r, r.stats.best))}")
    return lines


def top_items_markdown(analyses: Sequence[RunAnalysis], settings: Settings, *, count: int) -> str:
    """The most suspicious items of each run with their question and options (the case study)."""
    lines = ["# Most suspicious items", ""]
    lines.append(
        "Per run, the items whose original ordering stands out most (scenario a, by its z-score among the "
        "orderings) and the items whose best ordering stands out most whichever it is (scenario b, by the "
        "calibrated test's p-value)."
    )
    scenarios = (("a", "scenario a (original first)"), ("b", "scenario b (any ordering stands out)"))
    for analysis in analyses:
        for scenario, title in scenarios:
            lines += ["", f"## {md(analysis.run.model)} / {analysis.run.task}: {title}", ""]
            top = most_suspicious(analysis, scenario=scenario, count=count,  # type: ignore[arg-type]
                                  keep_nonexchangeable=settings.keep_nonexchangeable)
            if not top:
                lines.append("No analysable item.")
            for r in top:
                lines += _item_block(r, settings)
    return "\n".join(lines) + "\n"


def item_rows(analyses: Sequence[RunAnalysis], settings: Settings) -> list[dict[str, Any]]:
    """One CSV row per item (control items included) with its figures."""
    rows = []
    for analysis in analyses:
        for r in analysis.items:
            item, st = r.item, r.stats
            rows.append({
                "model": analysis.run.model, "task": analysis.run.task, "doc_id": item.doc_id,
                "item_id": item.item_id, "subject": item.subject, "status": st.status,
                "n_orderings": st.n_orderings, "exchangeable": int(item.exchangeable),
                "nonexch_reasons": "; ".join(item.nonexch_reasons), "leak_a": int(st.original_first),
                "orig_rank": st.rank, "orig_p": st.pvalue, "orig_z": st.zscore, "gap_ratio": st.gap_ratio,
                "best": st.best, "best_ordering": ordering_label(item.perms[st.best]) if st.ok else "",
                "leak_b_score": r.isolation,
                "leak_b_delta": r.record.delta if settings.delta is None else settings.delta,
                "leak_b": int(r.flag_b(settings.delta)), "leak_b_cal_statistic": r.cal_statistic,
                "leak_b_cal_pvalue": r.cal_pvalue, "leak_b_cal": int(r.cal_pvalue < settings.alpha),
                "question": item.question, "options": " | ".join(item.options),
            })
    return rows
