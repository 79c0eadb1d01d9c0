"""Figures of a leakage report: the paper's bar chart and the case plot of one item.

Drawing only: every number arrives computed (``figure_data`` takes them from the report's
figures). Matplotlib runs on the Agg backend, so no display is needed. Fonts, including CJK ones
for Chinese benchmarks, are chosen in ``fonts``.
"""

from __future__ import annotations

import math
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lm_eval_leakage.core.templates import LETTERS
from lm_eval_leakage.report.fonts import FONT_NOTE, drawable, text_font

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# pyplot picks its backend at the first figure, so this still applies: no display is needed.
matplotlib.use("Agg")

COLOURS = {"a": "#c0392b", "b": "#2c6fbb", "bcal": "#2e8b57", "other": "#9a9a9a", "chance": "#222222"}


# --------------------------------------------------------------------------- bar figure


@dataclass(frozen=True)
class Bar:
    """One bar: a flagged fraction, its interval, and its level with no leakage (NaN: none)."""

    rate: float
    lo: float
    hi: float
    level: float


@dataclass(frozen=True)
class Series:
    """A kind of bar drawn in every row (e.g. scenario a)."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class BarDatum:
    """One row of the bar figure: a model (or subject) in one panel (benchmark or model).

    Attributes:
        panel: Panel title (a benchmark in the leaderboard figure, a model in a subject figure).
        label: Row label (a model, or a subject).
        n_items: Items behind the row.
        bars: One bar per series, keyed by :attr:`Series.key`; a missing key draws no bar.
    """

    panel: str
    label: str
    n_items: int
    bars: tuple[tuple[str, Bar], ...]


def _ordered_unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def bar_figure(data: Sequence[BarDatum], series: Sequence[Series], *, title: str = "") -> Figure:
    """The paper's leaderboard figure: horizontal bars per row, one panel per benchmark.

    Each row has one bar per series (the paper has scenario a and b), with its 95% interval as an
    error bar and a short dashed black line at the series' level with no leakage (chance for
    scenario a). Bars carry ``gid`` ``"<series>|<panel>|<label>"`` so tests and SVG readers can
    find them.

    Args:
        data: The rows; panels and rows appear in first-seen order, the first row at the top.
        series: The kinds of bar, top to bottom within a row.
        title: Figure title.

    Returns:
        The figure (close it with ``matplotlib.pyplot.close`` when done).
    """
    if not data:
        raise ValueError("bar_figure needs at least one row")
    panels = _ordered_unique([d.panel for d in data])
    labels = _ordered_unique([d.label for d in data])
    families = text_font()
    # Sizes in inches, so the legend and labels keep their room whatever the number of rows.
    top, bottom = 0.9, 0.75 + 0.2 * math.ceil((len(series) + 2) / 2)
    fig_height = top + (0.22 * len(series) + 0.12) * len(labels) + 0.3 + bottom
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 3.2 * len(panels), fig_height), sharey=True,
                             squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        _draw_panel(ax, panel, [d for d in data if d.panel == panel], labels, series)
    replaced = False
    tick_labels = []
    for label in labels:
        text, changed = drawable(label)
        replaced |= changed
        tick_labels.append(text)
    first = axes[0][0]
    first.set_yticks(range(len(labels)), tick_labels, fontfamily=families)
    first.set_ylim(len(labels) - 0.5, -0.5)
    handles: list[Any] = [Patch(color=kind.colour, label=kind.label) for kind in series]
    handles += [
        Line2D([], [], color=COLOURS["chance"], linestyle=(0, (2, 1)), label="its rate with no leakage"),
        Line2D([], [], color="#333333", marker="|", linestyle="none", label="95% Wilson interval"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    if title or replaced:
        heading = drawable(title)[0] + ("\n" + FONT_NOTE if replaced else "")
        fig.suptitle(heading, fontsize=10, fontfamily=families)
    longest = max(len(t) for t in tick_labels)
    fig.subplots_adjust(left=min(0.45, (0.3 + 0.075 * longest) / fig.get_figwidth()), right=0.97,
                        top=1 - top / fig_height, bottom=bottom / fig_height, wspace=0.14)
    return fig


def _draw_panel(ax: Any, panel: str, data: Sequence[BarDatum], labels: Sequence[str], series: Sequence[Series]
                ) -> None:
    """One panel of :func:`bar_figure`: its rows' bars, the panel title and the x axis."""
    families = text_font()
    height = 0.8 / len(series)
    rows = {d.label: d for d in data}
    for y, label in enumerate(labels):
        row = rows.get(label)
        if row is None:
            continue
        bars = dict(row.bars)
        for position, kind in enumerate(series):
            bar = bars.get(kind.key)
            if bar is not None:
                _draw_bar(ax, bar, kind.colour, y - 0.4 + height * (position + 0.5), height,
                          gid=f"{kind.key}|{panel}|{label}")
    sizes = {d.n_items for d in rows.values()}
    panel_title = drawable(panel)[0] + (f" (n={sizes.pop()})" if len(sizes) == 1 else "")
    ax.set_title(panel_title, fontfamily=families)
    ax.set_xlim(0, 1.1)  # room for the value labels of bars near 1
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("fraction of items flagged")


