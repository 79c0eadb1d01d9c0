"""Scoring a model through lm-eval: every ordering of every item, from lm-eval's logged samples.

The model runs through ``--model hf-prefix`` (``lm_eval_leakage.harness.prefix_model``: ``hf``'s
figures, each item's orderings fed as one token trie). lm_eval is imported inside
:func:`score_with_lm_eval`; the samples are read by the report's parser
(``lm_eval_leakage.report.reader.parse_sample``), the one reader of lm-eval's format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MODEL = "hf-prefix"
"""lm-eval model name the validation scores with (``hf``'s figures, faster)."""


def lm_eval_command(
    model_path: str | os.PathLike[str], items_jsonl: Path, task: str, batch_size: int, device: str
) -> str:
    """The ``lm_eval`` command line equivalent to :func:`score_with_lm_eval` (for the record)."""
    metadata = json.dumps({"data_files": str(items_jsonl)})
    return (
        f"lm_eval --model {MODEL} --model_args pretrained={model_path},dtype=float32 --tasks {task} "
        f"--metadata '{metadata}' --device {device} --batch_size {batch_size} --log_samples --output_path OUT"
    )


def score_with_lm_eval(
    model_path: str | os.PathLike[str],
    items_jsonl: Path,
    *,
    task: str,
    batch_size: int,
    device: str,
) -> tuple[dict[str, list[float]], dict[str, list[list[int]]], dict[str, Any]]:
    """Score every ordering of every item with lm-eval's ``simple_evaluate`` and ``log_samples``.

    Returns:
        Per item id: the ordering scores (``filtered_resps``) and the orderings (``doc["perms"]``);
        and the task's aggregated lm-eval results (as lm-eval reports them).
    """
    import lm_eval

    from lm_eval_leakage.report.reader import parse_sample

    results = lm_eval.simple_evaluate(
        model=MODEL,
        model_args=f"pretrained={model_path},dtype=float32",
        tasks=[task],
        device=device,
        batch_size=batch_size,
        log_samples=True,
        metadata={"data_files": str(items_jsonl)},
    )
    if results is None:  # non-zero ranks of a distributed run
        raise RuntimeError("simple_evaluate returned nothing (run the validation in a single process)")
    scores: dict[str, list[float]] = {}
    perms: dict[str, list[list[int]]] = {}
    for sample in results["samples"][task]:
        item = parse_sample(sample)
        scores[item.item_id] = [float(v) for v in item.scores]
        perms[item.item_id] = [list(p) for p in item.perms]
    aggregated = {k: v for k, v in results["results"][task].items() if isinstance(v, (int, float))}
    return scores, perms, aggregated


__all__ = ["lm_eval_command", "score_with_lm_eval"]
