"""The items of a run: which are leaked, clean or filler, and the text each leaked item is trained on.

A seeded sample of eligible items (all option texts distinct, options exchangeable by the
project's guard, training text at most ``max_length`` tokens in both formats) is split into
leaked and clean items (``leaked_fraction`` of them leaked, half by default), optionally followed by
``filler`` items that are trained on but not scored. Scenario ``"a"`` trains the options in their original order, scenario ``"b"`` in one
seeded random non-identity ordering per item; the text is the detection template itself
(``"template"``) or a native exam format (``"native"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS, InvalidItemError, Item
from lm_eval_leakage.core.exchangeability import check_exchangeable
from lm_eval_leakage.core.orderings import build_orderings, item_seed
from lm_eval_leakage.core.templates import LETTERS, native_block, render
from lm_eval_leakage.validation.config import TRAIN_FORMATS, Scenario, TrainFormat, ValidationConfig

Role = Literal["leaked", "clean", "filler"]


@dataclass(frozen=True)
class SampledItem:
    """One item of the run.

    Attributes:
        item: The validated benchmark item.
        record: Its record in the benchmark's schema, with ``id`` set (written to the JSONL).
        role: ``"leaked"``, ``"clean"`` or ``"filler"``.
        shown: The ordering trained on (identity in scenario a; empty for clean items).
        text: The training text (empty for clean items).
    """

    item: Item
    record: dict[str, Any]
    role: Role
    shown: tuple[int, ...] = ()
    text: str = ""


def answer_indices(record: Mapping[str, Any], benchmark: str) -> tuple[int, ...]:
    """Original indices of the correct option(s) of a record.

    MMLU stores a 0-based integer ``answer``; CMMLU a letter ``Answer``; C-Eval, CMB and custom
    data a letter (or, for CMB's multiple-answer items, several letters) in ``answer``.

    Raises:
        ValueError: No answer field, or one that is neither an index nor letters.
    """
    value = record.get("Answer" if benchmark == "cmmlu" else "answer")
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(
            f"{benchmark} record {record.get('id')!r} has no answer (needed by the native format)"
        )
    if isinstance(value, int):
        return (int(value),)
    letters = str(value).strip().upper()
    if letters.isdigit():
        return (int(letters),)
    if not letters.isalpha():
        raise ValueError(f"{benchmark} record {record.get('id')!r}: cannot read answer {value!r}")
    return tuple(LETTERS.index(letter) for letter in letters)


def training_text(
    item: Item,
    shown: Sequence[int],
    *,
    train_format: TrainFormat,
    answers: Sequence[int] = (),
) -> str:
    """The text a leaked item is trained on, with its options in the ordering ``shown``.

    ``"template"`` is the reference template exactly as the ``leak_*`` task renders it (context
    followed by option block). ``"native"`` is ``question + "\\n"``, ``"A. text"`` lines and
    ``"Answer: X"``, where ``X`` is the letter at which the correct option appears in ``shown``
    (several letters, sorted, for multiple-answer items).
    """
    options = [item.options[i] for i in shown]
    if train_format == "template":
        context, block = render(item.question, options, template="reference")
        return context + block
    if train_format == "native":
        if not answers:
            raise ValueError(f"item {item.id!r}: the native format needs the answer")
        positions = sorted(list(shown).index(a) for a in answers)
        return (
            item.question + "\n" + native_block(options) + "Answer: " + "".join(LETTERS[p] for p in positions)
        )
    raise ValueError(f"unknown train_format {train_format!r}; expected one of {TRAIN_FORMATS}")


def shown_ordering(item: Item, *, scenario: Scenario, seed: int) -> tuple[int, ...]:
    """The ordering a leaked item is trained in.

    Scenario a: the original order. Scenario b: one ordering drawn uniformly from the item's
    distinct non-identity orderings, seeded by ``(seed, item id)`` (the identity is left out so
    that scenario b never degenerates into scenario a for an item).
    """
    k = len(item.options)
    if scenario == "a":
        return tuple(range(k))
    perms = build_orderings(item.options, max_orderings=math.factorial(k), seed=seed, item_id=item.id).perms
    rng = np.random.default_rng(item_seed(seed + 1, item.id))
    return tuple(int(i) for i in perms[1 + int(rng.integers(len(perms) - 1))])


def read_records(config: ValidationConfig) -> list[dict[str, Any]]:
    """The benchmark's records: ``config.data_files`` or the offline MMLU copy."""
    from lm_eval_leakage.benchmarks.loading import read_local

    source = config.data_files
    if source is None:
        if config.benchmark != "mmlu":
            raise ValueError(f"no offline copy of {config.benchmark}: pass data_files")
        from lm_eval_leakage.validation.offline import ensure_offline_assets

        source = str(ensure_offline_assets(quiet=True).mmlu_jsonl)
    return read_local(source, BENCHMARKS[config.benchmark])


def _eligible(
    record: dict[str, Any], index: int, config: ValidationConfig, count_tokens: Callable[[str], int]
) -> tuple[Item, tuple[int, ...]] | None:
    """The item and its answers when ``record`` may be sampled, else ``None``."""
    try:
        item = BENCHMARKS[config.benchmark].to_item(record, index)
    except InvalidItemError:
        return None
    if len(set(item.options)) != len(item.options):
        return None
    if config.exchangeable_only and not check_exchangeable(item.options).exchangeable:
        return None
    try:
        answers = answer_indices(record, config.benchmark)
    except ValueError:
        answers = ()
    if config.train_format == "native" and not answers:
        return None
    identity = tuple(range(len(item.options)))
    formats: list[TrainFormat] = ["template", "native"] if answers else ["template"]
    if any(
        count_tokens(training_text(item, identity, train_format=f, answers=answers)) > config.max_length
        for f in formats
    ):
        return None
    return item, answers


def sample_items(
    records: Sequence[Mapping[str, Any]],
    config: ValidationConfig,
    count_tokens: Callable[[str], int],
) -> list[SampledItem]:
    """Draw the leaked, clean and filler items and build their training texts.

    The records are visited in a seeded random order; a record is eligible when it is a valid item,
    its option texts are all distinct (so every item has all k! orderings), it passes the
    exchangeability guard (unless ``exchangeable_only`` is off) and its training text in *both*
    formats fits ``max_length`` tokens, so that the four scenario/format runs of one seed share
    the same items and the same split. The first ``n_items`` eligible records are scored (the first
    ``config.n_leaked`` of them leaked: ``n_items // 2`` for the default fraction of one half), the
    next ``filler`` are filler. The fraction changes only where the scored items are cut into
    leaked and clean, never which records are drawn or in what order.

    Args:
        records: Records in the benchmark's schema.
        config: The run's configuration.
        count_tokens: Number of tokens of a text, end-of-text token included.

    Raises:
        ValueError: Fewer eligible records than ``n_items + filler``.
    """
    wanted = config.n_items + config.filler
    chosen: list[tuple[Item, dict[str, Any], tuple[int, ...]]] = []
    for index in np.random.default_rng(config.seed).permutation(len(records)):
        record = dict(records[int(index)])
        record.setdefault("id", f"{config.benchmark}-{int(index)}")
        eligible = _eligible(record, int(index), config, count_tokens)
        if eligible is not None:
            chosen.append((eligible[0], record, eligible[1]))
            if len(chosen) == wanted:
                break
    if len(chosen) < wanted:
        raise ValueError(
            f"only {len(chosen)} eligible items (distinct options, max_length={config.max_length} tokens"
            f"{', exchangeable' if config.exchangeable_only else ''}); {wanted} needed"
        )
    n_leaked = config.n_leaked
    sampled = []
    for position, (item, record, answers) in enumerate(chosen):
        role: Role = "leaked" if position < n_leaked else "clean" if position < config.n_items else "filler"
        if role == "clean":
            sampled.append(SampledItem(item, record, role))
            continue
        shown = shown_ordering(item, scenario=config.scenario, seed=config.seed)
        text = training_text(item, shown, train_format=config.train_format, answers=answers)
        sampled.append(SampledItem(item, record, role, shown, text))
    return sampled


__all__ = ["SampledItem", "answer_indices", "read_records", "sample_items", "shown_ordering", "training_text"]
