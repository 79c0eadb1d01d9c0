"""Time lm-eval's ``hf`` model against ``hf-prefix`` on the same leakage requests, in one process.

Usage (after the README's set-up): ``.venv/bin/python scripts/bench_prefix.py [--items 10]
[--cmb-items N]``. Scores N real MMLU items (the offline copy, 24 orderings each) and N five-option CMB items
(``tests/data/cmb_example.json``, 120 orderings each; a seeded sample) with SmolLM2-135M (or
``--model DIR``) through three backends' ``loglikelihood``: ``hf`` (batches of ``--batch-size``
requests), ``hf-prefix``'s earlier method (the common prefix once on the key/value cache, each
remainder on a copy of it, ``--batch-size`` remainders at once; kept as a private mode of the
class) and ``hf-prefix``'s token trie (passes of ``--trie-batch-size`` rows). Each backend gets
all of a benchmark's requests in one call; the order of the backends rotates between benchmarks
and rounds. Printed per benchmark and backend: the tokens fed to the network (a forward hook
counts ``input_ids``, padding included) against the minimum, the tries' node count; seconds per
item (best round) and the ratio to ``hf``; the peak resident memory above the starting point of
the call (a thread reads ``VmRSS`` every 5 ms; ``gc.collect`` and ``malloc_trim`` first), which
is what the call itself allocates (logits, activations, caches) on top of the model; and how far
the scores are from ``hf``'s. The last line is the trie's speed-up over ``hf`` on MMLU. Timing
belongs here, not in the tests: compare the ratios, which are what survive a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import itertools
import os
import threading
import time
from pathlib import Path

import numpy as np

BACKENDS = ("hf", "prefix", "trie")
LABELS = {"hf": "hf", "prefix": "hf-prefix, common prefix", "trie": "hf-prefix, trie"}


def rss_bytes() -> int:
    """This process's resident set size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(call):  # type: ignore[no-untyped-def]
    """``(result, seconds, peak RSS above the start)`` of ``call()``."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    start_rss = peak = rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return result, seconds, max(peak, rss_bytes()) - start_rss


def benchmark_requests(name: str, items: int, seed: int, mmlu_jsonl: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """The documents and (context, continuation) pairs of ``items`` MMLU or five-option CMB items."""
    from lm_eval_leakage.harness import docs as leak_docs

    if name == "MMLU":
        docs = leak_docs.build_docs("mmlu", data_files=str(mmlu_jsonl), sample_items=items, sample_seed=seed)
    else:
        cmb = Path(__file__).resolve().parents[1] / "tests" / "data" / "cmb_example.json"
        docs = [d for d in leak_docs.build_docs("cmb", data_files=str(cmb)) if len(d["options"]) == 5]
        keep = np.sort(np.random.default_rng(seed).choice(len(docs), min(items, len(docs)), replace=False))
        docs = [docs[i] for i in keep]
    return docs, [(d["context"], block) for d in docs for block in leak_docs.doc_to_choice(d)]


def main() -> None:  # long: a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10, help="items per benchmark (MMLU: 24 requests, CMB: 120)")
    parser.add_argument("--cmb-items", type=int, default=None, help="CMB items (default: --items)")
    parser.add_argument("--seed", type=int, default=1, help="item sample seed")
    parser.add_argument("--batch-size", type=int, default=24, help="requests per batch (hf, common prefix)")
    parser.add_argument("--trie-batch-size", type=int, default=8, help="rows per pass of the trie")
    parser.add_argument("--trie-chunk", type=int, default=None, help="tokens per row of the trie (default: the model's)")
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds per backend (order rotates)")
    parser.add_argument("--model", default=None, help="model folder (default: the offline SmolLM2-135M)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM
    from lm_eval_leakage.harness.trie import build_trie
    from lm_eval_leakage.validation.offline import ensure_offline_assets

    assets = ensure_offline_assets(quiet=True)
    model_dir = args.model or str(assets.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    backends = {
        "hf": HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size),
        "prefix": PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size),
        "trie": PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.trie_batch_size,
                                  **({"trie_chunk": args.trie_chunk} if args.trie_chunk else {})),
    }
    backends["prefix"]._use_trie = False
    assert backends["trie"]._trie_ready()  # its one-off check pass runs here, outside the timing
    fed = [0]
    model.register_forward_pre_hook(
        lambda _m, a, kw: fed.__setitem__(0, fed[0] + (kw.get("input_ids") if "input_ids" in kw else a[0]).numel()),
        with_kwargs=True,
    )

    load = os.getloadavg()[0]
    print(f"{Path(model_dir).name} float32 on CPU, {torch.get_num_threads()} threads, load average {load:.2f} "
          f"at start; batch size {args.batch_size}, trie passes of {args.trie_batch_size} rows x "
          f"{backends['trie'].trie_chunk} tokens")
    speedups = {}
    for b_index, name in enumerate(("MMLU", "CMB")):
        count = args.cmb_items if name == "CMB" and args.cmb_items is not None else args.items
        docs, pairs = benchmark_requests(name, count, args.seed, assets.mmlu_jsonl)
        encoded = [c + x for c, x in (backends["hf"]._encode_pair(*pair) for pair in pairs)]
        starts = np.cumsum([0] + [len(d["perms"]) for d in docs])
        minimum = sum(len(build_trie([s[:-1] for s in encoded[a:b]])) for a, b in itertools.pairwise(starts))
        seconds = {k: [] for k in BACKENDS}
        peaks = {k: 0 for k in BACKENDS}
        tokens, scores, greedy = {}, {}, {}
        for round_ in range(args.rounds):
            shift = (b_index + round_) % len(BACKENDS)
            for key in BACKENDS[shift:] + BACKENDS[:shift]:
                instances = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
                fed[0] = 0
                run = functools.partial(backends[key].loglikelihood, instances, disable_tqdm=True)
                answers, took, peak = measure(run)
                seconds[key].append(took / len(docs))
                peaks[key] = max(peaks[key], peak)
                tokens[key] = fed[0]
                scores[key] = np.array([a[0] for a in answers])
                greedy[key] = [a[1] for a in answers]
        print(f"{name}: {len(docs)} items, {len(pairs)} requests; tokens fed to the network "
              f"(minimum, the trie's nodes: {minimum})")
        for key in BACKENDS:
            same_top = sum(np.argmax(scores[key][a:b]) == np.argmax(scores["hf"][a:b]) for a, b in itertools.pairwise(starts))
            print(f"  {LABELS[key]:>24}: {tokens[key]:>7} tokens ({tokens[key] / minimum:.2f}x min), "
                  + ", ".join(f"{s:.2f}" for s in seconds[key]) + f" s/item (best {min(seconds[key]):.2f}, "
                  f"{min(seconds['hf']) / min(seconds[key]):.2f}x hf), peak RSS +{peaks[key] / 2**20:.0f} MiB, "
                  f"max |score - hf| {np.abs(scores[key] - scores['hf']).max():.1e}, "
                  f"top ordering as hf {same_top}/{len(docs)}, is_greedy as hf {greedy[key] == greedy['hf']}")
        speedups[name] = min(seconds["hf"]) / min(seconds["trie"])
    print(f"speed-up over hf: {speedups['MMLU']:.2f}x")


if __name__ == "__main__":
    main()
