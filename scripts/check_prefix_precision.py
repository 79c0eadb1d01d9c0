"""How far ``hf`` and ``hf-prefix``'s trie are from exact arithmetic, on the same leakage requests.

Usage (after the README's set-up): ``.venv/bin/python scripts/check_prefix_precision.py [--items 20]``.
Scores N real MMLU items (the offline copy, the sample of ``scripts/bench_prefix.py``) with
SmolLM2-135M (or ``--model DIR``) through ``hf`` at batch size 24 and 5 and through the trie, all in
float32, then through ``hf`` in float64, and prints each float32 backend's largest and mean
distance from the float64 scores and from ``hf`` at batch size 24. It says whether a difference
between the backends is rounding (of the size float32 itself makes) or a different computation.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="item sample seed")
    parser.add_argument("--model", default=None, help="model folder (default: the offline SmolLM2-135M)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_prefix import benchmark_requests

    assets = ensure_offline_assets(quiet=True)
    model_dir = args.model or str(assets.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    _, pairs = benchmark_requests("MMLU", args.items, args.seed, assets.mmlu_jsonl)
    scores: dict[str, np.ndarray] = {}
    for dtype in (torch.float32, torch.float64):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
        backends = {"hf, batch 24": HFLM(pretrained=model, tokenizer=tokenizer, batch_size=24)}
        if dtype == torch.float32:
            backends["hf, batch 5"] = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=5)
            backends["trie"] = PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8)
        for name, backend in backends.items():
            instances = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
            answers = backend.loglikelihood(instances, disable_tqdm=True)
            scores[f"{name}, {str(dtype).removeprefix('torch.')}"] = np.array([a[0] for a in answers])
    exact, reference = scores.pop("hf, batch 24, float64"), scores["hf, batch 24, float32"]
    print(f"{Path(model_dir).name}, {args.items} MMLU items, {len(pairs)} requests")
    for name, values in scores.items():
        off = np.abs(values - exact)
        print(f"  {name:>20}: from float64 max {off.max():.2e}, mean {off.mean():.2e}; "
              f"from hf batch 24 float32 max {np.abs(values - reference).max():.2e}")


if __name__ == "__main__":
    main()
