"""The columns of the report's tables, in one place: name, header, formatter, sort value, meaning.

Every table of :class:`analysis.Summary` rows (``leaderboard.md``, ``subjects.md``, the HTML page)
picks its columns from :data:`COLUMNS` by name, so a figure is formatted the same way everywhere;
the CSV files have one column per ``Summary`` field (:data:`SUMMARY_COLUMNS`) at full precision.
:data:`GRID_NOTES` explains the cells of the models x benchmarks grid (:func:`grid_cells`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lm_eval_leakage.report.analysis import Summary


def num(value: float, digits: int = 3) -> str:
    """A figure with ``digits`` decimals (``"n/a"`` for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def pval(value: float) -> str:
    """A p-value: three decimals, two significant digits below 0.001."""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def md(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "item"


def file_slug(text: str) -> str:
    """:func:`slug`, with a short stable hash of ``text`` when the slug differs from it, so that two
    texts never share a file name (``中1`` and ``日1``, ``a/b`` and ``a_b``)."""
    name = slug(text)
    return name if name == text else f"{name}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def interval(rate: float, lo: float, hi: float) -> str:
    return f"{num(rate)} [{num(lo)}, {num(hi)}]"


def sort_value(value: float) -> str:
    """The HTML sort value of a figure (empty for NaN)."""
    return "" if math.isnan(value) else repr(float(value))


def _star(pvalue: float) -> str:
    return "*" if pvalue < 0.05 else ""


@dataclass(frozen=True)
class Column:
    """One column of the Summary tables.

    Attributes:
        name: Key of the column in :data:`COLUMNS`.
        header: Header in the Markdown tables.
        show: The cell's text.
        value: The HTML sort value (``None``: sort by the text).
        text: A text column (left-aligned in HTML, sorted as text).
        html_header: Header in the HTML page (default: ``header``).
    """

    name: str
    header: str
    show: Callable[[Summary], Any]
    value: Callable[[Summary], Any] | None = None
    text: bool = False
    html_header: str | None = None


def _figure(name: str, header: str, field: str, fmt: Callable[[float], str], html_header: str | None = None
            ) -> Column:
    return Column(name, header, lambda s: fmt(getattr(s, field)), lambda s: sort_value(getattr(s, field)),
                  html_header=html_header)


def _rate(name: str, field: str) -> Column:
    """A flagged fraction ``field`` with its Wilson interval ``field_ci_lo``, ``field_ci_hi``."""
    fields = (field, f"{field}_ci_lo", f"{field}_ci_hi")
    return Column(name, name, lambda s: interval(*(getattr(s, f) for f in fields)),
                  lambda s: sort_value(getattr(s, field)), html_header=f"{name} [95% CI]")


def _difference(name: str, field: str) -> Column:
    """Observed minus control ``field`` with its 95% interval ``field_lo``, ``field_hi``."""
    fields = (field, f"{field}_lo", f"{field}_hi")

    def show(s: Summary) -> str:
        return "n/a" if math.isnan(getattr(s, field)) else interval(*(getattr(s, f) for f in fields))

    return Column(name, name, show, lambda s: sort_value(getattr(s, field)), html_header=f"{name} [95% CI]")


def _count(name: str, field: str) -> Column:
    return Column(name, name, lambda s: getattr(s, field), lambda s: getattr(s, field))


_ALL = [
    Column("model", "model", lambda s: s.model, text=True),
    Column("benchmark", "benchmark", lambda s: s.benchmark, text=True),
    Column("run", "run", lambda s: f"{s.model} / {s.task}", text=True),
    Column("subject", "subject", lambda s: s.subject or "(none)", text=True),
    _count("items", "n_items"),
    Column("items read", "items", lambda s: f"{s.n_items}" + (f" (+{s.bad_lines} bad lines)" if s.bad_lines else "")),
    _count("excluded", "n_excluded"),
    _count("non-exch.", "n_nonexch"),
    _count("bad lines", "bad_lines"),
    _rate("a", "leak_a"),
    _figure("chance", "chance", "leak_a_chance", num),
    _figure("a - chance", "a - chance", "leak_a_excess", num),
    _figure("p (a)", "p (a)", "leak_a_p", pval),
    _figure("mean rank", "mean rank", "orig_rank", num),
    _figure("p (rank)", "p (rank)", "orig_rank_p", pval),
    _rate("b", "leak_b"),
    Column("delta", "delta", lambda s: s.leak_b_delta, text=True),
    _figure("null (b)", "null (b)", "leak_b_null", num),
    _figure("p (b)", "p (b)", "leak_b_p", pval),
    _rate("b cal.", "leak_b_cal"),
    _figure("p (b cal.)", "p (b cal.)", "leak_b_cal_p", pval),
    Column("null (b cal.)", "null (b cal.)", lambda s: s.leak_b_cal_null, text=True),
    _difference("a - control", "leak_a_vs_control"),
    _difference("rank - control", "orig_rank_vs_control"),
    _difference("b cal. - control", "leak_b_cal_vs_control"),
    Column("verdict", "verdict", lambda s: s.verdict, text=True),
]
COLUMNS: dict[str, Column] = {c.name: c for c in _ALL}
"""Every column of the Summary tables, by name."""

_FIGURES = ("excluded", "non-exch.", "a", "chance", "a - chance", "p (a)", "mean rank", "p (rank)", "b", "delta",
            "null (b)", "p (b)", "b cal.", "p (b cal.)", "null (b cal.)", "a - control", "rank - control",
            "b cal. - control", "verdict")
LEADERBOARD_MD = ("model", "benchmark", "items read", *_FIGURES)
"""``leaderboard.md``'s table of every figure per run."""
SUBJECTS_MD = ("subject", "items", "a", "chance", "p (a)", "b", "null (b)", "b cal.", "mean rank")
"""``subjects.md``'s table per run."""
LEADERBOARD_HTML = ("model", "benchmark", "items", *_FIGURES[:2], "bad lines", *_FIGURES[2:])
"""The HTML page's leaderboard table."""
SUBJECTS_HTML = ("run", "subject", *LEADERBOARD_HTML[2:])
"""The HTML page's subject table."""

SUMMARY_COLUMNS = [f.name for f in dataclasses.fields(Summary)]
"""``leaderboard.csv`` and ``subjects.csv``: every field of :class:`analysis.Summary`."""


def summary_row(summary: Summary) -> dict[str, Any]:
    """A CSV row of :data:`SUMMARY_COLUMNS`."""
    return dataclasses.asdict(summary)


def grid_cells(s: Summary) -> list[str]:
    """The leaderboard grid's three cells of one run: scenario a, the paper's b, calibrated b."""
    return [
        (f"{num(s.leak_a)}{_star(s.leak_a_p)} [{num(s.leak_a_ci_lo)}, {num(s.leak_a_ci_hi)}] "
         f"(chance {num(s.leak_a_chance)})"),
        (f"{num(s.leak_b)}{_star(s.leak_b_p)} [{num(s.leak_b_ci_lo)}, {num(s.leak_b_ci_hi)}] "
         f"(null {num(s.leak_b_null)})"),
        (f"{num(s.leak_b_cal)}{_star(s.leak_b_cal_p)} [{num(s.leak_b_cal_ci_lo)}, {num(s.leak_b_cal_ci_hi)}] "
         f"(level {num(s.leak_b_cal_alpha, 2)})"),
    ]


GRID_NOTES = [
    ("a", (
        "Algorithm 1 (paper): fraction of items whose original ordering scores >= every other ordering, over "
        "items with exchangeable options; 95% Wilson interval; * = exact one-sided p < 0.05 against chance. "
        "CSV and lm-eval column leak_a (p-value leak_a_p; interval leak_a_ci_lo, leak_a_ci_hi in the CSV; "
        "leak_a_excess with its interval leak_a_excess_lo, leak_a_excess_hi in both)."
    )),
    ("chance", (
        "scenario a with no leakage: mean of 1 / (orderings scored) over items "
        "(1/24 = 0.042 for four options). Column leak_a_chance."
    )),
    ("b", (
        "Algorithm 2 (paper): fraction of items whose best ordering's IsolationForest score is below delta; "
        "95% Wilson interval; * = p < 0.05 against the null. Column leak_b (lm-eval's at the run's own "
        "delta; CSV: leak_b_delta, leak_b_ci_lo, leak_b_ci_hi, leak_b_p)."
    )),
    ("null", (
        "the paper's rule on simulated clean items (i.i.d. normal scores, same orderings and delta): a "
        "reference level only; the rule is uncalibrated and real clean models differ. CSV column leak_b_null."
    )),
    ("b cal.", (
        "calibrated scenario-b test (slot agreement of the item's ordering scores with its best ordering; "
        "null: the control items, else the mirror): fraction of items "
        "with p < level; its rate with no leakage is the level; * = p < 0.05 for a rate above it. Column "
        "leak_b_cal (p-value leak_b_cal_p; CSV: level leak_b_cal_alpha, interval of the fraction "
        "leak_b_cal_ci_lo, leak_b_cal_ci_hi; in both: leak_b_cal_excess with its interval leak_b_cal_lo, "
        "leak_b_cal_hi)."
    )),
    ("mean rank", (
        "mean normalised rank of the original ordering (0 = first, 0.5 with no leakage). Column orig_rank "
        "(p-value orig_rank_p)."
    )),
    ("- control", (
        "observed minus control with its 95% interval (control tasks only; n/a otherwise): the lift of a "
        "figure over the floor the same model reaches on questions paired with other items' options. "
        "Columns leak_a_vs_control, orig_rank_vs_control, leak_b_cal_vs_control (with _lo, _hi)."
    )),
    ("verdict", (
        "leakage when a figure's lift over the floor (control items, else chance) is above 0 beyond its "
        "interval; each of the three figures (scenario a, mean rank, scenario b cal.) is tested at 0.05/3, so "
        "a model at the floor gets a leakage verdict at most 5% of the time. Lifts in points (hundredths)."
    )),
]
"""What the leaderboard grid's cells and levels mean (listed under the grid in Markdown and HTML)."""

ITEM_COLUMNS = [
    "model", "task", "doc_id", "item_id", "subject", "status", "n_orderings", "exchangeable",
    "nonexch_reasons",
    "leak_a", "orig_rank", "orig_p", "orig_z", "gap_ratio", "best", "best_ordering", "leak_b_score",
    "leak_b_delta", "leak_b", "leak_b_cal_statistic", "leak_b_cal_pvalue", "leak_b_cal",
    "question", "options",
]
"""``items.csv``: one row per item. A per-item figure has the name of the run-level column it feeds
(``leak_a``: the original ordering scores highest; ``orig_rank``, ``orig_p``, ``orig_z``,
``gap_ratio``: the original's normalised rank, permutation p-value, z-score and gap ratio;
``leak_b_score``: Algorithm 2's isolation score of the best ordering, flagged (``leak_b``) below
``leak_b_delta``; ``leak_b_cal_statistic``, ``leak_b_cal_pvalue``: the calibrated test's ``T+``
and its p-value, flagged (``leak_b_cal``) below the level)."""
