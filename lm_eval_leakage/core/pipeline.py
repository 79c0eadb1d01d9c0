"""One item's figures and one run's figures: the single place every number of the project comes from.

lm-eval's ``process_results`` (``harness.metrics``), the report (``report.analysis``) and the
validation experiment (``validation.detectors``) all call :func:`score_item` on an item's ordering
scores and :func:`summarise` on a run's records; none of them chains the statistics itself.

* :func:`score_item` computes everything that depends on one item alone: the original ordering's
  rank, permutation p-value, z-score and gap ratio (``item_statistics.item_stats``), the paper's
  IsolationForest score of the best ordering (``reference_rule``), and the calibrated scenario-b
  statistic and its mirror (``scenario_b``; a Gaussian-null p-value only for a statistic that has
  a table, NaN for the default one). The result, an :class:`ItemRecord`,
  converts to and from a JSON object, which is what lm-eval carries from ``process_results`` to
  the aggregations (and logs per sample).
* :func:`summarise` computes the dataset-level figures of a run (or of a subset such as one
  subject) from its records: Algorithm 1's rate with its chance level, exact test and interval, the
  mean-rank test, Algorithm 2's rate, the calibrated scenario-b rate (its null: the run's control
  items when it has them, else the mirror statistics of the run's items of the same role, fitted
  model and number of orderings), and, when the run has a control set, observed minus control.

Detector settings that can change after scoring (Algorithm 2's threshold, the exchangeability
guard, the calibrated test's level and null) are :class:`Settings`; ``None`` keeps what the run
recorded per item.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.core import intervals, item_statistics, scenario_b
from lm_eval_leakage.core import scenario_a as scenario_a_test
from lm_eval_leakage.core import verdict as verdict_rule
from lm_eval_leakage.core.reference_rule import default_delta, isolation_score

Role = Literal["observed", "control"]
BNull = Literal["auto", "mirror", "gaussian"]
CALIBRATED_ALPHA = 0.05
"""Default per-item level of the calibrated scenario-b test; its flagged fraction with no leakage."""
MIN_MIRROR_ITEMS = scenario_b.MIN_MIRROR_ITEMS


@dataclass(frozen=True)
class Settings:
    """Detector settings applied when a run is summarised.

    Attributes:
        delta: Algorithm 2's threshold for every item; ``None`` keeps each item's own (the paper's:
            -0.20 for four options, -0.25 for five or more, unless the run set one).
        keep_nonexchangeable: Count items whose option order is fixed by content in the
            scenario-a figures; ``None`` keeps what the run did for each item.
        alpha: Per-item level of the calibrated scenario-b test.
        b_null: Null of the calibrated test: ``"auto"`` (the run's control items when it has
            them, else the mirror null; the Gaussian table in pools under ``MIN_MIRROR_ITEMS``
            items only for statistics that have one), ``"mirror"`` or ``"gaussian"``.
    """

    delta: float | None = None
    keep_nonexchangeable: bool | None = None
    alpha: float = CALIBRATED_ALPHA
    b_null: BNull = "auto"


@dataclass(frozen=True)
class ItemRecord:
    """Everything :func:`summarise` needs to know about one scored item.

    Attributes:
        stats: The original ordering's statistics (``item_statistics.ItemStats``; its ``status`` says
            whether the item's scores are usable).
        exchangeable: The exchangeability guard's verdict on the item's options.
        keep_nonexchangeable: Whether the run counts a non-exchangeable item in scenario a.
        delta: Algorithm 2's threshold the run used for this item.
        isolation: Algorithm 2's anomaly score of the best ordering (NaN when the rule was off or
            the scores are unusable); the flag is ``isolation < delta``.
        b_statistic: The calibrated test's ``T+`` (NaN when it has none).
        b_decoy: Its mirror statistic ``T-``.
        b_model: The fitted model behind them (``""`` when the item has no statistic).
        b_gaussian_pvalue: ``T+``'s p-value under the Gaussian table.
        role: ``"observed"`` for a benchmark item, ``"control"`` for its control twin.
    """

    stats: item_statistics.ItemStats
    exchangeable: bool
    keep_nonexchangeable: bool
    delta: float
    isolation: float
    b_statistic: float
    b_decoy: float
    b_model: str
    b_gaussian_pvalue: float
    role: Role = "observed"

    @property
    def ok(self) -> bool:
        """Whether the item's scores are usable (see ``item_statistics.STATUS_REASONS``)."""
        return self.stats.ok

    @property
    def n_orderings(self) -> int:
        return self.stats.n_orderings

    @property
    def exclusion_reason(self) -> str:
        """Why the item is left out of every figure (``"scored"`` when it is not)."""
        return item_statistics.STATUS_REASONS[self.stats.status]

    def passes_guard(self, keep_nonexchangeable: bool | None = None) -> bool:
        """Whether the item counts in the figures whose null assumes exchangeable options.

        Those are scenario a's and the calibrated scenario-b ones; the item needs usable scores
        and options the guard found exchangeable (or the run keeps non-exchangeable items).
        Algorithm 2's rate counts every usable item, as the paper does.
        """
        keep = self.keep_nonexchangeable if keep_nonexchangeable is None else keep_nonexchangeable
        return self.ok and (self.exchangeable or keep)

    def flag_b(self, delta: float | None = None) -> bool:
        """Algorithm 2's flag with ``delta`` (default: the threshold the run used)."""
        return bool(self.ok and self.isolation < (self.delta if delta is None else delta))

    def to_json(self) -> dict[str, Any]:
        """A JSON object (what lm-eval passes from ``process_results`` to the aggregations)."""
        out = dataclasses.asdict(self)
        out["stats"] = dataclasses.asdict(self.stats)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemRecord:
        """Inverse of :meth:`to_json`."""
        return cls(**{**data, "stats": item_statistics.ItemStats(**data["stats"])})