def _draw_bar(ax: Any, bar: Bar, colour: str, centre: float, height: float, *, gid: str) -> None:
    """One bar with its interval, its value and a short dashed line at its level with no leakage."""
    drawn = ax.barh(centre, 0.0 if math.isnan(bar.rate) else bar.rate, height=height * 0.92, color=colour)
    drawn.patches[0].set_gid(gid)
    if not (math.isnan(bar.lo) or math.isnan(bar.hi) or math.isnan(bar.rate)):
        spread = [[max(0.0, bar.rate - bar.lo)], [max(0.0, bar.hi - bar.rate)]]
        ax.errorbar(bar.rate, centre, xerr=spread, fmt="none", ecolor="#333333", elinewidth=0.9, capsize=2.0)
    if not math.isnan(bar.rate):
        end = max(v for v in (bar.rate, bar.hi, bar.level) if not math.isnan(v))
        ax.text(end + 0.015, centre, f"{bar.rate:.3f}", va="center", ha="left", fontsize=6.5,
                color="#333333", fontfamily=text_font())
    if not math.isnan(bar.level):
        ax.plot([bar.level, bar.level], [centre - height / 2, centre + height / 2],
                color=COLOURS["chance"], linewidth=1.5, linestyle=(0, (2, 1)))


# --------------------------------------------------------------------------- case plot


@dataclass(frozen=True)
class CaseData:
    """Everything the case plot of one item shows.

    Attributes:
        title: Title line (model, task, item).
        question: The question text.
        options: Option texts in the original (published) order.
        perms: ``perms[j][p]`` is the original index of the option shown at position ``p`` in
            ordering ``j``; ``perms[0]`` is the original order.
        scores: Log-likelihood of each ordering.
        note: A line of statistics shown under the title.
    """

    title: str
    question: str
    options: tuple[str, ...]
    perms: tuple[tuple[int, ...], ...]
    scores: tuple[float, ...]
    note: str = ""


def ordering_label(perm: Sequence[int]) -> str:
    """Letters of the original options in the order shown, e.g. ``"BADC"``."""
    return "".join(LETTERS[i] for i in perm)


