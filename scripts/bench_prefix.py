"""Time lm-eval's ``hf`` model against ``hf-prefix`` on the same leakage requests, in one process.

Usage (after the README's set-up): ``.venv/bin/python scripts/bench_prefix.py [--items 10]``.
Scores real MMLU items (the offline copy) with SmolLM2-135M (or ``--model DIR``) through both
backends' ``loglikelihood``, alternating which goes first, and prints the seconds of each, their
ratio, the tokens each feeds the network, the largest score difference, and on how many items both
put the same ordering on top. Timing belongs here,
not in the tests: compare the ratio, which is what survives a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10, help="MMLU items (24 requests each)")
    parser.add_argument("--seed", type=int, default=1, help="item sample seed")
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per backend (order alternates)")
    parser.add_argument("--model", default=None, help="model folder (default: the offline SmolLM2-135M)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_leakage.harness import docs as leak_docs
    from lm_eval_leakage.validation.offline import ensure_offline_assets
    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM, common_prefix_length

    assets = ensure_offline_assets(quiet=True)
    model_dir = args.model or str(assets.model_dir)
    docs = leak_docs.build_docs("mmlu", data_files=str(assets.mmlu_jsonl), sample_items=args.items, sample_seed=args.seed)
    pairs = [(d["context"], block) for d in docs for block in leak_docs.doc_to_choice(d)]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    backends = {
        "hf": HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size),
        "hf-prefix": PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size),
    }

    full = shared = 0
    for d in docs:
        sequences = [sum(backends["hf"]._encode_pair(d["context"], block), []) for block in leak_docs.doc_to_choice(d)]
        p = min(common_prefix_length(sequences), min(map(len, sequences)) - 1)
        full += sum(len(s) - 1 for s in sequences)
        shared += p + sum(len(s) - 1 - p for s in sequences)

    seconds: dict[str, list[float]] = {name: [] for name in backends}
    scores: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        for name in (list(backends) if round_ % 2 == 0 else list(backends)[::-1]):
            requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
            start = time.perf_counter()
            answers = backends[name].loglikelihood(requests, disable_tqdm=True)
            seconds[name].append(time.perf_counter() - start)
            scores[name] = np.array([a[0] for a in answers])

    best = {name: min(values) for name, values in seconds.items()}
    print(f"{len(docs)} items, {len(pairs)} requests, batch size {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"tokens through the network: hf {full}, hf-prefix {shared} (ratio {full / shared:.2f})")
    for name, values in seconds.items():
        print(f"{name:>9}: " + ", ".join(f"{v:.1f} s" for v in values) + f" (best {best[name]:.1f} s)")
    print(f"speed-up (best of {args.rounds}): {best['hf'] / best['hf-prefix']:.2f}x")
    print(f"largest score difference: {np.abs(scores['hf'] - scores['hf-prefix']).max():.2e}")
    starts = np.cumsum([0] + [len(leak_docs.doc_to_choice(d)) for d in docs])
    same_top = sum(np.argmax(scores["hf"][a:b]) == np.argmax(scores["hf-prefix"][a:b]) for a, b in zip(starts, starts[1:]))
    print(f"items whose top ordering agrees: {same_top} of {len(docs)}")


if __name__ == "__main__":
    main()
