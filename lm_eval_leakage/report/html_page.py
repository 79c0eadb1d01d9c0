"""The report's HTML page: one self-contained file (inline CSS, JavaScript and SVG, nothing loaded).

Its three tables (leaderboard, subjects, most suspicious items) sort by clicking a header: each
cell carries its sort value in ``data-value`` and a few lines of inline JavaScript
(:data:`SORT_SCRIPT`) reorder the rows.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lm_eval_leakage.core.templates import LETTERS
from lm_eval_leakage.report.analysis import ItemResult, RunAnalysis, Settings, Summary, most_suspicious
from lm_eval_leakage.report.columns import (
    COLUMNS,
    GRID_NOTES,
    LEADERBOARD_HTML,
    SUBJECTS_HTML,
    num,
    pval,
    sort_value,
)
from lm_eval_leakage.report.figures import ordering_label
from lm_eval_leakage.report.tables import settings_line

SORT_SCRIPT = """
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

STYLE = """
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



def _html_table(columns: Sequence[tuple[str, bool]], rows: Iterable[Sequence[tuple[Any, Any]]]) -> str:
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


def summary_table(summaries: Sequence[Summary], names: Sequence[str]) -> str:
    """A sortable table of Summary rows with the columns ``names`` of ``columns.COLUMNS``."""
    columns = [COLUMNS[n] for n in names]
    header = [(c.html_header or c.header, c.text) for c in columns]
    rows = [[(c.show(s), None if c.value is None else c.value(s)) for c in columns] for s in summaries]
    return _html_table(header, rows)


ITEM_HEADER = [("model", True), ("task", True), ("item", True), ("subject", True), ("z (original)", False),
               ("p (original)", False), ("rank", False), ("flag a", False), ("isolation (best)", False),
               ("flag b", False), ("p (b cal.)", False), ("best ordering", True), ("question and options", True)]


def _item_cells(analysis: RunAnalysis, r: ItemResult, settings: Settings) -> list[tuple[Any, Any]]:
    item, st = r.item, r.stats
    options = " | ".join(f"{LETTERS[i]}: {o}" for i, o in enumerate(item.options))
    flag_b = int(r.flag_b(settings.delta))
    return [
        (analysis.run.model, None), (analysis.run.task, None), (item.item_id, None), (item.subject, None),
        (num(st.zscore, 2), sort_value(st.zscore)), (pval(st.pvalue), sort_value(st.pvalue)),
        (num(st.rank, 2), sort_value(st.rank)), (int(st.original_first), int(st.original_first)),
        (num(r.isolation), sort_value(r.isolation)), (flag_b, flag_b),
        (pval(r.cal_pvalue), sort_value(r.cal_pvalue)),
        (ordering_label(item.perms[st.best]), None), (f"{item.question} || {options}", None),
    ]


def item_table(analyses: Sequence[RunAnalysis], settings: Settings, *, top: int) -> str:
    """The most suspicious items of each run (scenario a's, then scenario b's not already shown)."""
    rows = []
    for analysis in analyses:
        shown: dict[int, ItemResult] = {}
        for scenario in ("a", "b"):
            for r in most_suspicious(analysis, scenario=scenario, count=top,  # type: ignore[arg-type]
                                     keep_nonexchangeable=settings.keep_nonexchangeable):
                shown.setdefault(r.item.doc_id, r)
        rows += [_item_cells(analysis, r, settings) for r in shown.values()]
    return _html_table(ITEM_HEADER, rows)


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
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>Leakage leaderboard</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>Leakage leaderboard</h1>",
        (f'<p class="note">Option-shuffling leakage test (Ni et al., arXiv 2409.01790). '
         f"{html.escape(settings_line(settings, len(summaries)))} Click a column header to sort.</p>"),
    ]
    if problems:
        parts.append('<div class="problems"><h2>Problems</h2><ul>')
        parts += [f"<li>{html.escape(p)}</li>" for p in problems]
        parts.append("</ul></div>")
    parts.append(summary_table(summaries, LEADERBOARD_HTML))
    parts.append('<ul class="note">' + "".join(
        f"<li><b>{html.escape(n)}</b>: {html.escape(t)}</li>" for n, t in GRID_NOTES) + "</ul>")
    parts.append(f"<figure>{figure_svg}</figure>")
    parts.append("<h2>By subject</h2>")
    parts.append(summary_table(subject_summaries, SUBJECTS_HTML))
    parts.append("<h2>Most suspicious items</h2>")
    parts.append(item_table(analyses, settings, top=top))
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def inline_svg(path: Path) -> str:
    """An SVG file's ``<svg>`` element, to put inside the page."""
    text = path.read_text(encoding="utf-8")
    return text[text.index("<svg"):]
