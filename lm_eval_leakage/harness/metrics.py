"""lm-eval's per-item results and registered aggregations for the ``leak_*`` tasks.

``process_results`` scores an item with :func:`~lm_eval_leakage.core.pipeline.score_item` and
hands lm-eval the record (a JSON object) under every column name; each column's registered
aggregation (named like the column) rebuilds the records, summarises them with
:func:`~lm_eval_leakage.core.pipeline.summarise` and reads its figure. Both come from the one
column table, :data:`~lm_eval_leakage.harness.columns.COLUMNS`; nothing here computes a statistic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from lm_eval.api.registry import register_aggregation

from lm_eval_leakage.core.pipeline import ItemRecord, RunFigures, score_item, summarise, unscored_item
from lm_eval_leakage.harness.columns import COLUMNS, Column, columns
from lm_eval_leakage.harness.docs import LeakDoc

logger = logging.getLogger("lm_eval_leakage")


def process_results(doc: LeakDoc, results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    """The item's record, under each column of its task (lm-eval's ``process_results`` hook)."""
    shared = {
        "exchangeable": doc.get("exchangeable", True),
        "keep_nonexchangeable": doc.get("keep_nonexchangeable", False),
        "delta": doc["delta"],
        "role": doc.get("role", "observed"),
    }
    if doc.get("unscored_reason"):  # reported when the task was built
        record = unscored_item(len(doc["perms"]), status="too_long", **shared)
    else:
        record = score_item([float(r[0]) for r in results], doc["perms"],
                            reference_rule=doc.get("reference_rule", True), **shared)
        if not record.ok:
            logger.warning("leak item %s excluded: %s", doc["id"], record.exclusion_reason)
    value = record.to_json()
    return {column.name: value for column in columns(control=doc.get("control", False))}


class _LastRun:
    """The figures of the last list of values summarised.

    lm-eval calls every column's aggregation on its own list, but in one process those lists hold
    the same record objects (``process_results`` puts one record under every column), so the run is
    summarised once rather than once per column. Identity of every element is checked, and the
    values are kept alive with the figures, so a hit is never stale; gathered lists from several
    ranks simply miss.
    """

    values: list[Any] = []
    figures: RunFigures | None = None


def run_figures(values: Sequence[dict[str, Any]]) -> RunFigures:
    """The figures of a task's items from the values ``process_results`` gave lm-eval."""
    last = _LastRun
    if last.figures is not None and len(last.values) == len(values) and all(
            a is b for a, b in zip(last.values, values)):
        return last.figures
    figures = summarise([ItemRecord.from_json(v) for v in values])
    last.values, last.figures = list(values), figures
    return figures


def _register(column: Column) -> Callable[[Sequence[dict[str, Any]]], float]:
    def aggregate(values: Sequence[dict[str, Any]]) -> float:
        return column.read(run_figures(values))

    aggregate.__name__ = aggregate.__qualname__ = column.name
    aggregate.__doc__ = f"lm-eval aggregation of ``{column.name}``: {column.formula}"
    return register_aggregation(column.name)(aggregate)


AGGREGATIONS = {column.name: _register(column) for column in COLUMNS}
"""The registered aggregation of each column, by name."""
