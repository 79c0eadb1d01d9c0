"""A run's items and figures, all from ``core.pipeline``: one ``score_item`` per item, one ``summarise``
per run (or subject).

:func:`analyse` scores every item of a run (:class:`ItemResult`: the item with its
``pipeline.ItemRecord`` and its calibrated p-value, pooled over the run's items of the same role);
:func:`summarise` turns the records into the report's :class:`Summary` row. The only figure the
report adds to the pipeline's is the null level of the paper's rule (Algorithm 2): its flag rate on
simulated clean items (``reference_rule.isolation_null_scores``), with a Poisson-binomial p-value
of the flagged count against it (see ``docs/method.md``, scenario b).

Control items (``role == "control"``) are scored and pooled within their role, as lm-eval's own
aggregation does, and left out of every figure of the run, of the subject tables and of the
most-suspicious lists; ``items.csv`` still lists them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from lm_eval_leakage.core import pipeline
from lm_eval_leakage.core.item_statistics import ItemStats
from lm_eval_leakage.core.reference_rule import isolation_null_scores
from lm_eval_leakage.core.scenario_a import poisson_binomial_sf
from lm_eval_leakage.report.reader import ItemScores
from lm_eval_leakage.report.runs import Run

DEFAULT_NULL_DRAWS = 200


@dataclass(frozen=True)
class Settings:
    """How the report recomputes the detectors.

    Attributes:
        delta: Algorithm 2's threshold for every item; ``None`` keeps each run's own (the paper's:
            -0.20 for four options, -0.25 for five or more, unless the run set one).
        alpha: Per-item level of the calibrated scenario-b test; its flagged fraction is
            ``alpha`` with no leakage.
        b_null: Null of the calibrated test: ``"auto"`` (the tasks' choice: the run's control
            items when it has them, else the mirror within each pool of its items with the same
            number of orderings), ``"mirror"`` or ``"gaussian"`` (the studentised maximum only).
        keep_nonexchangeable: Keep items whose option order is fixed by content in the
            scenario-a figures; ``None`` does what each run did.
        reference_rule: Run the paper's IsolationForest rule (about 0.1-0.2 s per item).
        null_draws: Simulated clean items per number of orderings for the paper rule's null
            level (0: no null level, no p-value).
        seed: Seed of that simulation.
        subjects: Keep only these subjects (empty: all).
    """

    delta: float | None = None
    alpha: float = pipeline.CALIBRATED_ALPHA
    b_null: pipeline.BNull = "auto"
    keep_nonexchangeable: bool | None = None
    reference_rule: bool = True
    null_draws: int = DEFAULT_NULL_DRAWS
    seed: int = 0
    subjects: tuple[str, ...] = ()

    def delta_label(self) -> str:
        return "as run (paper)" if self.delta is None else f"{self.delta:g}"

    def pipeline(self) -> pipeline.Settings:
        """The detector settings the pipeline applies when it summarises a run."""
        return pipeline.Settings(delta=self.delta, keep_nonexchangeable=self.keep_nonexchangeable,
                                 alpha=self.alpha, b_null=self.b_null)


@dataclass(frozen=True, eq=False)
class ItemResult:
    """An item with its figures.

    Attributes:
        item: The item and its scores.
        record: ``pipeline.score_item`` of its scores.
        cal_pvalue: Its calibrated p-value under the run's null (the run's items of its role pooled).
        index: Its position in the run (and in :attr:`RunAnalysis.records`).
    """

    item: ItemScores
    record: pipeline.ItemRecord
    cal_pvalue: float
    index: int

    @property
    def stats(self) -> ItemStats:
        return self.record.stats

    @property
    def isolation(self) -> float:
        """Algorithm 2's anomaly score of the best ordering (NaN when excluded or the rule is off)."""
        return self.record.isolation

    @property
    def cal_statistic(self) -> float:
        """The calibrated test's ``T+`` (NaN when the item has none)."""
        return self.record.b_statistic

    @property
    def observed(self) -> bool:
        return self.record.role == "observed"

    def flag_b(self, delta: float | None = None) -> bool:
        """Algorithm 2's flag with ``delta`` (default: the threshold the run used)."""
        return self.record.flag_b(delta)

    def passes_guard(self, keep_nonexchangeable: bool | None = None) -> bool:
        """Whether the item counts in scenario a and the calibrated scenario b (``ItemRecord.passes_guard``)."""
        return self.record.passes_guard(keep_nonexchangeable)


