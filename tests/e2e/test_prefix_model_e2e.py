"""``--model hf-prefix`` against ``hf`` on the real offline model and through the lm_eval CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from support.data import CUSTOM_RECORDS, write_jsonl

from support.scoring import model_pair, requests, scores

from lm_eval_leakage.harness import docs as leak_docs


def test_matches_hf_on_smollm2_and_mmlu() -> None:
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    assets = ensure_offline_assets(quiet=True)
    docs = leak_docs.build_docs("mmlu", data_files=str(assets.mmlu_jsonl), sample_items=2, sample_seed=3)
    base, fast = model_pair(assets.model_dir, base_batch_size=24)
    pairs = requests(docs)
    expected, expected_greedy = scores(base, pairs)
    got, greedy = scores(fast, pairs)
    # Same tokens and positions, different summation order: float32 noise only.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    assert greedy == expected_greedy
    for item in range(len(docs)):  # the same ordering comes out on top
        rows = slice(24 * item, 24 * item + 24)
        assert np.argmax(got[rows]) == np.argmax(expected[rows])


def test_lm_eval_runs_hf_prefix_by_name(tiny_model: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "custom.jsonl", CUSTOM_RECORDS)
    rows = {}
    for model in ("hf", "hf-prefix"):
        out = tmp_path / model
        proc = subprocess.run(
            [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", f"pretrained={tiny_model}",
             "--tasks", "leak_custom", "--device", "cpu", "--batch_size", "4",
             "--metadata", json.dumps({"data_files": str(data), "reference_rule": False}),
             "--output_path", str(out), "--log_samples"],
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        (samples,) = out.glob("*/samples_leak_custom_*.jsonl")
        rows[model] = [json.loads(line) for line in samples.read_text().splitlines()]
    for plain, shared in zip(rows["hf"], rows["hf-prefix"], strict=True):
        np.testing.assert_allclose([float(r[0]) for r in shared["filtered_resps"]],
                                   [float(r[0]) for r in plain["filtered_resps"]], rtol=0, atol=1e-4)
        same, base = shared["leak_a"]["stats"], plain["leak_a"]["stats"]  # each column carries the item's record
        assert same["original_first"] == base["original_first"] and same["rank"] == base["rank"]