def score_item(
    scores: Sequence[float] | np.ndarray,
    perms: Sequence[Sequence[int]] | np.ndarray,
    *,
    exchangeable: bool = True,
    keep_nonexchangeable: bool = False,
    delta: float | None = None,
    reference_rule: bool = True,
    role: Role = "observed",
) -> ItemRecord:
    """Compute one item's figures from its ordering scores.

    Args:
        scores: Summed log-likelihood of the option block per ordering; ordering 0 is the original.
        perms: ``perms[j][p]``: original index of the option shown at position ``p`` in ordering ``j``.
        exchangeable: The guard's verdict (``exchangeability.check_exchangeable``).
        keep_nonexchangeable: Count the item in scenario a even when it is not exchangeable.
        delta: Algorithm 2's threshold (default: the paper's for the item's number of options).
        reference_rule: Fit the paper's IsolationForest (``core.isolation_forest``, 2-5 ms per item).
        role: ``"observed"`` or ``"control"``.

    Returns:
        The record; an item with unusable scores (non-finite, all equal, fewer than two
        orderings) gets that status and NaN statistics, never an exception.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    orderings = np.asarray(perms, dtype=np.int64)
    item = item_statistics.item_stats(values)
    isolation = b_statistic = b_decoy = b_gaussian = math.nan
    b_model = ""
    if item.ok:
        if reference_rule:
            isolation = isolation_score(values)
        single = scenario_b.scenario_b_pvalues(values[None, :], orderings, null="gaussian")
        b_statistic, b_decoy = float(single.statistic[0]), float(single.decoy[0])
        b_model, b_gaussian = single.model[0], float(single.pvalue[0])
    return ItemRecord(
        stats=item,
        exchangeable=bool(exchangeable),
        keep_nonexchangeable=bool(keep_nonexchangeable),
        delta=float(default_delta(orderings.shape[-1]) if delta is None else delta),
        isolation=isolation,
        b_statistic=b_statistic,
        b_decoy=b_decoy,
        b_model=b_model,
        b_gaussian_pvalue=b_gaussian,
        role=role,
    )


def unscored_item(
    n_orderings: int,
    *,
    status: item_statistics.Status,
    exchangeable: bool = True,
    keep_nonexchangeable: bool = False,
    delta: float,
    role: Role = "observed",
) -> ItemRecord:
    """The record of an item that was never scored (e.g. ``"too_long"`` for the model's window)."""
    return ItemRecord(
        stats=item_statistics.unscored(status, n_orderings), exchangeable=bool(exchangeable),
        keep_nonexchangeable=bool(keep_nonexchangeable), delta=float(delta), isolation=math.nan,
        b_statistic=math.nan, b_decoy=math.nan, b_model="", b_gaussian_pvalue=math.nan, role=role,
    )


@dataclass(frozen=True)
class ReferenceRule:
    """Algorithm 2 (the paper's scenario-b rule) over a set of items.

    Attributes:
        n_items: Usable items the rule ran on.
        n_flagged: Items whose best ordering's anomaly score is below their threshold.
        rate: ``n_flagged / n_items`` (NaN when the rule ran on no item).
        interval: 95% Wilson interval of ``rate``.
    """

    n_items: int
    n_flagged: int
    rate: float
    interval: tuple[float, float]


@dataclass(frozen=True, eq=False)
class RunFigures:
    """Dataset-level figures of a run's observed items (or of a subset of them).

    Attributes:
        n_items: Observed items with usable scores (Algorithm 2's rate counts these).
        n_excluded: Items of the run, either role, with unusable scores.
        n_nonexch: Usable observed items whose options the guard found non-exchangeable.
        scenario_a: Algorithm 1's rate, chance level, exact p-value and excess with its interval,
            over the items that pass the exchangeability guard (``ItemRecord.passes_guard``).
        scenario_a_interval: 95% Wilson interval of Algorithm 1's rate.
        rank: The mean-rank test over the same items.
        orig_z: Mean z-score of the original ordering over the same items (NaN when none).
        orig_p: Mean permutation p-value of the original over the same items.
        gap_ratio: Mean gap ratio over the same items.
        reference_rule: Algorithm 2 over the usable items the rule ran on.
        calibrated: The calibrated scenario-b summary over the items that pass the guard (``None``
            when no item has a p-value).
        b_null: The null behind the calibrated p-values (``"none"`` when nothing was pooled).
        b_n_reference: Size of the smallest null sample behind them.
        b_pvalues: Calibrated p-value of every record passed to :func:`summarise` (pooled within
            its role; NaN where the item has none or the guard leaves it out), in the order given,
            whatever the subset.
        vs_control: Observed minus control, when the run has control items.
        verdict: The verdict in words against the control floor, or chance without control items
            (``core.verdict``).
    """

    n_items: int
    n_excluded: int
    n_nonexch: int
    scenario_a: scenario_a_test.ScenarioA
    scenario_a_interval: tuple[float, float]
    rank: scenario_a_test.RankTest
    orig_z: float
    orig_p: float
    gap_ratio: float
    reference_rule: ReferenceRule
    calibrated: scenario_b.ScenarioBSummary | None
    b_null: str
    b_n_reference: int
    b_pvalues: np.ndarray
    vs_control: verdict_rule.ControlComparison | None
    verdict: verdict_rule.Verdict


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if np.isfinite(v)]
    return float(np.mean(kept)) if kept else math.nan


