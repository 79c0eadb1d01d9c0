"""Reading lm-eval's per-sample logs of the ``leak_*`` tasks: one samples line -> :class:`ItemScores`.

:func:`parse_sample` turns one decoded samples line (``doc``, ``filtered_resps`` or ``resps``) into
the item's ordering scores and orderings, with no report concept attached, so other packages
(the validation experiment) parse lm-eval samples with it too. :func:`read_samples` reads a
``samples_leak_*.jsonl`` file line by line and reports unusable lines as ``FILE:LINE: problem``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lm_eval_leakage.core.exchangeability import check_exchangeable

ROLES = ("observed", "control")


# --------------------------------------------------------------------------- errors


class ReportError(Exception):
    """Input the user can fix (a missing or unreadable file); printed without a traceback."""


class MissingSamplesError(ReportError):
    """A run folder has results for a ``leak_*`` task but not the samples needed to recompute it."""


@dataclass(frozen=True)
class LineProblem:
    """A samples line that could not be used.

    Attributes:
        path: The samples file.
        line: 1-based line number.
        problem: What is wrong with it.
    """

    path: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


class SamplesFileError(ReportError):
    """A samples file with a bad line; ``items_read`` keeps every item read before it."""

    def __init__(self, problem: LineProblem, items_read: Sequence[ItemScores]) -> None:
        self.problem = problem
        self.items_read = tuple(items_read)
        super().__init__(f"{problem} ({len(self.items_read)} item(s) read before it)")


@dataclass(frozen=True, eq=False)
class ItemScores:
    """One item of a samples file, with the score of each of its orderings.

    Attributes:
        doc_id: lm-eval's index of the document.
        item_id: The item's id in its dataset.
        subject: Subject ("" when the benchmark has none).
        question: Question text.
        options: Option texts in the original order.
        perms: ``perms[j][p]``: original index of the option at position ``p`` in ordering ``j``.
        scores: Log-likelihood per ordering, ordering 0 the original.
        delta: The Algorithm 2 threshold the run used for this item.
        n_distinct: Distinct orderings the item has in all.
        complete: Whether every distinct ordering was scored.
        exchangeable: False when the run's exchangeability guard found the option order fixed
            by content ("All of the above", sorted numbers); such items are left out of the
            scenario-a figures unless ``keep_nonexchangeable``.
        nonexch_reasons: The guard's reasons.
        keep_nonexchangeable: Whether the run kept such items in the scenario-a figures.
        guard_applied_here: The samples predate the tasks' exchangeability guard, so
            :func:`parse_sample` applied it.
        role: ``"observed"`` for a benchmark item, ``"control"`` for its control twin (the
            doc's ``role``; samples without one are observed items).
    """

    doc_id: int
    item_id: str
    subject: str
    question: str
    options: tuple[str, ...]
    perms: tuple[tuple[int, ...], ...]
    scores: np.ndarray
    delta: float
    n_distinct: int
    complete: bool
    exchangeable: bool = True
    nonexch_reasons: tuple[str, ...] = ()
    keep_nonexchangeable: bool = False
    guard_applied_here: bool = False
    role: str = "observed"


def _float(value: Any) -> float:
    # lm-eval logs log-likelihoods as strings, e.g. ["-12.5", "False"]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("empty response")
        return _float(value[0])
    if isinstance(value, bool):
        raise TypeError(f"expected a log-likelihood, got {value!r}")
    return float(value)


def _scores(record: dict[str, Any]) -> np.ndarray:
    """The ordering scores of a samples line: ``filtered_resps``, else the first of each ``resps``."""
    if "filtered_resps" in record:
        raw = record["filtered_resps"]
    elif "resps" in record:
        raw = [r[0] if isinstance(r, list) and r and isinstance(r[0], list) else r for r in record["resps"]]
    else:
        raise ValueError("no 'filtered_resps' or 'resps': the ordering scores are missing")
    if not isinstance(raw, list):
        raise TypeError("'filtered_resps' is not a list")
    try:
        return np.array([_float(r) for r in raw], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unreadable score: {exc}") from None


def parse_sample(record: Any) -> ItemScores:
    """Turn one samples line (already JSON-decoded) into :class:`ItemScores`.

    Raises:
        TypeError: The line or one of its parts has the wrong JSON type.
        ValueError: The line is not a ``leak_*`` sample or its scores do not fit its orderings.
    """
    if not isinstance(record, dict):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    doc = record.get("doc")
    if not isinstance(doc, dict):
        raise TypeError("no 'doc' object")
    missing = [k for k in ("id", "question", "options", "perms") if k not in doc]
    if missing:
        raise ValueError(f"doc lacks {', '.join(missing)}: not a leak_* sample")
    scores = _scores(record)
    perms = tuple(tuple(int(i) for i in p) for p in doc["perms"])
    options = tuple(str(o) for o in doc["options"])
    if scores.shape[0] != len(perms):
        raise ValueError(f"{scores.shape[0]} scores for {len(perms)} orderings")
    if not perms or any(sorted(p) != list(range(len(options))) for p in perms):
        raise ValueError(f"'perms' are not orderings of the {len(options)} options")
    role = str(doc.get("role") or "observed")
    if role not in ROLES:
        raise ValueError(f"role {role!r} is neither 'observed' nor 'control'")
    if "exchangeable" in doc:
        exchangeable = bool(doc["exchangeable"])
        reasons = tuple(str(r) for r in doc.get("nonexchangeable_reasons") or ())
    else:
        # Samples written before the tasks had the exchangeability guard: apply it here, so that
        # old and new runs count the same items in scenario a.
        guard = check_exchangeable(options)
        exchangeable, reasons = guard.exchangeable, guard.reasons
    return ItemScores(
        doc_id=int(record.get("doc_id", -1)),
        item_id=str(doc["id"]),
        subject=str(doc.get("subject") or ""),
        question=str(doc["question"]),
        options=options,
        perms=perms,
        scores=scores,
        delta=float(doc.get("delta", math.nan)),
        n_distinct=int(doc.get("n_distinct", len(perms))),
        complete=bool(doc.get("complete", True)),
        exchangeable=exchangeable,
        nonexch_reasons=reasons,
        keep_nonexchangeable=bool(doc.get("keep_nonexchangeable", False)),
        guard_applied_here="exchangeable" not in doc,
        role=role,
    )


def read_samples(
    path: Path, *, on_bad_line: Literal["raise", "collect"] = "raise"
) -> tuple[list[ItemScores], list[LineProblem]]:
    """Read a ``samples_leak_*.jsonl`` file line by line.

    Args:
        path: The file.
        on_bad_line: ``"raise"``: stop at the first bad line with :class:`SamplesFileError`, which
            carries the items read before it; ``"collect"``: skip bad lines and return them.

    Returns:
        The items (first occurrence of each ``doc_id``; lm-eval writes one line per filter) and
        the bad lines.

    Raises:
        SamplesFileError: A bad line, with ``on_bad_line="raise"``.
        ReportError: The file cannot be opened.
    """
    items: list[ItemScores] = []
    problems: list[LineProblem] = []
    seen: set[int] = set()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReportError(f"{path}: cannot open the samples file ({exc.strerror})") from None
    with handle:
        # Bytes, one line at a time, each decoded on its own: a bad byte costs its line only.
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            parsed = _parse_line(path, number, raw)
            if isinstance(parsed, ItemScores):
                if parsed.doc_id not in seen or parsed.doc_id < 0:
                    seen.add(parsed.doc_id)
                    items.append(parsed)
                continue
            if on_bad_line == "raise":
                raise SamplesFileError(parsed, items)
            problems.append(parsed)
    return items, problems


def _parse_line(path: Path, number: int, raw: bytes) -> ItemScores | LineProblem:
    """One line of a samples file (its bytes): its item, or what is wrong with it."""
    truncated = not raw.endswith(b"\n")
    hint = " (the last line is cut off: was the run interrupted?)" if truncated else ""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LineProblem(path, number, f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)"
                                         f"{hint}")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return LineProblem(path, number, f"not valid JSON: {exc.msg} at column {exc.colno}{hint}")
    try:
        return parse_sample(record)
    except (TypeError, ValueError) as exc:
        return LineProblem(path, number, str(exc))
