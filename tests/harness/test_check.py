"""``python -m lm_eval_leakage check`` finds data and option errors with no model, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.data import MMLU_RECORDS, write_jsonl

from lm_eval_leakage.__main__ import main


def test_check_prints_what_a_run_would_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)
    code = main(["check", "--tasks", "leak_mmlu,leak_mmlu_control",
                 "--metadata", json.dumps({"data_files": str(data), "reference_rule": False})])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("leak_mmlu: 3 item(s), 0 control item(s), 72 requests")
    assert out[1].startswith("leak_mmlu_control: 3 item(s)")


@pytest.mark.parametrize(("records", "metadata", "expected"), [
    ([MMLU_RECORDS[0], {"question": "Q", "choices": ["only"]}], {}, "mmlu.jsonl:2]: item '1': field 'choices[0]'"),
    (MMLU_RECORDS, {"sample_item": 2}, "did you mean 'sample_items'"),
    (MMLU_RECORDS, {"reference_rule": "on"}, "'reference_rule' = 'on': expected true or false"),
])
def test_check_stops_with_the_error_a_run_would_stop_with(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          records: list, metadata: dict, expected: str) -> None:
    data = write_jsonl(tmp_path / "mmlu.jsonl", records)
    code = main(["check", "--tasks", "leak_mmlu", "--metadata", json.dumps({"data_files": str(data), **metadata})])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("check: error: leak_mmlu") and expected in err[-1]


def test_check_names_an_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--tasks", "leak_nosuch"]) == 2
    assert "unknown task 'leak_nosuch'" in capsys.readouterr().err
