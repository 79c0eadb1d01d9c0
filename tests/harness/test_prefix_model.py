"""``--model hf-prefix`` gives lm-eval's ``hf`` figures while feeding each group's token trie once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from support.data import CUSTOM_RECORDS, write_jsonl
from support.scoring import model_pair, requests, scores

from lm_eval_leakage.harness import docs as leak_docs
from lm_eval_leakage.harness import trie_scorer
from lm_eval_leakage.harness.prefix_model import PrefixSharingHFLM, common_prefix_length
from lm_eval_leakage.harness.trie import build_trie

TOLERANCE = 2e-4  # summed log-probability, float32


def _pairs(tmp_path: Path) -> list[tuple[str, str]]:
    """Three- and five-option items (6 and 120 orderings), a lone context, and shared contexts whose
    continuations share tokens, diverge, or end where another goes on."""
    docs = leak_docs.build_docs("custom", data_files=str(write_jsonl(tmp_path / "c.jsonl", CUSTOM_RECORDS)))
    return requests(docs[:2]) + [
        ("A lone context", " with its answer"),
        ("Shared", " start of both, then one"),
        ("Shared", " start of both, then two"),
        ("Shared", " start"),
    ]


def _fast(tiny_model: Path, attention: str = "sdpa", **kwargs) -> PrefixSharingHFLM:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation=attention)
    return PrefixSharingHFLM(pretrained=model.eval(), tokenizer=AutoTokenizer.from_pretrained(tiny_model), **kwargs)


def _assert_same(got: tuple[np.ndarray, list[bool]], expected: tuple[np.ndarray, list[bool]]) -> None:
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=TOLERANCE)
    assert got[1] == expected[1]


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 2], [1, 2]]) == 0
    assert common_prefix_length([[4, 5, 6]]) == 3


def test_matches_hf_on_every_path(tiny_model: Path, tmp_path: Path) -> None:
    """The trie, a lone context, and requests too long for the window."""
    pairs = _pairs(tmp_path)
    base, fast = model_pair(tiny_model)
    expected = scores(base, pairs)
    _assert_same(scores(fast, pairs), expected)
    assert fast._trie_ok is True
    assert len(pairs) > 30 and np.ptp(expected[0]) > 1.0  # many requests, scores that differ
    for item in (slice(0, 6), slice(6, 126)):  # the same ordering comes out on top
        assert np.argmax(scores(fast, pairs[item])[0]) == np.argmax(expected[0][item])

    docs = leak_docs.build_docs("custom", data_files=str(write_jsonl(tmp_path / "c.jsonl", CUSTOM_RECORDS)))
    base, fast = model_pair(tiny_model, max_length=24)  # longer requests: lm-eval truncates from the left
    long_pairs = [(docs[0]["context"] * 3, block) for block in leak_docs.doc_to_choice(docs[0])[:6]]
    np.testing.assert_allclose(scores(fast, long_pairs)[0], scores(base, long_pairs)[0], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(("attention", "chunk", "batch_size"), [
    ("sdpa", 512, 64), ("sdpa", 7, 3), ("sdpa", 1, 1), ("eager", 512, 5), ("eager", 5, 4),
])
def test_trie_passes_of_any_shape_match_hf(
    tiny_model: Path, tmp_path: Path, attention: str, chunk: int, batch_size: int
) -> None:
    """Rows of one token to whole tries; several tries per row; eager attention takes an additive mask."""
    pairs = _pairs(tmp_path)
    base, _ = model_pair(tiny_model)
    fast = _fast(tiny_model, attention, batch_size=batch_size, trie_chunk=chunk)
    _assert_same(scores(fast, pairs), scores(base, pairs))
    assert fast._trie_ok is True


def test_passes_stay_within_the_batch_and_read_only_scored_positions(tiny_model: Path, tmp_path: Path) -> None:
    pairs = _pairs(tmp_path)[:126]  # the two items
    fast = _fast(tiny_model, batch_size=4, trie_chunk=16)
    assert fast._trie_ready()
    fed, heads = [], []
    fast.model.register_forward_pre_hook(lambda _m, _a, kw: fed.append(kw["input_ids"].shape), with_kwargs=True)
    fast.model.get_output_embeddings().register_forward_hook(lambda _m, a, _o: heads.append(a[0].shape[-2]))
    scores(fast, pairs)

    encoded = [fast._encode_pair(c, x) for c, x in pairs]
    assert all(rows <= 4 and width <= 16 for rows, width in fed)  # batch size: rows of trie_chunk tokens
    nodes = sum(len(build_trie([c + x[:-1] for c, x in encoded[a:b]])) for a, b in ((0, 6), (6, 126)))
    assert sum(rows * width for rows, width in fed) < 1.1 * nodes  # each node once, little padding
    scored = 0
    for a, b in ((0, 6), (6, 126)):
        trie = build_trie([c + x[:-1] for c, x in encoded[a:b]])
        scored += len({trie.paths[r][j] for r, (c, x) in enumerate(encoded[a:b])
                       for j in range(len(c) - 1, len(c) + len(x) - 1)})
    assert sum(heads) == scored  # the LM head runs where a request scores a token, nowhere else


def test_log_softmax_slices_change_nothing(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _pairs(tmp_path)
    fast = _fast(tiny_model, batch_size=8)
    whole = scores(fast, pairs)
    monkeypatch.setattr(trie_scorer, "SLICE_ELEMENTS", 1)  # one row at a time
    sliced = scores(fast, pairs)
    assert whole[1] == sliced[1]
    np.testing.assert_array_equal(whole[0], sliced[0])


def test_falls_back_to_the_common_prefix_and_says_so_once(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A model that does not reproduce hf's scores through the trie (here: the mask ignored)."""
    pairs = _pairs(tmp_path)
    base, fast = model_pair(tiny_model)
    forward = fast._trie_forward
    monkeypatch.setattr(fast, "_trie_forward",
                        lambda ids, positions, allowed, *rest: forward(ids, positions, allowed | True, *rest))
    with caplog.at_level(logging.INFO, logger="lm_eval_leakage"):
        got = scores(fast, pairs)
        scores(fast, pairs[:10])
    assert fast._trie_ok is False
    _assert_same(got, scores(base, pairs))
    notes = [r.getMessage() for r in caplog.records if "key/value cache" in r.getMessage()]
    assert len(notes) == 1 and "differ from hf's" in notes[0]
    assert sum("no other request shares" in r.getMessage() for r in caplog.records) == 1


