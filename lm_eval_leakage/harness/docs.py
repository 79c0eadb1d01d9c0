"""The per-item documents of the ``leak_*`` tasks, and the dataset hooks lm-eval calls to get them.

Task options arrive as lm-eval task metadata (the YAML's ``metadata:`` merged with the command
line's ``--metadata '{...}'``), which lm-eval hands to ``custom_dataset`` as keyword arguments.
Each item becomes one :class:`LeakDoc`; ``doc_to_choice`` turns it into one log-likelihood
request per ordering.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal, TypedDict

import numpy as np

from lm_eval_leakage.benchmarks.loading import data_env_var, read_hub, read_located
from lm_eval_leakage.benchmarks.schemas import BENCHMARKS
from lm_eval_leakage.core.control import control_items
from lm_eval_leakage.core.exchangeability import check_exchangeable
from lm_eval_leakage.core.items import InvalidItemError, Item
from lm_eval_leakage.core.orderings import build_orderings
from lm_eval_leakage.core.reference_rule import default_delta
from lm_eval_leakage.core.templates import render
from lm_eval_leakage.harness.options import parse_options
from lm_eval_leakage.harness.window import ContextWindow, window_from_metadata

logger = logging.getLogger("lm_eval_leakage")


class LeakDoc(TypedDict):
    """One item as an lm-eval document (what ``--log_samples`` writes under ``doc``).

    Attributes:
        id: The item's id in its dataset.
        subject: Its subject ("" when the benchmark has none).
        question: Question text.
        options: Option texts in the published order.
        context: The rendered question part (every request's context).
        template: ``"reference"`` (the paper's) or ``"native"`` (the benchmark's lm-eval style).
        perms: ``perms[j][p]``: original index of the option shown at position ``p`` in ordering
            ``j``; ordering 0 is the published order.
        n_distinct: Distinct orderings the item has in all.
        complete: Whether every distinct ordering is scored (else a seeded sample).
        delta: Algorithm 2's threshold for this item.
        exchangeable: The exchangeability guard's verdict.
        nonexchangeable_reasons: Its reasons when not exchangeable.
        keep_nonexchangeable: Count a non-exchangeable item in scenario a anyway.
        reference_rule: Run the paper's IsolationForest rule on this item.
        control: The task has a control set (its metric list has the observed-minus-control columns).
        role: ``"observed"`` for a benchmark item, ``"control"`` for its control twin.
        unscored_reason: Why the item is not scored (it does not fit the model's window; see
            ``window``), ``""`` when it is; such an item sends one placeholder request.
    """

    id: str
    subject: str
    question: str
    options: list[str]
    context: str
    template: str
    perms: list[list[int]]
    n_distinct: int
    complete: bool
    delta: float
    exchangeable: bool
    nonexchangeable_reasons: list[str]
    keep_nonexchangeable: bool
    reference_rule: bool
    control: bool
    role: Literal["observed", "control"]
    unscored_reason: str


SKIP_HINT = "fix the record, or skip such items with --metadata '{\"skip_invalid\": true}'"
PLACEHOLDER_REQUEST = " "
"""The one continuation an unscored item sends (lm-eval needs at least one request per document)."""


def build_docs(benchmark: str, *, control: bool = False, **metadata: Any) -> list[LeakDoc]:
    """Read a benchmark, validate every item and attach its orderings.

    Args:
        benchmark: Key of :data:`BENCHMARKS`.
        control: Add a control item per item (see ``control``), marked ``role: "control"``; set
            by the ``leak_<benchmark>_control`` tasks, whose metric list reports observed minus
            control.
        metadata: The task options (``harness.options.OPTIONS``: ``data_files``, ``template``,
            ``max_orderings``, ``sample_items``, ...) and whatever else lm-eval passes along.
            Without ``data_files``, the ``LM_EVAL_LEAKAGE_<BENCHMARK>_DATA`` environment
            variable, then the hub.

    Returns:
        One lm-eval document per valid item (and per control item).

    Raises:
        TaskOptionError: A misspelt option, or a value of the wrong type or range.
        InvalidItemError: An invalid item, unless ``skip_invalid``.
        ValueError: No valid item at all.
    """
    options = parse_options(f"leak_{benchmark}", metadata)
    template = options["template"]
    items = _read_items(benchmark, data_files=options["data_files"], split=options["split"],
                        skip_invalid=options["skip_invalid"])
    if options["sample_items"] is not None and options["sample_items"] < len(items):
        rng = np.random.default_rng(options["sample_seed"])
        keep = np.sort(rng.choice(len(items), options["sample_items"], replace=False))
        items = [items[i] for i in keep]
    roles: list[Literal["observed", "control"]] = ["observed"] * len(items)
    if control:
        extra = control_items(items, seed=options["control_seed"])
        items, roles = items + extra, roles + ["control"] * len(extra)
    shared = {
        "template": template,
        "keep_nonexchangeable": options["keep_nonexchangeable"],
        "reference_rule": options["reference_rule"],
        "control": bool(control),
    }
    docs = [
        _doc(item, role, shared, delta=options["delta"], max_orderings=options["max_orderings"],
             ordering_seed=options["ordering_seed"])
        for item, role in zip(items, roles, strict=True)
    ]
    window = window_from_metadata(f"leak_{benchmark}", metadata)
    if window is not None:
        _mark_what_does_not_fit(benchmark, docs, window)
    return docs


def _mark_what_does_not_fit(benchmark: str, docs: list[LeakDoc], window: ContextWindow) -> None:
    unscored = []
    for doc in docs:
        doc["unscored_reason"] = window.problem(doc["context"], doc_to_choice(doc))
        if doc["unscored_reason"]:
            unscored.append(f"item {doc['id']!r}: {doc['unscored_reason']}")
    if unscored:
        logger.warning("leak_%s: %d of %d item(s) do not fit the model's window and are left out (counted in "
                       "n_excluded); first: %s", benchmark, len(unscored), len(docs), unscored[0])


def _read_items(benchmark: str, *, data_files: str | list[str] | None, split: str | None,
                skip_invalid: bool) -> list[Item]:
    """Every valid item of the benchmark's local files or hub split, in file order."""
    spec = BENCHMARKS[benchmark]
    source = data_files or os.environ.get(data_env_var(benchmark))
    if source:
        records, origin = read_located(source, spec), str(source)
    elif spec.hub_path:
        records, origin = read_hub(spec, split or spec.split), f"{spec.hub_path} ({split or spec.split})"
    else:
        raise ValueError(
            f"leak_{benchmark} needs local data: pass --metadata '{{\"data_files\": \"items.jsonl\"}}' "
            f"or set {data_env_var(benchmark)}"
        )
    items: list[Item] = []
    places: dict[str, str] = {}
    skipped: list[str] = []
    for index, (record, where) in enumerate(records):
        try:
            item = spec.to_item(record, index)
            if item.id in places:
                raise InvalidItemError(benchmark, item.id, "id", f"duplicate: the same id is at {places[item.id]}")
        except InvalidItemError as exc:
            if not skip_invalid:
                raise InvalidItemError(f"leak_{benchmark} [{where}]", exc.item_id, exc.field,
                                       f"{exc.problem} ({SKIP_HINT})") from None
            skipped.append(f"{where}: {exc}")
            continue
        items.append(item)
        places[item.id] = where
    if skipped:
        logger.warning(
            "leak_%s: skipped %d invalid item(s) of %d (skip_invalid is on); first: %s",
            benchmark, len(skipped), len(records), skipped[0],
        )
    if not items:
        raise ValueError(f"leak_{benchmark}: no valid item in {origin} ({len(records)} records read)")
    return items


def _doc(item: Item, role: Literal["observed", "control"], shared: dict[str, Any], *, delta: float | None,
         max_orderings: int, ordering_seed: int) -> LeakDoc:
    orderings = build_orderings(item.options, max_orderings=max_orderings, seed=ordering_seed, item_id=item.id)
    context, _ = render(item.question, item.options, template=shared["template"], header=item.header)
    guard = check_exchangeable(item.options)
    return LeakDoc(
        id=item.id,
        subject=item.subject,
        question=item.question,
        options=list(item.options),
        context=context,
        template=shared["template"],
        perms=[list(p) for p in orderings.perms],
        n_distinct=orderings.n_distinct,
        complete=orderings.complete,
        delta=float(delta) if delta is not None else default_delta(len(item.options)),
        exchangeable=guard.exchangeable,
        nonexchangeable_reasons=list(guard.reasons),
        keep_nonexchangeable=shared["keep_nonexchangeable"],
        reference_rule=shared["reference_rule"],
        control=shared["control"],
        role=role,
        unscored_reason="",
    )


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


def doc_to_choice(doc: LeakDoc) -> list[str]:
    """The option block of every ordering: one log-likelihood request each, ordering 0 first."""
    if doc.get("unscored_reason"):
        return [PLACEHOLDER_REQUEST]
    options = doc["options"]
    return [
        render(doc["question"], [options[i] for i in perm], template=doc["template"])[1] for perm in doc["perms"]
    ]