def _pooled_pvalues(
    records: Sequence[ItemRecord], settings: Settings, role: Role, control: Sequence[ItemRecord]
) -> tuple[np.ndarray, str, int]:
    """Calibrated p-values of ``records`` (one role), their null pooled over those that pass the guard.

    Items the guard leaves out get NaN: their option order is fixed by content, so neither their
    own statistic nor their mirror belongs to a null that assumes exchangeable options. With the
    run's control items (``control``) and ``b_null="auto"``, the null is theirs: observed items
    against the control items' statistics, each control item against the others' (so with no
    leakage both roles flag ``alpha``). Else the mirror null (or a Gaussian table, where one exists).
    """
    pvalues = np.full(len(records), np.nan)
    usable = [i for i, r in enumerate(records) if r.passes_guard(settings.keep_nonexchangeable)]
    if not usable:
        return pvalues, "none", 0
    chosen = [records[i] for i in usable]
    reference = [r for r in control if r.passes_guard(settings.keep_nonexchangeable)]
    by_control = bool(reference) and settings.b_null == "auto"
    statistic = [r.b_statistic for r in chosen]
    result = scenario_b.combine_item_statistics(
        statistic, statistic if by_control and role == "control" else [r.b_decoy for r in chosen],
        [r.b_model for r in chosen], [r.b_gaussian_pvalue for r in chosen],
        null="mirror" if by_control and role == "control" else settings.b_null,
        n_orderings=[r.n_orderings for r in chosen],
        control=([r.b_statistic for r in reference], [r.b_model for r in reference],
                 [r.n_orderings for r in reference]) if by_control and role == "observed" else None,
    )
    pvalues[usable] = result.pvalue
    return pvalues, "control" if by_control else result.null, result.n_reference


def _calibrated_summary(pvalues: np.ndarray, null: str, n_reference: int, alpha: float) -> Any:
    if not np.isfinite(pvalues).any():
        return None
    n = len(pvalues)
    result = scenario_b.ScenarioBResult(
        pvalue=pvalues, statistic=np.full(n, np.nan), decoy=np.full(n, np.nan),
        outlier_ordering=np.full(n, -1, dtype=np.int64), reason=("",) * n, model=("",) * n,
        method=scenario_b.DEFAULT_METHOD, null=null, n_reference=n_reference,  # type: ignore[arg-type]
    )
    return scenario_b.summarise_scenario_b(result, alpha=alpha)


