"""Scoring request pairs with lm-eval's ``hf`` and with ``hf-prefix`` side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_eval_leakage.harness import docs as leak_docs


def requests(docs: list[dict]) -> list[tuple[str, str]]:
    return [(d["context"], block) for d in docs for block in leak_docs.doc_to_choice(d)]


def scores(model, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, list[bool]]:  # type: ignore[no-untyped-def]
    from lm_eval.api.instance import Instance

    answers = model.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)],
                                  disable_tqdm=True)
    return np.array([a[0] for a in answers]), [a[1] for a in answers]


def model_pair(path: Path, **kwargs):  # type: ignore[no-untyped-def]
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    base = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=kwargs.pop("base_batch_size", 8), **kwargs)
    fast = PrefixSharingHFLM(pretrained=model, tokenizer=tokenizer, **{"batch_size": 5, **kwargs})
    return base, fast
