"""End to end on the real offline model (SmolLM2-135M, the offline default of ``validation.offline``) and real MMLU items.

Parity: lm-eval's loglikelihood(context, option block) must give every ordering the same score
relative to the original as a straightforward direct computation (one full-text forward pass per
ordering, summed log-probabilities of the tokens that carry the option block).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lm_eval_leakage.validation.offline import ensure_offline_assets

pytestmark = pytest.mark.slow
N_ITEMS = 20


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    assets = ensure_offline_assets(quiet=True)
    out = tmp_path_factory.mktemp("smollm2_run")
    metadata = json.dumps(
        {"data_files": str(assets.mmlu_jsonl), "sample_items": N_ITEMS, "sample_seed": 0, "reference_rule": False}
    )
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={assets.model_dir},dtype=float32",
        "--tasks", "leak_mmlu", "--metadata", metadata, "--device", "cpu", "--batch_size", "24",
        "--output_path", str(out), "--log_samples",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leak_a" in proc.stdout and "orig_rank" in proc.stdout
    (samples_file,) = glob.glob(str(out / "*" / "samples_leak_mmlu_*.jsonl"))
    samples = [json.loads(line) for line in Path(samples_file).read_text().splitlines()]
    return assets.model_dir, samples


@pytest.fixture(scope="module")
def direct_model(smollm2_run: tuple[Path, list[dict]]):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, _ = smollm2_run
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def direct_scores(tokenizer, model, context: str, blocks: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Sum of log p(token) over the tokens that hold option-block characters, full text per ordering.

    Each ordering's full text is encoded on its own (no context/continuation split); the texts of
    one item go through the model as one right-padded batch, which does not change causal logits.
    """
    import torch

    encoded = [tokenizer(context + block, return_offsets_mapping=True, add_special_tokens=False) for block in blocks]
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.zeros((len(blocks), width), dtype=torch.long)
    mask = torch.zeros((len(blocks), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[row, : len(e["input_ids"])] = 1
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.double(), dim=-1)
    scores = []
    for row, e in enumerate(encoded):
        total = 0.0
        for position, (_, end) in enumerate(e["offset_mapping"]):
            if position > 0 and end > len(context):
                total += float(logprobs[row, position - 1, e["input_ids"][position]])
        scores.append(total)
    return np.array(scores)


def test_real_model_run_reports_all_items(smollm2_run: tuple[Path, list[dict]]) -> None:
    _, samples = smollm2_run
    assert len(samples) == N_ITEMS
    assert all(len(s["filtered_resps"]) == 24 and s["n_excluded"]["stats"]["status"] == "ok" for s in samples)


def test_parity_with_direct_full_text_computation(smollm2_run: tuple[Path, list[dict]], direct_model) -> None:  # type: ignore[no-untyped-def]
    from lm_eval_leakage.harness.docs import doc_to_choice

    _, samples = smollm2_run
    tokenizer, model = direct_model
    worst = 0.0
    for sample in samples:
        harness = np.array([float(r[0]) for r in sample["filtered_resps"]])
        direct = direct_scores(tokenizer, model, sample["doc"]["context"], doc_to_choice(sample["doc"]))
        difference = np.abs((harness - harness[0]) - (direct - direct[0]))
        worst = max(worst, float(difference.max()))
        # Rankings agree except between orderings closer than the tolerance.
        close = np.abs(direct[:, None] - direct[None, :]) <= 1e-3
        agree = np.sign(harness[:, None] - harness[None, :]) == np.sign(direct[:, None] - direct[None, :])
        assert np.all(agree | close)
    assert worst < 1e-3, f"largest relative-score difference {worst:.2e}"
