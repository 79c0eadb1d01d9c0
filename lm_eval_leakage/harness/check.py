"""``python -m lm_eval_leakage check``: build a task's items exactly as lm-eval will, with no model.

lm-eval builds the model before the tasks, so a typo in a data file or a task option surfaces only
after the model has loaded (minutes for a large one). This command runs the same dataset hook with
the same options first and prints what the run would score, or the one-line error the run would
stop with (file, line, item, field, what to do).

Exit status: 0 the items are fine; 2 an error (printed as the last line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS


def _hook(task: str) -> tuple[str, bool]:
    """``leak_mmlu_control`` -> (``"mmlu"``, True); raises ``ValueError`` for other names."""
    name = task.removeprefix("leak_")
    control = name.endswith("_control")
    benchmark = name.removesuffix("_control").removesuffix("_native")
    if not task.startswith("leak_") or benchmark not in BENCHMARKS:
        raise ValueError(f"unknown task {task!r}; expected leak_<benchmark>[_native|_control] with a benchmark "
                         f"of {', '.join(BENCHMARKS)}")
    return benchmark, control


def summary_line(task: str, docs: list[dict[str, Any]]) -> str:
    """What a run of ``task`` on ``docs`` would score, in one line."""
    observed = [d for d in docs if d["role"] == "observed"]
    requests = sum(1 if d.get("unscored_reason") else len(d["perms"]) for d in docs)
    return (f"{task}: {len(observed)} item(s), {len(docs) - len(observed)} control item(s), {requests:,} requests; "
            f"{sum(not d['exchangeable'] for d in observed)} with order-bound options (left out of scenario a "
            f"and leak_b_cal unless keep_nonexchangeable), {sum(bool(d.get('unscored_reason')) for d in docs)} too long for the "
            "model's window")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lm_eval_leakage check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", required=True, help="comma-separated leak_* tasks, as given to lm_eval")
    parser.add_argument("--metadata", default="{}", help="the task options, as given to lm_eval --metadata")
    parser.add_argument("--model_args", default="", help="as given to lm_eval (pretrained=... enables the "
                        "check against the model's window)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from lm_eval_leakage.harness.docs import build_docs

    try:
        metadata = json.loads(args.metadata)
        if not isinstance(metadata, dict):
            raise ValueError("--metadata must be a JSON object")
        model_args = dict(part.split("=", 1) for part in args.model_args.split(",") if part.strip())
        for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            benchmark, control = _hook(task)
            template = "native" if task.endswith("_native") else "reference"
            docs = build_docs(benchmark, control=control, **{"template": template, **model_args, **metadata})
            print(summary_line(task, docs))
    except (ValueError, OSError) as exc:  # every data and option error of the tasks is a ValueError
        print(f"check: error: {exc}", file=sys.stderr)
        return 2
    return 0
