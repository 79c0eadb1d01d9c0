"""lm-eval glue: dataset hooks, per-item results and registered aggregations for ``leak_*`` tasks.

Thin by design: every figure is computed by the pure modules (``orderings``, ``stats``,
``reference_rule``); this module only moves data between them and lm-eval.

Task options arrive as lm-eval task metadata (the YAML's ``metadata:`` merged with the command
line's ``--metadata '{...}'``), which lm-eval hands to ``custom_dataset`` as keyword arguments.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from lm_eval.api.registry import register_aggregation

from lm_eval_leakage import stats
from lm_eval_leakage.benchmarks import BENCHMARKS, InvalidItemError, Item
from lm_eval_leakage.loading import data_env_var, read_hub, read_local
from lm_eval_leakage.orderings import DEFAULT_MAX_ORDERINGS, build_orderings
from lm_eval_leakage.reference_rule import default_delta, isolation_flag
from lm_eval_leakage.templates import TEMPLATES, render

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

    Returns:
        One lm-eval document per valid item.

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

    docs = []
    for item in items:
        orderings = build_orderings(
            item.options, max_orderings=int(max_orderings), seed=int(ordering_seed), item_id=item.id
        )
        context, _ = render(item.question, item.options, template=template, header=item.header)  # type: ignore[arg-type]
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
            }
        )
    return docs


def _dataset(benchmark: str, **metadata: Any) -> Any:
    import datasets

    # The task YAMLs all read the "test" split; which split was scanned is the loader's business.
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(build_docs(benchmark, **metadata))})


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


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """The option block of every ordering: one log-likelihood request each, ordering 0 first."""
    options = doc["options"]
    return [
        render(doc["question"], [options[i] for i in perm], template=doc["template"])[1] for perm in doc["perms"]
    ]


# --------------------------------------------------------------------------- per item


def process_results(doc: dict[str, Any], results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    """Per-item values from this item's own requests; ``None`` marks an excluded item."""
    scores = np.array([float(r[0]) for r in results], dtype=np.float64)
    item = stats.item_stats(scores)
    if not item.ok:
        logger.warning("leak item %s excluded: %s", doc["id"], stats.STATUS_REASONS[item.status])
        return {m: None for m in ("leak_a", "leak_a_chance", "leak_a_p", "leak_b", "orig_rank")} | {
            "n_excluded": 1
        }
    flag = float(item.original_first)
    return {
        "leak_a": flag,
        "leak_a_chance": 1.0 / item.n_orderings,
        "leak_a_p": [flag, item.n_orderings],
        "leak_b": float(isolation_flag(scores, delta=doc["delta"])),
        "orig_rank": item.rank,
        "n_excluded": 0,
    }


# --------------------------------------------------------------------------- aggregations


def _kept(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None]


@register_aggregation("leakage_mean")
def leakage_mean(values: Sequence[float | None]) -> float:
    """Mean over the items that were not excluded (NaN when every item was)."""
    kept = _kept(values)
    return float(np.mean(kept)) if kept else float("nan")


@register_aggregation("leakage_flag_pvalue")
def leakage_flag_pvalue(values: Sequence[Sequence[float] | None]) -> float:
    """Exact one-sided p-value of the Algorithm 1 count against each item's chance level."""
    kept = np.asarray(_kept(values), dtype=np.float64).reshape(-1, 2)
    if kept.shape[0] == 0:
        return float("nan")
    return stats.scenario_a(kept[:, 0].astype(bool), kept[:, 1].astype(int)).pvalue


@register_aggregation("leakage_count")
def leakage_count(values: Sequence[int]) -> int:
    """Number of items counted (e.g. excluded)."""
    return int(sum(values))
