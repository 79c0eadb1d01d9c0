"""The harness reproduces, from the logged samples of a golden lm-eval run, exactly the figures lm-eval printed.

``tests/data/golden/run`` was written by ``lm_eval --log_samples`` (``tests/support/make_golden.py``)
with an earlier implementation of the figures. Each sample's document and ordering scores go
through ``process_results`` and the registered aggregations exactly as lm-eval calls them; every
column must equal the results file's value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.data import DATA

from lm_eval_leakage.harness import metrics
from lm_eval_leakage.harness.columns import columns

RUN = DATA / "golden" / "run" / "tiny"
TASKS = ("leak_mmlu", "leak_mmlu_control", "leak_cmb", "leak_custom")


def _samples(task: str) -> list[dict]:
    (path,) = [p for p in RUN.glob("samples_*.jsonl") if p.name.startswith(f"samples_{task}_2")]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _logged(task: str) -> dict[str, float]:
    (path,) = RUN.glob("results_*.json")
    values = json.loads(path.read_text(encoding="utf-8"))["results"][task]
    return {key.split(",")[0]: value for key, value in values.items() if key.endswith(",none")}


@pytest.mark.parametrize("task", TASKS)
def test_every_column_equals_the_golden_results(task: str) -> None:
    per_column: dict[str, list] = {}
    for sample in _samples(task):
        results = [(float(r[0]), r[1] == "True") for r in sample["filtered_resps"]]
        for name, value in metrics.process_results(sample["doc"], results).items():
            per_column.setdefault(name, []).append(value)
    logged = _logged(task)
    expected = {c.name for c in columns(control=task.endswith("_control"))}
    assert set(per_column) == expected
    assert expected <= set(logged)
    for name, values in per_column.items():
        got, want = metrics.AGGREGATIONS[name](values), logged[name]
        if isinstance(want, str) or (isinstance(want, float) and math.isnan(want)):
            assert math.isnan(got), name
        else:
            assert got == want, f"{task} {name}: {got!r} != golden {want!r}"


def test_golden_run_covers_what_it_should() -> None:
    docs = [s["doc"] for task in TASKS for s in _samples(task)]
    assert any(not d["exchangeable"] for d in docs)  # the guard
    assert {len(d["perms"]) for d in docs} >= {6, 24, 120}
    assert {d["role"] for d in docs} == {"observed", "control"}
    assert Path(RUN).is_dir()