def _reference_rule(records: Sequence[ItemRecord], delta: float | None) -> ReferenceRule:
    ran = [r for r in records if r.ok and not math.isnan(r.isolation)]
    flagged = sum(r.flag_b(delta) for r in ran)
    return ReferenceRule(len(ran), flagged, flagged / len(ran) if ran else math.nan,
                         intervals.wilson_interval(flagged, len(ran)))


def _flagged(summary: Any) -> tuple[int, int]:
    return (0, 0) if summary is None else (summary.n_flagged, summary.n_valid)


def _floor(in_a: Sequence[ItemRecord], control: Sequence[ItemRecord] | None, summaries: dict[Role, Any],
           settings: Settings) -> tuple[verdict_rule.ControlComparison | None, verdict_rule.Verdict]:
    """Observed minus control (when the run has control items) and the verdict against the floor."""
    observed = verdict_rule.Figures([r.stats.original_first for r in in_a], [r.stats.rank for r in in_a],
                                    _flagged(summaries["observed"]))
    if control is None:
        return None, verdict_rule.decide(observed, [r.n_orderings for r in in_a], alpha=settings.alpha)
    c_in_a = [r for r in control if r.passes_guard(settings.keep_nonexchangeable)]
    floor = verdict_rule.Figures([r.stats.original_first for r in c_in_a], [r.stats.rank for r in c_in_a],
                                 _flagged(summaries["control"]))
    return (verdict_rule.compare_with_control(observed, floor),
            verdict_rule.decide(observed, [r.n_orderings for r in in_a], alpha=settings.alpha, control=floor))


def summarise(
    records: Sequence[ItemRecord], settings: Settings | None = None, *, subset: Sequence[bool] | None = None
) -> RunFigures:
    """Dataset-level figures of a run from its item records.

    Args:
        records: Every item of the run, observed and control.
        settings: Detector settings (default: what the run recorded, ``alpha`` 0.05, ``"auto"`` null).
        subset: Per record, whether it enters the figures (e.g. one subject); the calibrated
            p-values are pooled over the whole run either way. Default: every record.

    Returns:
        The figures of the observed records in the subset (see :class:`RunFigures`).
    """
    settings = settings or Settings()
    chosen = [True] * len(records) if subset is None else list(subset)
    if len(chosen) != len(records):
        raise ValueError(f"subset has {len(chosen)} entries for {len(records)} records")
    pvalues = np.full(len(records), np.nan)
    nulls: dict[Role, list[Any]] = {}
    for role in ("observed", "control"):
        if index := [i for i, r in enumerate(records) if r.role == role]:
            pvalues[index], *nulls[role] = _pooled_pvalues([records[i] for i in index], settings, role,
                                                           [r for r in records if r.role == "control"])
    picked = {role: [i for i, r in enumerate(records) if chosen[i] and r.role == role and r.ok]
              for role in ("observed", "control")}
    guarded = {role: [i for i in index if records[i].passes_guard(settings.keep_nonexchangeable)]
               for role, index in picked.items()}
    null, n_reference = nulls.get("observed", ("none", 0))
    summaries: dict[Role, Any] = {
        role: _calibrated_summary(pvalues[index], *nulls.get(role, ("none", 0)), settings.alpha)
        for role, index in guarded.items()
    }
    observed = [records[i] for i in picked["observed"]]
    in_a = [r for r in observed if r.passes_guard(settings.keep_nonexchangeable)]
    n_orderings = np.array([r.n_orderings for r in in_a], dtype=np.int64)
    first = [r.stats.original_first for r in in_a]
    control = [records[i] for i in picked["control"]]
    vs_control, verdict = _floor(in_a, control if any(r.role == "control" for r in records) else None,
                                 summaries, settings)
    return RunFigures(
        n_items=len(observed),
        n_excluded=sum(chosen[i] and not r.ok for i, r in enumerate(records)),
        n_nonexch=sum(not r.exchangeable for r in observed),
        scenario_a=scenario_a_test.scenario_a(first, n_orderings),
        scenario_a_interval=intervals.wilson_interval(sum(first), len(in_a)),
        rank=scenario_a_test.rank_test([r.stats.rank for r in in_a], n_orderings),
        orig_z=_mean([r.stats.zscore for r in in_a]),
        orig_p=_mean([r.stats.pvalue for r in in_a]),
        gap_ratio=_mean([r.stats.gap_ratio for r in in_a]),
        reference_rule=_reference_rule(observed, settings.delta),
        calibrated=summaries["observed"],
        b_null=null,
        b_n_reference=n_reference,
        b_pvalues=pvalues,
        vs_control=vs_control,
        verdict=verdict,
    )
