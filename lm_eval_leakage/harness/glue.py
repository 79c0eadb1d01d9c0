"""lm-eval glue: dataset hooks, per-item results and registered aggregations for ``leak_*`` tasks.

Thin by design: every figure is computed by the pure modules (``orderings``, ``stats``,
``reference_rule``); this module only moves data between them and lm-eval.

Task options arrive as lm-eval task metadata (the YAML's ``metadata:`` merged with the command
line's ``--metadata '{...}'``), which lm-eval hands to ``custom_dataset`` as keyword arguments.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from lm_eval.api.registry import register_aggregation

from lm_eval_leakage.core import calibrated
from lm_eval_leakage.core import stats
from lm_eval_leakage.benchmarks.schemas import BENCHMARKS, InvalidItemError, Item
from lm_eval_leakage.core.control import control_items
from lm_eval_leakage.core.exchangeability import check_exchangeable
from lm_eval_leakage.benchmarks.loading import data_env_var, read_hub, read_local
from lm_eval_leakage.core.orderings import DEFAULT_MAX_ORDERINGS, build_orderings
from lm_eval_leakage.core.reference_rule import default_delta, isolation_flag
from lm_eval_leakage.core.templates import TEMPLATES, render

logger = logging.getLogger("lm_eval_leakage")

TASK_OPTIONS = (
    "data_files",
    "split",
    "template",
    "max_orderings",
    "ordering_seed",
    "skip_invalid",
    "sample_items",
    "sample_seed",
    "delta",
    "keep_nonexchangeable",
    "reference_rule",
)
"""Metadata keys the ``leak_*`` tasks read; lm-eval also passes model arguments, which are ignored."""


# --------------------------------------------------------------------------- dataset


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}


def build_docs(
    benchmark: str,
    *,
    data_files: str | list[str] | None = None,
    split: str | None = None,
    template: str = "reference",
    max_orderings: int = DEFAULT_MAX_ORDERINGS,
    ordering_seed: int = 1234,
    skip_invalid: bool | str = False,
    sample_items: int | None = None,
    sample_seed: int = 0,
    delta: float | None = None,
    keep_nonexchangeable: bool | str = False,
    reference_rule: bool | str = True,
    control: bool = False,
    control_seed: int = 0,
    **_other_metadata: Any,
) -> list[dict[str, Any]]:
    """Read a benchmark, validate every item and attach its orderings.

    Args:
        benchmark: Key of :data:`BENCHMARKS`.
        data_files: Local files in the benchmark's schema (see ``loading``); when omitted, the
            ``LM_EVAL_LEAKAGE_<BENCHMARK>_DATA`` environment variable, then the hub.
        split: Split to read from the hub (default: the benchmark's scanned split).
        template: ``"reference"`` or ``"native"`` (see ``templates``).
        max_orderings: Enumerate all distinct orderings up to this many, else sample.
        ordering_seed: Seed for sampled orderings.
        skip_invalid: Skip invalid items (counted in a warning) instead of stopping.
        sample_items: Keep a seeded random sample of this many items (for quick runs).
        sample_seed: Seed of that sample.
        delta: Threshold of the reference's Algorithm 2 (default: -0.20 for four options,
            -0.25 for five or more, per item).
        keep_nonexchangeable: Keep items whose option order is fixed by content ("All of the
            above", sorted numbers; see ``exchangeability``) in the scenario-a figures.
        reference_rule: Compute the paper's IsolationForest rule (``leak_b``); it costs about
            0.1-0.5 s of CPU per item, so switching it off speeds up large runs.
        control: Add a control item per item (see ``control``), marked ``role: "control"``; set
            by the ``leak_<benchmark>_control`` tasks, whose metric list reports observed minus
            control.
        control_seed: Seed of the control's donor assignment.

    Returns:
        One lm-eval document per valid item (and per control item).

    Raises:
        InvalidItemError: An invalid item, unless ``skip_invalid``.
        ValueError: An unknown option value, or no valid item at all.
    """
    spec = BENCHMARKS[benchmark]
    if template not in TEMPLATES:
        raise ValueError(f"leak_{benchmark}: unknown template {template!r}; expected one of {TEMPLATES}")
    source = data_files or os.environ.get(data_env_var(benchmark))
    if source:
        records = read_local(source, spec)
        origin = str(source)
    elif spec.hub_path:
        records = read_hub(spec, split or spec.split)
        origin = f"{spec.hub_path} ({split or spec.split})"
    else:
        raise ValueError(
            f"leak_{benchmark} needs local data: pass --metadata '{{\"data_files\": \"items.jsonl\"}}' "
            f"or set {data_env_var(benchmark)}"
        )

    items: list[Item] = []
    skipped: list[InvalidItemError] = []
    for index, record in enumerate(records):
        try:
            items.append(spec.to_item(record, index))
        except InvalidItemError as exc:
            if not _as_bool(skip_invalid):
                raise InvalidItemError(f"leak_{benchmark} [{origin}]", exc.item_id, exc.field, exc.problem) from None
            skipped.append(exc)
    if skipped:
        logger.warning(
            "leak_%s: skipped %d invalid item(s) of %d (skip_invalid is on); first: %s",
            benchmark, len(skipped), len(records), skipped[0],
        )
    if not items:
        raise ValueError(f"leak_{benchmark}: no valid item in {origin} ({len(records)} records read)")
    if sample_items is not None and int(sample_items) < len(items):
        keep = np.sort(np.random.default_rng(int(sample_seed)).choice(len(items), int(sample_items), replace=False))
        items = [items[i] for i in keep]

    roles = ["observed"] * len(items)
    if control:
        extra = control_items(items, seed=int(control_seed))
        items, roles = items + extra, roles + ["control"] * len(extra)

    docs = []
    for item, role in zip(items, roles, strict=True):
        orderings = build_orderings(
            item.options, max_orderings=int(max_orderings), seed=int(ordering_seed), item_id=item.id
        )
        context, _ = render(item.question, item.options, template=template, header=item.header)  # type: ignore[arg-type]
        guard = check_exchangeable(item.options)
        docs.append(
            {
                "id": item.id,
                "subject": item.subject,
                "question": item.question,
                "options": list(item.options),
                "context": context,
                "template": template,
                "perms": [list(p) for p in orderings.perms],
                "n_distinct": orderings.n_distinct,
                "complete": orderings.complete,
                "delta": float(delta) if delta is not None else default_delta(len(item.options)),
                "exchangeable": guard.exchangeable,
                "nonexchangeable_reasons": list(guard.reasons),
                "keep_nonexchangeable": _as_bool(keep_nonexchangeable),
                "reference_rule": _as_bool(reference_rule),
                "control": bool(control),
                "role": role,
            }
        )
    return docs


def _dataset(benchmark: str, *, control: bool = False, **metadata: Any) -> Any:
    import datasets

    # Whether a task has a control is fixed by its hook (its metric list depends on it), not by
    # --metadata, which applies to every task of a run.
    metadata.pop("control", None)
    docs = build_docs(benchmark, control=control, **metadata)
    # The task YAMLs all read the "test" split; which split was scanned is the loader's business.
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def load_mmlu(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_mmlu``."""
    return _dataset("mmlu", **metadata)


def load_cmmlu(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_cmmlu``."""
    return _dataset("cmmlu", **metadata)


def load_ceval(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_ceval``."""
    return _dataset("ceval", **metadata)


def load_cmb(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_cmb``."""
    return _dataset("cmb", **metadata)


def load_custom(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_custom``: a JSONL of ``{question, options[, id, subject]}``."""
    return _dataset("custom", **metadata)


def load_mmlu_control(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_mmlu_control``."""
    return _dataset("mmlu", control=True, **metadata)


def load_cmmlu_control(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_cmmlu_control``."""
    return _dataset("cmmlu", control=True, **metadata)


def load_ceval_control(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_ceval_control``."""
    return _dataset("ceval", control=True, **metadata)


def load_cmb_control(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_cmb_control``."""
    return _dataset("cmb", control=True, **metadata)


def load_custom_control(**metadata: Any) -> Any:
    """``custom_dataset`` hook of ``leak_custom_control``."""
    return _dataset("custom", control=True, **metadata)


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """The option block of every ordering: one log-likelihood request each, ordering 0 first."""
    options = doc["options"]
    return [
        render(doc["question"], [options[i] for i in perm], template=doc["template"])[1] for perm in doc["perms"]
    ]


# --------------------------------------------------------------------------- per item

SCENARIO_A_METRICS = (
    "leak_a", "leak_a_chance", "leak_a_p", "leak_a_excess", "leak_a_excess_lo", "leak_a_excess_hi",
    "orig_rank", "orig_rank_p", "orig_z", "orig_p", "gap_ratio",
)
SCENARIO_B_METRICS = ("leak_b", "leak_b_cal", "leak_b_cal_excess", "leak_b_cal_lo", "leak_b_cal_hi", "leak_b_cal_p")


def process_results(doc: dict[str, Any], results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    """Per-item values from this item's own requests.

    ``None`` marks an item left out of a figure: every figure when its scores are unusable
    (counted in ``n_excluded``), the scenario-a figures when its options are not exchangeable
    (counted in ``n_nonexch``) unless the task option ``keep_nonexchangeable`` is on.
    """
    scores = np.array([float(r[0]) for r in results], dtype=np.float64)
    item = stats.item_stats(scores)
    nonexch = not doc.get("exchangeable", True)
    counts = {"n_excluded": int(not item.ok), "n_nonexch": int(nonexch)}
    if not item.ok:
        logger.warning("leak item %s excluded: %s", doc["id"], stats.STATUS_REASONS[item.status])
        excluded = dict.fromkeys(SCENARIO_A_METRICS + SCENARIO_B_METRICS) | counts
        if doc.get("control", False):
            names = ("leak_a_vs_control", "orig_rank_vs_control", "leak_b_cal_vs_control")
            excluded |= dict.fromkeys(n for name in names for n in _suffixed(name))
        return excluded

    flag, n = float(item.original_first), item.n_orderings
    scenario_a = {
        "leak_a": flag,
        "leak_a_chance": 1.0 / n,
        "leak_a_p": [flag, n],
        "leak_a_excess": [flag, n],
        "leak_a_excess_lo": [flag, n],
        "leak_a_excess_hi": [flag, n],
        "orig_rank": item.rank,
        "orig_rank_p": [item.rank, n],
        "orig_z": item.zscore,
        "orig_p": item.pvalue,
        "gap_ratio": item.gap_ratio,
    }
    if nonexch and not doc.get("keep_nonexchangeable", False):
        scenario_a = dict.fromkeys(SCENARIO_A_METRICS)
    single = calibrated.scenario_b_pvalues(scores[None, :], np.asarray(doc["perms"]), null="gaussian")
    record = [float(single.statistic[0]), float(single.decoy[0]), single.model[0], float(single.pvalue[0]), len(scores)]
    leak_b = float(isolation_flag(scores, delta=doc["delta"])) if doc.get("reference_rule", True) else None
    scenario_b = {"leak_b": leak_b} | dict.fromkeys(SCENARIO_B_METRICS[1:], record)
    values = scenario_a | scenario_b | counts
    if not doc.get("control", False):
        return values
    is_control = int(doc["role"] == "control")
    vs_control = {
        **dict.fromkeys(_suffixed("leak_a_vs_control"), None if values["leak_a"] is None else [flag, is_control]),
        **dict.fromkeys(_suffixed("orig_rank_vs_control"), None if values["orig_rank"] is None else [item.rank, is_control]),
        **dict.fromkeys(_suffixed("leak_b_cal_vs_control"), [*record, is_control]),
    }
    if is_control:  # control items only enter the differences
        values = dict.fromkeys(values) | {"n_excluded": 0, "n_nonexch": 0}
    return values | vs_control


def _suffixed(name: str) -> tuple[str, str, str]:
    return (name, f"{name}_lo", f"{name}_hi")


# --------------------------------------------------------------------------- aggregations


def _kept(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _pairs(values: Sequence[Sequence[float] | None]) -> np.ndarray | None:
    kept = _kept(values)
    return np.asarray(kept, dtype=np.float64).reshape(-1, 2) if kept else None


@register_aggregation("leakage_mean")
def leakage_mean(values: Sequence[float | None]) -> float:
    """Mean over the items that were not left out (NaN when every item was)."""
    kept = [v for v in _kept(values) if np.isfinite(v)]
    return float(np.mean(kept)) if kept else float("nan")


@register_aggregation("leakage_count")
def leakage_count(values: Sequence[int]) -> int:
    """Number of items counted (e.g. excluded)."""
    return int(sum(values))


def _scenario_a(values: Sequence[Sequence[float] | None]) -> stats.ScenarioA | None:
    pairs = _pairs(values)
    return None if pairs is None else stats.scenario_a(pairs[:, 0].astype(bool), pairs[:, 1].astype(int))


def _register_field(name: str, compute: Callable[[Any], Any], field: Callable[[Any], float], doc: str) -> Any:
    """Register aggregation ``name``: ``field`` of ``compute(values)``, NaN when that is ``None``."""

    def aggregate(values: Sequence[Any]) -> float:
        result = compute(values)
        return float("nan") if result is None else float(field(result))

    aggregate.__name__ = aggregate.__qualname__ = name
    aggregate.__doc__ = doc
    return register_aggregation(name)(aggregate)


leakage_flag_pvalue = _register_field(
    "leakage_flag_pvalue", _scenario_a, lambda r: r.pvalue,
    "Exact one-sided p-value of the Algorithm 1 count against each item's chance level.")
leakage_a_excess = _register_field(
    "leakage_a_excess", _scenario_a, lambda r: r.excess, "``leak_a`` minus its chance level.")
leakage_a_excess_lo = _register_field(
    "leakage_a_excess_lo", _scenario_a, lambda r: r.excess_ci[0], "Lower end of the 95% interval of ``leak_a_excess``.")
leakage_a_excess_hi = _register_field(
    "leakage_a_excess_hi", _scenario_a, lambda r: r.excess_ci[1], "Upper end of the 95% interval of ``leak_a_excess``.")


@register_aggregation("leakage_rank_pvalue")
def leakage_rank_pvalue(values: Sequence[Sequence[float] | None]) -> float:
    """One-sided p-value of the mean rank of the original ordering against 0.5."""
    pairs = _pairs(values)
    return float("nan") if pairs is None else stats.rank_test(pairs[:, 0], pairs[:, 1]).pvalue


def _scenario_b(values: Sequence[Sequence[Any] | None]) -> calibrated.ScenarioBSummary | None:
    kept = _kept(values)
    if not kept:
        return None
    statistic, decoy, model, gaussian, n_orderings = zip(*kept, strict=True)
    result = calibrated.combine_item_statistics(statistic, decoy, model, gaussian, n_orderings=n_orderings)
    if not np.isfinite(result.pvalue).any():
        return None
    return calibrated.summarise_scenario_b(result, alpha=CALIBRATED_ALPHA)


CALIBRATED_ALPHA = 0.05
"""Per-item level of the calibrated scenario-b test; its flagged fraction is this under no leakage."""


leakage_b_cal = _register_field(
    "leakage_b_cal", _scenario_b, lambda r: r.flagged_fraction,
    "Fraction flagged by the calibrated scenario-b test at ``CALIBRATED_ALPHA``.")
leakage_b_cal_excess = _register_field(
    "leakage_b_cal_excess", _scenario_b, lambda r: r.excess,
    "``leak_b_cal`` minus its calibrated level ``CALIBRATED_ALPHA``.")
leakage_b_cal_lo = _register_field(
    "leakage_b_cal_lo", _scenario_b, lambda r: r.excess_low, "Lower end of the 95% interval of ``leak_b_cal_excess``.")
leakage_b_cal_hi = _register_field(
    "leakage_b_cal_hi", _scenario_b, lambda r: r.excess_high, "Upper end of the 95% interval of ``leak_b_cal_excess``.")
leakage_b_cal_p = _register_field(
    "leakage_b_cal_p", _scenario_b, lambda r: r.pvalue, "One-sided p-value of ``leak_b_cal`` above its calibrated level.")


# --------------------------------------------------------------------------- observed minus control


def _split_roles(values: Sequence[Sequence[Any] | None]) -> tuple[list[Any], list[Any]]:
    kept = _kept(values)
    return [v[:-1] for v in kept if not v[-1]], [v[:-1] for v in kept if v[-1]]


def _leak_a_vs_control(values: Sequence[Sequence[Any] | None]) -> stats.Difference:
    observed, control = _split_roles(values)
    return stats.proportion_difference(
        int(sum(v[0] for v in observed)), len(observed), int(sum(v[0] for v in control)), len(control)
    )


def _orig_rank_vs_control(values: Sequence[Sequence[Any] | None]) -> stats.Difference:
    observed, control = _split_roles(values)
    return stats.mean_difference([v[0] for v in observed], [v[0] for v in control])


def _leak_b_cal_vs_control(values: Sequence[Sequence[Any] | None]) -> stats.Difference:
    counts = []
    for group in _split_roles(values):
        summary = _scenario_b(group) if group else None
        counts += [0, 0] if summary is None else [summary.n_flagged, summary.n_valid]
    return stats.proportion_difference(*counts)


def _register_difference(name: str, compute: Any) -> None:
    """Register ``name`` (observed minus control) and ``name_lo``/``name_hi`` (its 95% interval)."""
    register_aggregation(f"leakage_{name}")(lambda values: compute(values).difference)
    register_aggregation(f"leakage_{name}_lo")(lambda values: compute(values).ci[0])
    register_aggregation(f"leakage_{name}_hi")(lambda values: compute(values).ci[1])


_register_difference("leak_a_vs_control", _leak_a_vs_control)
_register_difference("orig_rank_vs_control", _orig_rank_vs_control)
_register_difference("leak_b_cal_vs_control", _leak_b_cal_vs_control)
