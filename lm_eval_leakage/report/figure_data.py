"""What the figures show, taken from the report's figures: bars per run or subject, one item's case plot."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lm_eval_leakage.report.analysis import ItemResult, RunAnalysis, Settings, Summary
from lm_eval_leakage.report.columns import num, pval
from lm_eval_leakage.report.figures import COLOURS, Bar, BarDatum, CaseData, Series
from lm_eval_leakage.report.runs import benchmark_order


def bar_series(settings: Settings) -> list[Series]:
    """The bars of each row: scenario a, the paper's scenario b (unless off), the calibrated test."""
    series = [Series("a", "scenario a: original ordering first (paper, Alg. 1)", COLOURS["a"])]
    if settings.reference_rule:
        delta = "the paper's delta" if settings.delta is None else f"delta {settings.delta:g}"
        label = f"scenario b: best ordering isolated (paper, Alg. 2, {delta})"
        series.append(Series("b", label, COLOURS["b"]))
    series.append(Series("bcal", f"scenario b: calibrated test, p < {settings.alpha:g}", COLOURS["bcal"]))
    return series


def bar_data(summaries: Sequence[Summary], *, panel: str, label: str, label_n: bool = False) -> list[BarDatum]:
    """Rows of :func:`figures.bar_figure` from summaries.

    Args:
        summaries: The figures.
        panel: Summary field that names the panel.
        label: Summary field that names the row.
        label_n: Add the number of items to the row label.
    """
    return [
        BarDatum(
            panel=getattr(s, panel),
            label=(getattr(s, label) or "(none)") + (f" (n={s.n_items})" if label_n else ""),
            n_items=s.n_items,
            bars=(
                ("a", Bar(s.leak_a, s.leak_a_ci_lo, s.leak_a_ci_hi, s.leak_a_chance)),
                ("b", Bar(s.leak_b, s.leak_b_ci_lo, s.leak_b_ci_hi, s.leak_b_null)),
                ("bcal", Bar(s.leak_b_cal, s.leak_b_cal_ci_lo, s.leak_b_cal_ci_hi, s.leak_b_cal_alpha)),
            ),
        )
        for s in summaries
        if s.n_items > 0
    ]


def sorted_for_figure(summaries: Sequence[Summary]) -> list[Summary]:
    """Runs in the paper figure's order: models by mean scenario-a rate, highest first, then benchmarks."""
    mean_a: dict[str, list[float]] = {}
    for s in summaries:
        mean_a.setdefault(s.model, []).append(s.leak_a)
    known = {m: [v for v in values if not math.isnan(v)] for m, values in mean_a.items()}
    order = sorted(mean_a, key=lambda m: -float(np.mean(known[m])) if known[m] else 0.0)
    return sorted(summaries, key=lambda s: (order.index(s.model), benchmark_order(s.task)))


def case_data(analysis: RunAnalysis, result: ItemResult, settings: Settings) -> CaseData:
    """Input of :func:`figures.case_figure` for one item."""
    item, st = result.item, result.stats
    note = (
        f"original: z = {num(st.zscore, 2)}, rank {num(st.rank, 2)}, p = {pval(st.pvalue)}; "
        f"best ordering: isolation score {num(result.isolation)} "
        f"(flagged b at delta {settings.delta if settings.delta is not None else item.delta:g}: "
        f"{'yes' if result.flag_b(settings.delta) else 'no'}), calibrated p = {pval(result.cal_pvalue)}"
        + ("" if item.exchangeable else f"; options not exchangeable ({', '.join(item.nonexch_reasons)})")
        if st.ok else f"excluded: {result.record.exclusion_reason}"
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