@dataclass(frozen=True)
class RunAnalysis:
    """A run with every item scored.

    Attributes:
        run: The run.
        records: Every item's record, in the run's order (the pool of the calibrated null).
        items: Per-item results (the items the report shows: all, or those of ``--subjects``).
        cal_null: The calibrated test's null as resolved for the run's observed items.
        cal_n_reference: Size of the null sample behind their p-values.
    """

    run: Run
    records: tuple[pipeline.ItemRecord, ...]
    items: tuple[ItemResult, ...]
    cal_null: str
    cal_n_reference: int


def analyse(run: Run, settings: Settings | None = None) -> RunAnalysis:
    """Score every item of ``run`` (``pipeline.score_item``) and pool its calibrated p-values."""
    settings = settings or Settings()
    records = tuple(
        pipeline.score_item(
            item.scores, item.perms, exchangeable=item.exchangeable,
            keep_nonexchangeable=item.keep_nonexchangeable,
            delta=None if math.isnan(item.delta) else item.delta,
            reference_rule=settings.reference_rule, role=item.role,  # type: ignore[arg-type]
        )
        for item in run.items
    )
    figures = pipeline.summarise(records, settings.pipeline())
    results = tuple(
        ItemResult(item, record, float(pvalue), index)
        for index, (item, record, pvalue) in enumerate(zip(run.items, records, figures.b_pvalues, strict=True))
    )
    return RunAnalysis(run, records, results, figures.b_null, figures.b_n_reference)


