"""Controlled-contamination validation end to end, on real models (slow).

The quick configuration on the real offline model (SmolLM2-135M, real MMLU items): fine-tune on
4 items, score 8 through lm-eval, and check that training moved the leaked items' original
ordering up and the clean items' not. A tiny random model checks the resume plumbing, and the
real offline assets are checked as fetched from their PyPI packages.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.data import fake_records

from lm_eval_leakage.core.templates import render
from lm_eval_leakage.validation import offline
from lm_eval_leakage.validation.config import quick_config
from lm_eval_leakage.validation.detectors import detectors
from lm_eval_leakage.validation.offline import MMLU_EXPECTED_ROWS, ensure_offline_assets

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_configuration_end_to_end(tmp_path: Path) -> None:
    from lm_eval_leakage.validation.experiment import run_validation

    report = run_validation(quick_config(tmp_path, keep_checkpoints=False))

    for name in ("items.jsonl", "split.json", "run.json", "validation.json", "validation.md", "roc.png"):
        assert (tmp_path / name).is_file(), name
    assert set(report["epochs"]) == {"0", "1"}
    for epoch in report["epochs"].values():
        assert set(epoch["detectors"]) == {d.name for d in detectors()}
        for m in epoch["detectors"].values():
            assert m["n_leaked"] + m["n_clean"] <= 8
    assert "lm_eval --model hf" in report["lm_eval_commands"]["1"]
    assert not (tmp_path / "checkpoints" / "epoch_1").exists()
    scores = json.loads((tmp_path / "scores" / "epoch_1.json").read_text())["items"]
    assert len(scores) == 8 and all(len(it["scores"]) == 24 for it in scores)

    # What the leaked items were trained on is what the detection task scored.
    split = json.loads((tmp_path / "split.json").read_text())
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    leaked = [it for it in items if split["roles"][it["id"]] == "leaked"]
    context, block = render(leaked[0]["question"], leaked[0]["choices"], template="reference")
    assert context + block in split["training_texts"]

    # The real assertion: one epoch moved the leaked items' original ordering up, not the clean ones'.
    before, after = report["epochs"]["0"]["sanity"], report["epochs"]["1"]["sanity"]
    gain_leaked = after["leaked_mean_z"] - before["leaked_mean_z"]
    gain_clean = after["clean_mean_z"] - before["clean_mean_z"]
    assert after["leaked_mean_z"] > after["clean_mean_z"] + 0.5, (before, after)
    assert gain_leaked > gain_clean + 0.5, (before, after)
    assert after["leaked_mean_rank"] < after["clean_mean_rank"], (before, after)
    assert report["epochs"]["1"]["detectors"]["orig_z"]["roc_auc"] >= 0.75


def test_tiny_model_run_resumes_where_it_stopped(tiny_model: Path, tmp_path: Path) -> None:
    """Plumbing on a tiny random model: checkpoints hold the optimiser, and --resume skips work."""
    from support.data import write_jsonl

    from lm_eval_leakage.validation.experiment import run_validation

    data = write_jsonl(tmp_path / "mmlu.jsonl", fake_records(12))
    out = tmp_path / "run"
    common = {"model_dir": str(tiny_model), "data_files": str(data), "n_items": 4, "max_length": 400}
    first = run_validation(quick_config(out, epochs=(1,), **common))
    assert set(first["epochs"]) == {"0", "1"}
    assert (out / "checkpoints" / "epoch_1" / "optimizer.pt").is_file()
    stamp = (out / "scores" / "epoch_1.json").stat().st_mtime_ns

    with pytest.raises(ValueError, match="different configuration"):
        run_validation(quick_config(out, epochs=(1, 2), learning_rate=1e-4, **common), resume=True)

    # Same configuration, resumed: nothing is scored or trained again.
    again = run_validation(quick_config(out, epochs=(1,), **common), resume=True)
    assert (out / "scores" / "epoch_1.json").stat().st_mtime_ns == stamp
    assert again["sessions"] == 2 and again["epochs"].keys() == first["epochs"].keys()


def _real_cache_dir() -> Path:
    return Path(os.environ.get(offline.CACHE_ENV_VAR, REPO_ROOT / ".cache" / "offline"))


def test_real_offline_assets() -> None:
    assets = ensure_offline_assets(_real_cache_dir(), quiet=True)

    rows = [
        json.loads(line)
        for line in assets.mmlu_jsonl.read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) == MMLU_EXPECTED_ROWS
    for row in rows:
        assert set(row) == {"question", "subject", "choices", "answer"}
        assert isinstance(row["question"], str)
        assert isinstance(row["subject"], str)
        assert " " not in row["subject"]
        assert isinstance(row["choices"], list)
        assert len(row["choices"]) == 4
        assert all(isinstance(choice, str) for choice in row["choices"])
        assert row["answer"] in (0, 1, 2, 3)
    assert len({row["subject"] for row in rows}) == 57
    assert rows[0]["subject"] == "abstract_algebra"

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.model_dir)
    model = AutoModelForCausalLM.from_pretrained(assets.model_dir)
    assert model.config.model_type == "llama"
    assert model.dtype == torch.float32
    assert getattr(model.config, "quantization_config", None) is None

    ids = tokenizer("The capital of France is")["input_ids"]
    assert ids[0] != tokenizer.bos_token_id  # no BOS is prepended
    assert ids == tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), 49152)
    assert torch.isfinite(logits).all()
