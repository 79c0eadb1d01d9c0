"""Task options: bad values and misspelt keys stop with the key named; the rest parse to typed values.

The cases are data (``tests/data/bad_input/task_options.json``): each gives the metadata lm-eval
would pass and either the error it must raise (a fragment of the message) or the parsed values.
"""

from __future__ import annotations

import json
import logging

import pytest
from support.data import DATA, MMLU_RECORDS, write_jsonl

from lm_eval_leakage.harness.docs import build_docs
from lm_eval_leakage.harness.options import OPTIONS, TaskOptionError, parse_options

CASES = json.loads((DATA / "bad_input" / "task_options.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_task_option_case(case: dict, caplog: pytest.LogCaptureFixture) -> None:
    if "error" in case:
        with pytest.raises(TaskOptionError) as raised:
            parse_options("leak_mmlu", case["metadata"])
        assert case["error"] in str(raised.value) and str(raised.value).startswith("leak_mmlu: ")
        return
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        parsed = parse_options("leak_mmlu", case["metadata"])
    assert {k: parsed[k] for k in case["parsed"]} == case["parsed"]
    if "warning" in case:
        warnings = [r.getMessage() for r in caplog.records]
        assert (case["warning"] is None and not warnings) or any(case["warning"] in w for w in warnings)


def test_defaults_cover_every_option() -> None:
    assert parse_options("leak_mmlu", {}) == {o.name: o.default for o in OPTIONS}


def test_a_bad_option_stops_before_any_item_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)
    with pytest.raises(TaskOptionError, match="did you mean 'sample_items'"):
        build_docs("mmlu", data_files=str(data), sample_item=2)
    assert len(build_docs("mmlu", data_files=str(data), sample_items="2")) == 2