@dataclass(frozen=True)
class Summary:
    """Dataset-level figures of one run (or one subject of it), over its observed items.

    Attributes:
        model: Model name.
        task: Task name.
        benchmark: Benchmark display name.
        subject: The subject, or ``""`` for the whole run.
        n_items: Items with usable scores (the scenario-b figures count these).
        n_excluded: Items with unusable scores (constant or non-finite, fewer than two orderings).
        n_nonexch: Usable items the exchangeability guard leaves out of scenario a and the calibrated
            scenario b.
        bad_lines: Unreadable samples lines of the run (the summary covers the rest).
        leak_a_n: Items in the scenario-a figures.
        leak_a: Algorithm 1 flagged fraction (the original ordering scores highest; ties count);
            lm-eval's ``leak_a``.
        leak_a_ci_lo: Lower end of its 95% Wilson interval.
        leak_a_ci_hi: Upper end.
        leak_a_chance: Its expected value with no leakage, ``mean(1 / n_orderings)``; lm-eval's
            ``leak_a_chance``.
        leak_a_excess: ``leak_a - leak_a_chance``; lm-eval's ``leak_a_excess``.
        leak_a_excess_lo: Lower end of the excess's interval (``leak_a_ci_lo - leak_a_chance``);
            lm-eval's ``leak_a_excess_lo``.
        leak_a_excess_hi: Upper end; lm-eval's ``leak_a_excess_hi``.
        leak_a_p: Exact one-sided Poisson-binomial p-value of the flagged count against chance;
            lm-eval's ``leak_a_p``.
        orig_rank: Mean normalised rank of the original (0 = first; 0.5 with no leakage); lm-eval's
            ``orig_rank``.
        orig_rank_p: One-sided p-value of the mean rank below 0.5; lm-eval's ``orig_rank_p``.
        orig_z: Mean z-score of the original ordering over the scenario-a items; lm-eval's ``orig_z``.
        orig_p: Mean permutation p-value of the original over the same items; lm-eval's ``orig_p``.
        gap_ratio: Mean gap ratio over the same items; lm-eval's ``gap_ratio``.
        leak_b: Algorithm 2 (the paper's rule) flagged fraction at ``leak_b_delta``; lm-eval's
            ``leak_b`` (at the run's own thresholds).
        leak_b_ci_lo: Lower end of its 95% Wilson interval.
        leak_b_ci_hi: Upper end.
        leak_b_delta: The threshold used (a number, or ``"as run (paper)"``).
        leak_b_null: Mean flag rate of Algorithm 2 on simulated i.i.d. normal scores with the same
            numbers of orderings and thresholds (NaN with ``null_draws == 0``).
        leak_b_p: One-sided Poisson-binomial p-value of the flagged count against that null.
        leak_b_cal: Calibrated scenario-b test: fraction of items with ``p < leak_b_cal_alpha``;
            lm-eval's ``leak_b_cal``.
        leak_b_cal_ci_lo: Lower end of its 95% Wilson interval (of the fraction, not of the excess).
        leak_b_cal_ci_hi: Upper end.
        leak_b_cal_alpha: The level, which is also the fraction with no leakage.
        leak_b_cal_excess: ``leak_b_cal - leak_b_cal_alpha``; lm-eval's ``leak_b_cal_excess``.
        leak_b_cal_lo: Lower end of the 95% interval of the excess (Newcombe); lm-eval's
            ``leak_b_cal_lo``.
        leak_b_cal_hi: Upper end; lm-eval's ``leak_b_cal_hi``.
        leak_b_cal_p: One-sided p-value of the fraction above ``leak_b_cal_alpha``; lm-eval's
            ``leak_b_cal_p``.
        leak_b_cal_null: The null behind the item p-values (``mirror`` or ``gaussian``).
        leak_a_vs_control: ``leak_a`` observed minus control (NaN without control items), with
            ``leak_a_vs_control_lo`` and ``_hi``, its 95% interval; lm-eval's columns of the same names.
        orig_rank_vs_control: ``orig_rank`` observed minus control, with ``_lo`` and ``_hi``.
        leak_b_cal_vs_control: ``leak_b_cal`` observed minus control, with ``_lo`` and ``_hi``.
        verdict: The verdict in words against the control floor, or chance without control items
            (``core.verdict``: each figure's lift over the floor, Bonferroni over the three).
    """

    model: str
    task: str
    benchmark: str
    subject: str
    n_items: int
    n_excluded: int
    n_nonexch: int
    bad_lines: int
    leak_a_n: int
    leak_a: float
    leak_a_ci_lo: float
    leak_a_ci_hi: float
    leak_a_chance: float
    leak_a_excess: float
    leak_a_excess_lo: float
    leak_a_excess_hi: float
    leak_a_p: float
    orig_rank: float
    orig_rank_p: float
    orig_z: float
    orig_p: float
    gap_ratio: float
    leak_b: float
    leak_b_ci_lo: float
    leak_b_ci_hi: float
    leak_b_delta: str
    leak_b_null: float
    leak_b_p: float
    leak_b_cal: float
    leak_b_cal_ci_lo: float
    leak_b_cal_ci_hi: float
    leak_b_cal_alpha: float
    leak_b_cal_excess: float
    leak_b_cal_lo: float
    leak_b_cal_hi: float
    leak_b_cal_p: float
    leak_b_cal_null: str
    leak_a_vs_control: float
    leak_a_vs_control_lo: float
    leak_a_vs_control_hi: float
    orig_rank_vs_control: float
    orig_rank_vs_control_lo: float
    orig_rank_vs_control_hi: float
    leak_b_cal_vs_control: float
    leak_b_cal_vs_control_lo: float
    leak_b_cal_vs_control_hi: float
    verdict: str


def null_rate(n_orderings: int, delta: float, settings: Settings) -> float:
    """The paper rule's simulated null flag rate for one item (NaN when the simulation is off)."""
    if settings.null_draws <= 0:
        return math.nan
    scores = _isolation_null(n_orderings, settings.null_draws, settings.seed)
    return float(np.mean(scores < delta))


@cache
def _isolation_null(n_orderings: int, draws: int, seed: int) -> np.ndarray:
    # One simulation per number of orderings, shared by every item, subject and delta of a report:
    # each draw fits a 100-tree IsolationForest (about 1 ms batched), so per-item simulation would multiply it.
    scores = isolation_null_scores(n_orderings, draws=draws, seed=seed)
    scores.flags.writeable = False
    return scores


def _paper_rule_null(chosen: Sequence[ItemResult], settings: Settings) -> np.ndarray:
    """Per item the paper rule ran on, its simulated null flag rate at the item's threshold."""
    ran = [r for r in chosen if r.observed and r.stats.ok and not math.isnan(r.isolation)]
    return np.array([null_rate(r.stats.n_orderings, r.record.delta if settings.delta is None else settings.delta,
                               settings) for r in ran])


