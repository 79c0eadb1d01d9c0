"""The ``leak_*`` tasks' options: declared once, parsed strictly, misspellings caught.

lm-eval hands a task's ``custom_dataset`` hook one dictionary: the YAML's ``metadata``, the command
line's ``--metadata`` and, under ``simple_evaluate``, the model arguments. :func:`parse_options`
turns the keys that are task options into typed values (a wrong type or range is an error that
names the key), stops on a key that is a near-miss of an option (``sample_item``), and warns about
any other key it does not know, since it may be a model argument. The README's option table is
written from :data:`OPTIONS` by ``tasks.generate``.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval_leakage.core.orderings import DEFAULT_MAX_ORDERINGS
from lm_eval_leakage.core.templates import TEMPLATES

logger = logging.getLogger("lm_eval_leakage")

MAX_ORDERINGS_LIMIT = 5_040
"""Largest ``max_orderings`` accepted (7!): every ordering is one request to the model."""
LM_EVAL_KEYS = frozenset({
    "version", "pretrained", "model", "dtype", "device", "device_map", "revision", "trust_remote_code",
    "batch_size", "max_batch_size", "max_length", "parallelize", "tokenizer", "backend", "peft", "delta_weights",
    "add_bos_token", "use_fast_tokenizer", "base_url", "num_concurrent", "tokenized_requests", "gguf_file",
    "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "enable_prefix_caching",
    "max_model_len", "seed", "max_retries", "timeout", "config_source",
})
"""Keys lm-eval or its model backends put into the same dictionary; passed over without a word."""


class TaskOptionError(ValueError):
    """A task option with a wrong name, type or value."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError("expected a whole number")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    number = float(value) if isinstance(value, (int, float, str)) else math.nan
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected non-empty text")
    return value


def _files(value: Any) -> str | list[str]:
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError("expected a non-empty list of paths")
        return list(value)
    return _text(value)


def _template(value: Any) -> str:
    if value not in TEMPLATES:
        raise ValueError(f"expected one of {', '.join(TEMPLATES)}")
    return str(value)


@dataclass(frozen=True)
class Option:
    """One task option.

    Attributes:
        name: Its key in ``--metadata``.
        parse: Turns the given value into the typed one; raises ``ValueError`` saying what was expected.
        default: Its value when not given (``None``: decided later, as ``meaning`` says).
        shown_default: The default as the README shows it.
        meaning: What it does (Markdown, for the README).
        minimum: Smallest accepted value of a number.
        maximum: Largest accepted value of a number.
    """

    name: str
    parse: Callable[[Any], Any]
    default: Any
    shown_default: str
    meaning: str
    minimum: float | None = None
    maximum: float | None = None


OPTIONS: tuple[Option, ...] = (
    Option("data_files", _files, None, "hub", "local file(s) in the benchmark's own schema: `.jsonl`, `.json` (a "
           "list), `.csv`, `.parquet`; a file, folder, glob or comma list"),
    Option("split", _text, None, "benchmark's", "hub split to read"),
    Option("template", _template, "reference", "`reference`", "`reference` (the paper's) or `native`"),
    Option("max_orderings", _int, DEFAULT_MAX_ORDERINGS, str(DEFAULT_MAX_ORDERINGS),
           f"enumerate all distinct orderings up to this many, else sample (at most {MAX_ORDERINGS_LIMIT:,})",
           minimum=2, maximum=MAX_ORDERINGS_LIMIT),
    Option("ordering_seed", _int, 1234, "1234", "seed of sampled orderings (per item, stable across processes)"),
    Option("sample_items", _int, None, "all", "score a seeded random sample of this many items", minimum=1),
    Option("sample_seed", _int, 0, "0", "seed of that sample"),
    Option("skip_invalid", _bool, False, "false", "skip invalid items (their count is logged) instead of stopping"),
    Option("delta", _float, None, "per item", "threshold of the paper's Algorithm 2"),
    Option("keep_nonexchangeable", _bool, False, "false", "keep guarded items in the scenario-a and `leak_b_cal` rows"),
    Option("control_seed", _int, 0, "0", "seed of the control set's donor assignment (`_control` tasks)"),
    Option("reference_rule", _bool, True, "true",
           "compute `leak_b` (the paper's IsolationForest, reproduced exactly in numpy: 2-5 ms per item)"),
)
"""Every task option, in README order."""
_BY_NAME = {option.name: option for option in OPTIONS}


def _parse_one(task: str, option: Option, value: Any) -> Any:
    try:
        parsed = option.parse(value)
    except (TypeError, ValueError) as exc:
        raise TaskOptionError(f"{task}: task option {option.name!r} = {value!r}: {exc}") from None
    for bound, outside in ((option.minimum, lambda b: parsed < b), (option.maximum, lambda b: parsed > b)):
        if bound is not None and outside(bound):
            raise TaskOptionError(
                f"{task}: task option {option.name!r} = {value!r}: must lie between {option.minimum:g} and "
                f"{option.maximum if option.maximum is not None else math.inf:g}")
    return parsed


def parse_options(task: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Every task option, typed, from the dictionary lm-eval passes to the dataset hook.

    Args:
        task: The task's name, for messages.
        metadata: What lm-eval passed.

    Returns:
        ``{option name: value}`` for every option (its default where not given).

    Raises:
        TaskOptionError: A value of the wrong type or range, or a key that looks like a misspelt option.
    """
    values = {option.name: option.default for option in OPTIONS}
    unknown = []
    for key, value in metadata.items():
        if key in _BY_NAME:
            values[key] = None if value is None and _BY_NAME[key].default is None else _parse_one(
                task, _BY_NAME[key], value)
        elif key not in LM_EVAL_KEYS:
            unknown.append(key)
    for key in unknown:
        close = difflib.get_close_matches(key, list(_BY_NAME), n=1, cutoff=0.75)
        if close:
            raise TaskOptionError(f"{task}: unknown task option {key!r}; did you mean {close[0]!r}? "
                                  f"(options: {', '.join(_BY_NAME)})")
    if unknown:
        logger.warning("%s: ignoring metadata key(s) that are not task options: %s (task options: %s)",
                       task, ", ".join(map(repr, unknown)), ", ".join(_BY_NAME))
    return values


def readme_table() -> str:
    """The README's option table (Markdown)."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{o.name}` | {o.shown_default} | {o.meaning} |" for o in OPTIONS]
    return "\n".join(lines) + "\n"
