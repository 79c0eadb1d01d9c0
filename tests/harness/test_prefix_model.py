"""``--model hf-prefix`` gives lm-eval's ``hf`` figures while running each shared prefix once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.data import CUSTOM_RECORDS, write_jsonl

from lm_eval_leakage.harness import glue
from lm_eval_leakage.harness.prefix_model import common_prefix_length


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 2], [1, 2]]) == 0
    assert common_prefix_length([[4, 5, 6]]) == 3


def _requests(docs: list[dict]) -> list[tuple[str, str]]:
    return [(d["context"], block) for d in docs for block in glue.doc_to_choice(d)]


def _scores(model, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, list[bool]]:  # type: ignore[no-untyped-def]
    from lm_eval.api.instance import Instance

    answers = model.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)],
                                  disable_tqdm=True)
    return np.array([a[0] for a in answers]), [a[1] for a in answers]


def _pair(path: Path, **kwargs):  # type: ignore[no-untyped-def]
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    base = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=kwargs.pop("base_batch_size", 8), **kwargs)
    fast = PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, **{"batch_size": 5, **kwargs})
    return base, fast


def test_matches_hf_on_every_path(tiny_model: Path, tmp_path: Path) -> None:
    """Groups split into batches of 5, a lone context, a shared prefix that runs into the
    continuations, a continuation that is all prefix, and requests too long for the window."""
    docs = glue.build_docs("custom", data_files=str(write_jsonl(tmp_path / "c.jsonl", CUSTOM_RECORDS)))
    pairs = _requests(docs[:2]) + [
        ("A lone context", " with its answer"),
        ("Shared", " start of both, then one"),
        ("Shared", " start of both, then two"),
        ("Shared", " start"),
    ]
    base, fast = _pair(tiny_model)
    expected, expected_greedy = _scores(base, pairs)
    got, greedy = _scores(fast, pairs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert greedy == expected_greedy
    assert len(pairs) > 30 and np.ptp(expected) > 1.0  # many requests, scores that differ

    base, fast = _pair(tiny_model, max_length=24)  # longer requests: lm-eval truncates from the left
    long_pairs = [(docs[0]["context"] * 3, block) for block in glue.doc_to_choice(docs[0])[:6]]
    np.testing.assert_allclose(_scores(fast, long_pairs)[0], _scores(base, long_pairs)[0], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_matches_hf_on_smollm2_and_mmlu() -> None:
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    assets = ensure_offline_assets(quiet=True)
    docs = glue.build_docs("mmlu", data_files=str(assets.mmlu_jsonl), sample_items=2, sample_seed=3)
    base, fast = _pair(assets.model_dir, base_batch_size=24)
    pairs = _requests(docs)
    expected, expected_greedy = _scores(base, pairs)
    got, greedy = _scores(fast, pairs)
    # Same tokens and positions, different summation order: float32 noise only.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    assert greedy == expected_greedy
    for item in range(len(docs)):  # the same ordering comes out on top
        rows = slice(24 * item, 24 * item + 24)
        assert np.argmax(got[rows]) == np.argmax(expected[rows])


@pytest.mark.slow
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
        assert shared["leak_a"] == plain["leak_a"] and shared["orig_rank"] == plain["orig_rank"]
