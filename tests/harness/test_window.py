"""Items that do not fit the model's window are left out with their reason, before any request is sent."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from support.data import write_jsonl

from lm_eval_leakage.harness.docs import PLACEHOLDER_REQUEST, build_docs, doc_to_choice
from lm_eval_leakage.harness.metrics import AGGREGATIONS, process_results
from lm_eval_leakage.harness.window import ContextWindow


class WordTokenizer:
    """One token per space-separated word (enough to test the arithmetic)."""

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        return {"input_ids": [[0] * len(text.split()) for text in texts]}


def test_window_arithmetic() -> None:
    window = ContextWindow(WordTokenizer(), max_length=10)
    assert window.problem("q q q\n", ["a b", "c d"]) == ""
    assert "an option block is 11 tokens" in window.problem("q\n", ["a " * 11, "b"])
    # Too long together, but every ordering's block has the same length: the same question is kept.
    assert window.problem("q " * 9 + "\n", ["a b c", "c b a"]) == ""
    assert "truncating the question would differ" in window.problem("q " * 9 + "\n", ["a b c", "a b"])


@pytest.fixture
def long_items(tmp_path: Path) -> Path:
    records = [
        {"id": "fine", "question": "Which one?", "options": ["red", "blue", "green"]},
        {"id": "long_option", "question": "Which one?", "options": ["word " * 600, "blue", "green"]},
        {"id": "long_question", "question": "why " * 600, "options": ["red", "light blue sky", "green"]},
    ]
    return write_jsonl(tmp_path / "items.jsonl", records)


def test_items_that_do_not_fit_are_marked_and_counted(tiny_model: Path, long_items: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        docs = build_docs("custom", data_files=str(long_items), pretrained=str(tiny_model), reference_rule=False)
    reasons = {d["id"]: d["unscored_reason"] for d in docs}
    assert reasons["fine"] == ""
    assert "longer than the model's window of 512" in reasons["long_option"]
    # Its question is cut, but every ordering's block has the same number of tokens here, so every
    # ordering keeps the same question tokens: still comparable, so scored.
    assert reasons["long_question"] == ""
    assert "1 of 3 item(s) do not fit" in caplog.text
    assert doc_to_choice(docs[1]) == [PLACEHOLDER_REQUEST] and len(doc_to_choice(docs[0])) == 6
    rows = [process_results(d, [(-1.0 - i, False) for i in range(len(doc_to_choice(d)))]) for d in docs]
    assert AGGREGATIONS["n_excluded"]([r["n_excluded"] for r in rows]) == 1
    assert not math.isnan(AGGREGATIONS["orig_rank"]([r["orig_rank"] for r in rows]))
    assert rows[1]["leak_a"]["stats"]["status"] == "too_long"


def test_without_a_loadable_model_the_check_is_skipped_with_a_warning(long_items: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        docs = build_docs("custom", data_files=str(long_items), pretrained=str(tmp_path / "no_model"))
    assert all(d["unscored_reason"] == "" for d in docs)
    assert "could not load the tokenizer" in caplog.text
    assert np.array_equal([len(doc_to_choice(d)) for d in docs], [6, 6, 6])
