"""A run with an item whose option block is longer than the model's window finishes and counts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import write_jsonl

RECORDS = [
    {"id": "fine", "question": "Which one?", "options": ["red", "blue", "green"]},
    {"id": "long_option", "question": "Which one?", "options": ["word " * 600, "blue", "green"]},
    {"id": "also_fine", "question": "Pick one.", "options": ["cat", "dog", "cow"]},
]


@pytest.mark.parametrize("backend", ["hf", "hf-prefix"])
def test_an_over_length_item_is_left_out_and_the_run_goes_on(tiny_model: Path, tmp_path: Path, backend: str) -> None:
    data = write_jsonl(tmp_path / "items.jsonl", RECORDS)
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", backend, "--model_args", f"pretrained={tiny_model}",
         "--tasks", "leak_custom", "--device", "cpu", "--batch_size", "8",
         "--metadata", json.dumps({"data_files": str(data), "reference_rule": False}),
         "--output_path", str(tmp_path / "out"), "--log_samples"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 of 3 item(s) do not fit the model's window" in proc.stderr
    (results,) = (tmp_path / "out").rglob("results_*.json")
    row = json.loads(results.read_text())["results"]["leak_custom"]
    assert row["n_excluded,none"] == 1 and 0.0 <= row["orig_rank,none"] <= 1.0
