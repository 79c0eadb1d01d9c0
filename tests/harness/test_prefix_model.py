"""``--model hf-prefix`` gives lm-eval's ``hf`` figures while running each shared prefix once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.data import CUSTOM_RECORDS, write_jsonl
from support.scoring import model_pair, requests, scores

from lm_eval_leakage.harness import docs as leak_docs
from lm_eval_leakage.harness.prefix_model import common_prefix_length


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 2], [1, 2]]) == 0
    assert common_prefix_length([[4, 5, 6]]) == 3


def test_matches_hf_on_every_path(tiny_model: Path, tmp_path: Path) -> None:
    """Groups split into batches of 5, a lone context, a shared prefix that runs into the
    continuations, a continuation that is all prefix, and requests too long for the window."""
    docs = leak_docs.build_docs("custom", data_files=str(write_jsonl(tmp_path / "c.jsonl", CUSTOM_RECORDS)))
    pairs = requests(docs[:2]) + [
        ("A lone context", " with its answer"),
        ("Shared", " start of both, then one"),
        ("Shared", " start of both, then two"),
        ("Shared", " start"),
    ]
    base, fast = model_pair(tiny_model)
    expected, expected_greedy = scores(base, pairs)
    got, greedy = scores(fast, pairs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert greedy == expected_greedy
    assert len(pairs) > 30 and np.ptp(expected) > 1.0  # many requests, scores that differ

    base, fast = model_pair(tiny_model, max_length=24)  # longer requests: lm-eval truncates from the left
    long_pairs = [(docs[0]["context"] * 3, block) for block in leak_docs.doc_to_choice(docs[0])[:6]]
    np.testing.assert_allclose(scores(fast, long_pairs)[0], scores(base, long_pairs)[0], rtol=0, atol=1e-4)