def summarise(analysis: RunAnalysis, settings: Settings, *, subject: str | None = None) -> Summary:
    """Dataset-level figures of a run, or of one subject of it when ``subject`` is given."""
    run = analysis.run
    chosen = [r for r in analysis.items if subject is None or r.item.subject == subject]
    subset = np.zeros(len(analysis.records), dtype=bool)
    subset[[r.index for r in chosen]] = True
    figures = pipeline.summarise(analysis.records, settings.pipeline(), subset=subset.tolist())
    a, rule, cal = figures.scenario_a, figures.reference_rule, figures.calibrated
    nulls = _paper_rule_null(chosen, settings)
    has_null = rule.n_items > 0 and settings.null_draws > 0
    return Summary(
        model=run.model, task=run.task, benchmark=run.benchmark, subject="" if subject is None else subject,
        n_items=figures.n_items, n_excluded=figures.n_excluded, n_nonexch=figures.n_nonexch,
        bad_lines=len(run.bad_lines), leak_a_n=a.n_items, leak_a=a.rate,
        leak_a_ci_lo=figures.scenario_a_interval[0], leak_a_ci_hi=figures.scenario_a_interval[1],
        leak_a_chance=a.chance, leak_a_excess=a.excess,
        leak_a_excess_lo=a.excess_ci[0], leak_a_excess_hi=a.excess_ci[1], leak_a_p=a.pvalue,
        orig_rank=figures.rank.mean_rank, orig_rank_p=figures.rank.pvalue,
        orig_z=figures.orig_z, orig_p=figures.orig_p, gap_ratio=figures.gap_ratio,
        leak_b=rule.rate, leak_b_ci_lo=rule.interval[0], leak_b_ci_hi=rule.interval[1],
        leak_b_delta=settings.delta_label() if settings.reference_rule else "off",
        leak_b_null=float(nulls.mean()) if has_null else math.nan,
        leak_b_p=poisson_binomial_sf(rule.n_flagged, nulls) if has_null else math.nan,
        leak_b_cal=cal.flagged_fraction if cal else math.nan,
        leak_b_cal_ci_lo=cal.flagged_low if cal else math.nan,
        leak_b_cal_ci_hi=cal.flagged_high if cal else math.nan,
        leak_b_cal_alpha=settings.alpha,
        leak_b_cal_excess=cal.excess if cal else math.nan,
        leak_b_cal_lo=cal.excess_low if cal else math.nan,
        leak_b_cal_hi=cal.excess_high if cal else math.nan,
        leak_b_cal_p=cal.pvalue if cal else math.nan,
        leak_b_cal_null=analysis.cal_null,
        **_vs_control(figures.vs_control),
        verdict=figures.verdict.text,
    )


def _vs_control(comparison: pipeline.verdict_rule.ControlComparison | None) -> dict[str, float]:
    """The ``*_vs_control`` fields (NaN without control items)."""
    values: dict[str, float] = {}
    for name in ("leak_a", "orig_rank", "leak_b_cal"):
        difference = None if comparison is None else getattr(comparison, name)
        lo, hi = (math.nan, math.nan) if difference is None else difference.ci
        values[f"{name}_vs_control"] = math.nan if difference is None else difference.difference
        values[f"{name}_vs_control_lo"], values[f"{name}_vs_control_hi"] = lo, hi
    return values


def restrict(analysis: RunAnalysis, subjects: Sequence[str]) -> RunAnalysis:
    """The analysis limited to ``subjects`` (all of it when empty); p-values keep the run's pool."""
    if not subjects:
        return analysis
    return dataclasses.replace(analysis, items=tuple(r for r in analysis.items if r.item.subject in subjects))


def subjects_of(analysis: RunAnalysis) -> list[str]:
    """Subjects of a run's observed items, sorted."""
    return sorted({r.item.subject for r in analysis.items if r.observed})


def most_suspicious(
    analysis: RunAnalysis,
    *,
    scenario: Literal["a", "b"],
    count: int,
    keep_nonexchangeable: bool | None = None,
) -> list[ItemResult]:
    """The observed items that look most leaked, among those that pass the exchangeability guard.

    Scenario a: highest z-score of the original ordering (flagged items have it first).
    Scenario b: lowest calibrated p-value, then largest ``T+`` (the standout ordering, whichever
    it is, beats what the other orderings predict).
    """
    kept = [r for r in analysis.items if r.observed and r.passes_guard(keep_nonexchangeable)]
    if scenario == "a":
        return sorted(kept, key=lambda r: (-r.stats.zscore, r.stats.rank))[:count]
    return sorted(kept, key=lambda r: (_nan_last(r.cal_pvalue), _nan_last(-r.cal_statistic)))[:count]


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value
