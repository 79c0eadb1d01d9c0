"""``--model hf-prefix`` against ``hf`` on the real offline model and through the lm_eval CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.data import CMB_EXAMPLE, CUSTOM_RECORDS, write_jsonl
from support.scoring import model_pair, requests, scores

from lm_eval_leakage.harness import docs as leak_docs

TOLERANCE = 2e-4  # summed log-probability: float32 noise only (same tokens, positions and attention)


def _compare(base, fast, docs: list[dict]) -> None:  # type: ignore[no-untyped-def]
    pairs = requests(docs)
    expected, expected_greedy = scores(base, pairs)
    got, greedy = scores(fast, pairs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    assert greedy == expected_greedy
    start = 0
    for doc in docs:  # the same ordering comes out on top
        rows = slice(start, start + len(doc["perms"]))
        assert np.argmax(got[rows]) == np.argmax(expected[rows])
        start = rows.stop


@pytest.mark.parametrize("trie", [True, False], ids=["trie", "common-prefix"])
def test_matches_hf_on_smollm2_and_mmlu(trie: bool) -> None:
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    assets = ensure_offline_assets(quiet=True)
    docs = leak_docs.build_docs("mmlu", data_files=str(assets.mmlu_jsonl), sample_items=3, sample_seed=3)
    base, fast = model_pair(assets.model_dir, base_batch_size=24)
    fast._use_trie = trie
    _compare(base, fast, docs)
    assert fast._trie_ok is (True if trie else None)


def test_matches_hf_on_smollm2_and_a_five_option_cmb_item() -> None:
    """120 orderings of one item; small passes, so its trie is fed in several, on cached ancestors."""
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    assets = ensure_offline_assets(quiet=True)
    docs = [d for d in leak_docs.build_docs("cmb", data_files=str(CMB_EXAMPLE)) if len(d["options"]) == 5][:1]
    base, fast = model_pair(assets.model_dir, base_batch_size=24)
    fast.trie_chunk = 256
    _compare(base, fast, docs)
    assert fast._trie_ok is True


def _run(model: str, tiny_model: Path, data: Path, out: Path, *extra: str) -> tuple[list[dict], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", f"pretrained={tiny_model}",
         "--tasks", "leak_custom", "--device", "cpu", "--batch_size", "4",
         "--metadata", json.dumps({"data_files": str(data), "reference_rule": False}),
         "--output_path", str(out), "--log_samples", *extra],
        check=False, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (samples,) = out.glob("*/samples_leak_custom_*.jsonl")
    return [json.loads(line) for line in samples.read_text().splitlines()], proc.stderr


def test_lm_eval_runs_hf_prefix_by_name_and_with_its_request_cache(tiny_model: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "custom.jsonl", CUSTOM_RECORDS)
    plain, _ = _run("hf", tiny_model, data, tmp_path / "hf")
    cache = tmp_path / "cache" / "requests"
    for run in ("first", "again"):  # the second run reads every answer from lm-eval's request cache
        shared, log = _run("hf-prefix", tiny_model, data, tmp_path / run, "--use_cache", str(cache))
        assert list(tmp_path.glob("cache/requests*"))
        assert ("Requests remaining: 0" in log) is (run == "again")
        for one, base in zip(shared, plain, strict=True):
            np.testing.assert_allclose([float(r[0]) for r in one["filtered_resps"]],
                                       [float(r[0]) for r in base["filtered_resps"]], rtol=0, atol=1e-4)
            same, ref = one["leak_a"]["stats"], base["leak_a"]["stats"]  # each column carries the item's record
            assert same["original_first"] == ref["original_first"] and same["rank"] == ref["rank"]
