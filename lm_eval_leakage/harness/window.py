"""Which items fit the model's context window, checked before any request is sent.

lm-eval's ``hf`` backend stops the whole run with a bare ``AssertionError`` when one continuation
(here: an ordering's option block) is longer than the model's window, and truncates a too-long
context from the left with a warning. For this test a truncated question is harmless only when
every ordering of the item keeps the same context, i.e. when all its option blocks have the same
length; otherwise the orderings are no longer compared on equal terms.

lm-eval builds the model before the tasks and passes the model arguments to the dataset hook with
the task options, so the hook can load the same tokenizer (from the local cache) and measure each
item's requests exactly as the backend will encode them. An item that cannot be scored fairly is
marked with its reason; it sends one placeholder request and is counted in ``n_excluded``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("lm_eval_leakage")

BYTE_BOUND_MARGIN = 4
"""Tokens a tokenizer may add beyond one per byte (a SentencePiece word-start piece, say)."""


@dataclass(frozen=True)
class ContextWindow:
    """A tokenizer and the window the backend will use.

    Attributes:
        tokenizer: The model's Hugging Face tokenizer.
        max_length: The backend's window in tokens.
        add_bos: Whether the backend puts a BOS token before each request.
    """

    tokenizer: Any
    max_length: int
    add_bos: bool = False

    def lengths(self, texts: list[str]) -> list[int]:
        """Token counts of ``texts`` as the backend encodes them (one batched tokenizer call)."""
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) + int(self.add_bos) for ids in encoded]

    def problem(self, context: str, blocks: Sequence[str]) -> str:
        """Why the item cannot be scored fairly in this window, or ``""`` when it can.

        Requests are split as lm-eval's ``hf`` backend splits them: trailing whitespace of the
        context moves to the continuation, the pair is encoded whole and the context's tokens cut off.
        """
        longest = max(len((context + block).encode("utf-8")) for block in blocks)
        if longest + BYTE_BOUND_MARGIN + int(self.add_bos) <= self.max_length:
            return ""  # a token covers at least one byte: it fits without tokenizing anything
        context_len, *wholes = self.lengths([context.rstrip(), *(context + block for block in blocks)])
        lengths = [whole - context_len for whole in wholes]
        if max(lengths) > self.max_length:
            return (f"an option block is {max(lengths)} tokens, longer than the model's window of "
                    f"{self.max_length}")
        if context_len + max(lengths) > self.max_length + 1 and len(set(lengths)) > 1:
            return (f"question and options ({context_len} + up to {max(lengths)} tokens) exceed the model's window "
                    f"of {self.max_length}, and truncating the question would differ between orderings")
        return ""


def window_from_metadata(task: str, metadata: Mapping[str, Any]) -> ContextWindow | None:
    """The window of the model named in the model arguments, or ``None`` when it cannot be known.

    Only Hugging Face models (``pretrained``) are measured; loading reads the local cache the
    backend has just filled. When the tokenizer or config cannot be loaded, a warning says so and
    the run goes on unchecked.
    """
    pretrained = metadata.get("pretrained")
    if not isinstance(pretrained, str) or not pretrained:
        return None
    try:
        from lm_eval.models.utils import resolve_max_length
        from transformers import AutoConfig, AutoTokenizer

        extra = {k: metadata[k] for k in ("revision", "trust_remote_code") if k in metadata}
        source = metadata.get("tokenizer") if isinstance(metadata.get("tokenizer"), str) else pretrained
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        given = metadata.get("max_length")
        max_length = int(given) if given else resolve_max_length(AutoConfig.from_pretrained(pretrained, **extra),
                                                                 tokenizer)
    except Exception as exc:  # noqa: BLE001 - any failure only means the check cannot run
        logger.warning("%s: could not load the tokenizer of %r to check item lengths against the model's "
                       "window (%s: %s); items that do not fit will fail in the backend", task, pretrained,
                       type(exc).__name__, exc)
        return None
    add_bos = str(metadata.get("add_bos_token", "")).lower() in {"true", "1"}
    return ContextWindow(tokenizer, max_length, add_bos)
