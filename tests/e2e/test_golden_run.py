"""The golden lm-eval run, repeated: lm-eval prints exactly the figures recorded in tests/data/golden.

The tiny model is rebuilt from its seed and ``lm_eval`` runs the four golden tasks on the golden
items (``tests/support/make_golden.py``); every ``leak_*`` column of the new results file must
equal the recorded one, and every ordering score the recorded score.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.make_golden import GOLDEN, TASKS, environment, run_lm_eval
from support.tiny_model import build_tiny_model


def _results(folder: Path) -> dict:
    (path,) = folder.rglob("results_*.json")
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def _scores(folder: Path, task: str) -> dict[str, list[str]]:
    (path,) = [p for p in folder.rglob("samples_*.jsonl") if p.name.startswith(f"samples_{task}_2")]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {row["doc"]["id"]: [r[0] for r in row["filtered_resps"]] for row in rows}


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("golden_again")
    run_lm_eval(build_tiny_model(work / "tiny"), work / "out", environment(work))
    return work / "out"


@pytest.mark.parametrize("task", TASKS)
def test_results_equal_the_golden_run(fresh_run: Path, task: str) -> None:
    golden = GOLDEN / "run" / "tiny"
    assert _scores(fresh_run, task) == _scores(golden, task)
    got, want = _results(fresh_run)[task], _results(golden)[task]
    columns = {k for k in want if k.endswith(",none")}
    assert {k for k in got if k.endswith(",none")} == columns
    for key in sorted(columns):
        if isinstance(want[key], float) and math.isnan(want[key]):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == want[key], f"{task} {key}: {got[key]!r} != golden {want[key]!r}"