def test_attention_without_a_mask_and_sliding_windows_use_the_common_prefix(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pairs = _pairs(tmp_path)
    base, _ = model_pair(tiny_model)
    expected = scores(base, pairs)
    fast = _fast(tiny_model, batch_size=5)
    fast.model.config._attn_implementation = "flash_attention_2"
    assert fast._trie_obstacle() is not None and "flash_attention_2" in fast._trie_obstacle()
    fast.model.config._attn_implementation = "sdpa"

    windowed = _fast(tiny_model, batch_size=5)
    windowed.model.config.sliding_window = 12  # Llama's attention ignores it; the routing does not
    windowed.model.config.layer_types = ["sliding_attention"] * 2
    with caplog.at_level(logging.INFO, logger="lm_eval_leakage"):
        _assert_same(scores(windowed, pairs), expected)
    assert windowed._trie_ok is True
    assert any("sliding window (12)" in r.getMessage() for r in caplog.records)


def test_request_cache_serves_the_second_run(tiny_model: Path, tmp_path: Path) -> None:
    """lm-eval's ``--use_cache``: answers are stored per request and read back without the model."""
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import CachingLM

    pairs = _pairs(tmp_path)
    fast = _fast(tiny_model, batch_size=5)
    cached = CachingLM(fast, str(tmp_path / "cache.db"))
    first = cached.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)])
    fast.model.forward = None  # any model call would now fail
    again = CachingLM(fast, str(tmp_path / "cache.db"))
    assert again.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)]) == first


def test_trie_chunk_must_be_positive(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="trie_chunk"):
        _fast(tiny_model, trie_chunk=0)
