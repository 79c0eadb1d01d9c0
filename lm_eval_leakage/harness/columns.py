"""The one table of the columns a ``leak_*`` task reports.

Each :class:`Column` declares a figure once: its lm-eval name, where it is read from a run's
:class:`~lm_eval_leakage.core.pipeline.RunFigures`, its direction, its formula and its value with
no leakage. Everything else is produced from this table: ``process_results`` and the registered
aggregations (``harness.metrics``), the tasks' metric lists (``tasks.generate``) and the README's
column table (also written by ``tasks.generate``; a test keeps it in step).

Pure: imports the core only, never lm_eval, so the generator and the tests can read it anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lm_eval_leakage.core.pipeline import RunFigures


@dataclass(frozen=True)
class Column:
    """One reported figure.

    Attributes:
        name: lm-eval's metric name (also the name of its registered aggregation).
        read: Reads the figure from a run's figures.
        higher_is_better: lm-eval's direction flag: true where a higher value is less evidence of leakage.
        formula: How it is computed (Markdown, for the README).
        no_leakage: Its value when the model never saw the benchmark (Markdown).
        control_only: Reported by the ``leak_*_control`` tasks only.
    """

    name: str
    read: Callable[[RunFigures], float]
    higher_is_better: bool
    formula: str
    no_leakage: str
    control_only: bool = False


def _cal(field: str) -> Callable[[RunFigures], float]:
    def read(f: RunFigures) -> float:
        return float("nan") if f.calibrated is None else float(getattr(f.calibrated, field))

    return read


def _vs_control(name: str, part: int | None) -> Callable[[RunFigures], float]:
    def read(f: RunFigures) -> float:
        if f.vs_control is None:
            return float("nan")
        difference = getattr(f.vs_control, name)
        return float(difference.difference if part is None else difference.ci[part])

    return read


COLUMNS: tuple[Column, ...] = (
    Column("leak_a", lambda f: f.scenario_a.rate, False,
           "fraction of items with `s_0 >= max_j s_j` (Algorithm 1; ties count)", "`leak_a_chance`"),
    Column("leak_a_chance", lambda f: f.scenario_a.chance, False,
           "`mean(1 / n_i)`", "1/24 = 0.0417 for 4 options"),
    Column("leak_a_p", lambda f: f.scenario_a.pvalue, True,
           "exact one-sided p-value of the `leak_a` count, Poisson-binomial with `p_i = 1/n_i`", "uniform on (0, 1]"),
    Column("leak_a_excess", lambda f: f.scenario_a.excess, False, "`leak_a - leak_a_chance`", "0"),
    Column("leak_a_excess_lo", lambda f: f.scenario_a.excess_ci[0], False,
           "lower end of the 95% Wilson interval of `leak_a`, minus `leak_a_chance`", "at most 0"),
    Column("leak_a_excess_hi", lambda f: f.scenario_a.excess_ci[1], False,
           "upper end of the same interval", "at least 0"),
    Column("orig_rank", lambda f: f.rank.mean_rank, True,
           "mean of `(above + tied/2) / (n_i - 1)`, the original's normalised rank (0 = top)", "0.5"),
    Column("orig_rank_p", lambda f: f.rank.pvalue, True,
           "one-sided p-value of `orig_rank < 0.5`, normal with variance `sum (n_i+1)/(12(n_i-1)) / N^2`", "uniform"),
    Column("orig_z", lambda f: f.orig_z, False, "mean of `(s_0 - mean_j s_j) / sd_j s_j`", "about 0"),
    Column("orig_p", lambda f: f.orig_p, True,
           "mean per-item permutation p-value `(1 + above + tied) / n_i`", "`(n+1)/(2n)` = 0.52 for 24"),
    Column("gap_ratio", lambda f: f.gap_ratio, False,
           "mean of `(max - second) / (max - min)` over orderings", "depends on the score law"),
    Column("leak_b", lambda f: f.reference_rule.rate, False,
           "fraction flagged by the paper's Algorithm 2: IsolationForest (100 trees, seed 42) score of the best "
           "ordering `< delta`, `delta` = -0.20 for 4 options, -0.25 for 5+", "0.2-0.5: uncalibrated"),
    Column("leak_b_cal", _cal("flagged_fraction"), False,
           "fraction of the items that pass the guard whose scores follow the pattern of a trained best ordering "
           "(correlation with the slots each ordering shares with it) beyond what unseen items allow at "
           "`alpha = 0.05` (calibrated detector, below; null: the control items, else the mirror)", "0.05"),
    Column("leak_b_cal_excess", _cal("excess"), False, "`leak_b_cal - 0.05`", "0"),
    Column("leak_b_cal_lo", _cal("excess_low"), False,
           "lower end of the 95% interval of `leak_b_cal_excess` (Newcombe, counting the null's own error)",
           "at most 0"),
    Column("leak_b_cal_hi", _cal("excess_high"), False, "upper end of the same interval", "at least 0"),
    Column("leak_b_cal_p", _cal("pvalue"), True, "one-sided p-value of `leak_b_cal > 0.05`", "uniform"),
    Column("n_excluded", lambda f: f.n_excluded, False,
           "items left out of every figure: a non-finite score (model returned NaN/-inf), all scores equal, or "
           "too long for the model's window",
           "0"),
    Column("n_nonexch", lambda f: f.n_nonexch, False,
           "items whose option order is fixed by content (guard below): left out of the scenario-a and `leak_b_cal` rows", "-"),
    *(
        Column(f"{name}{end}", _vs_control(name.removesuffix("_vs_control"), part), higher, formula, zero,
               control_only=True)
        for name, higher, what in (
            ("leak_a_vs_control", False, "`leak_a` observed minus control"),
            ("orig_rank_vs_control", True, "`orig_rank` observed minus control"),
            ("leak_b_cal_vs_control", False, "`leak_b_cal` observed minus control"),
        )
        for end, part, formula, zero in (
            ("", None, what + " (control tasks)", "about 0"),
            ("_lo", 0, "lower end of its 95% interval", "at most 0"),
            ("_hi", 1, "upper end of its 95% interval", "at least 0"),
        )
    ),
)
"""Every column, in report order; the ``control_only`` ones come last."""


def columns(*, control: bool) -> tuple[Column, ...]:
    """The columns of a task without (``control=False``) or with a control set."""
    return tuple(c for c in COLUMNS if control or not c.control_only)


def readme_table() -> str:
    """The README's column table (Markdown)."""
    lines = ["| column | formula | under no leakage | higher is better |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.formula} | {c.no_leakage} | {'yes' if c.higher_is_better else 'no'} |"
              for c in COLUMNS]
    return "\n".join(lines) + "\n"