def case_figure(case: CaseData, *, wrap: int = 110) -> Figure:
    """Scores of all orderings of one item, the original and the best highlighted.

    Orderings are on the x axis in the order they were scored (ordering 0, the original, first);
    each ordering is named by the original letters of the options it shows in positions A, B, ...
    The caption gives the question and the option texts in the original order.

    Args:
        case: The item.
        wrap: Caption line width in characters.

    Returns:
        The figure.
    """
    if len(case.scores) != len(case.perms) or not case.scores:
        raise ValueError(f"{case.title}: {len(case.scores)} scores for {len(case.perms)} orderings")
    families = text_font()
    scores = list(case.scores)
    n = len(scores)
    best = max(range(n), key=lambda j: (scores[j], -j))
    caption_lines, replaced = _caption(case, wrap=wrap)
    caption_lines.append(
        "Orderings are named by the original letters shown at positions A, B, ...; "
        "ordering 0 is the published order."
    )
    # Layout in inches: title, plot, tick labels, then one caption line per 0.16 in.
    title_h, plot_h, ticks_h, line_h = 0.55, 2.6, (0.55 if n <= 40 else 0.45), 0.16
    caption_h = line_h * len(caption_lines) + 0.15
    fig_height = title_h + plot_h + ticks_h + caption_h
    width = min(12.0, max(8.0, 0.26 * n + 2.0))
    fig = plt.figure(figsize=(width, fig_height))
    ax = fig.add_axes((0.9 / width, (caption_h + ticks_h) / fig_height, 1 - 1.1 / width, plot_h / fig_height))
    finite = [s for s in scores if math.isfinite(s)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = 0.08 * (high - low) if high > low else 1.0
    base = low - pad
    colours = [COLOURS["other"]] * n
    colours[best] = COLOURS["b"]
    colours[0] = COLOURS["a"]
    ax.bar(range(n), [s - base for s in scores], bottom=base, color=colours, width=0.75)
    mean = sum(finite) / len(finite) if finite else float("nan")
    ax.axhline(mean, color=COLOURS["chance"], linewidth=0.8, linestyle=(0, (4, 2)))
    # Head room above the highest bar keeps the legend off the bars.
    ax.set_ylim(base, high + pad + 0.3 * (high - base))
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylabel("log-likelihood of the option block")
    if n <= 40:
        ax.set_xticks(range(n), [ordering_label(p) for p in case.perms], rotation=90, fontsize=7,
                      fontfamily="DejaVu Sans Mono")
    else:
        ax.set_xlabel(f"ordering (0 = original; {n} orderings)")
    _case_legend(ax, case.perms, best)
    title, title_replaced = drawable(case.title)
    ax.set_title(title + ("\n" + case.note if case.note else ""), fontsize=9, fontfamily=families, loc="left")
    fig.text(0.1 / width, 0.1 / fig_height, "\n".join(caption_lines), fontsize=8, fontfamily=families,
             va="bottom", ha="left", linespacing=1.35)
    if replaced or title_replaced:
        fig.text(0.98, 0.005, FONT_NOTE, fontsize=7, ha="right", va="bottom", color="#aa0000")
    return fig


def _case_legend(ax: Any, perms: Sequence[Sequence[int]], best: int) -> None:
    """The case plot's legend: the original ordering, the best one (when another), the mean."""
    handles = [
        Patch(color=COLOURS["a"], label=f"original ({ordering_label(perms[0])})" + (" = best" if best == 0 else "")),
        Line2D([], [], color=COLOURS["chance"], linestyle=(0, (4, 2)), label="mean"),
    ]
    if best != 0:
        handles.insert(1, Patch(color=COLOURS["b"], label=f"best ({ordering_label(perms[best])})"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9, ncol=len(handles))


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def wrap_text(text: str, width: int, *, indent: str = "") -> list[str]:
    """Wrap ``text`` to ``width`` columns, counting wide (CJK) characters as two columns.

    Latin text breaks at spaces (``textwrap``); text with wide characters, which has no spaces
    between words, breaks between any two characters.
    """
    if not any(_width(c) == 2 for c in text):
        return textwrap.wrap(text, width, subsequent_indent=indent) or [""]
    lines: list[str] = []
    line, used = "", 0
    for char in text:
        if used + _width(char) > width and line:
            lines.append(line)
            line, used = indent, len(indent)
        line += char
        used += _width(char)
    return [*lines, line]


def _caption(case: CaseData, *, wrap: int) -> tuple[list[str], bool]:
    replaced = False
    question, changed = drawable(" ".join(case.question.split()))
    replaced |= changed
    lines = wrap_text("Q: " + question, wrap, indent="   ")
    for index, option in enumerate(case.options):
        text, changed = drawable(" ".join(option.split()))
        replaced |= changed
        lines += wrap_text(f"{LETTERS[index]}: {text}", wrap, indent="   ")
    return lines, replaced


def save(fig: Figure, stem: Path, formats: Sequence[str] = ("png", "svg"), *, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``stem.<format>`` for each format, close it, and return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(stem.name + "." + fmt)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        paths.append(path)
    plt.close(fig)
    return paths
