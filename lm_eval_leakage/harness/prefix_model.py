"""``--model hf-prefix``: lm-eval's Hugging Face backend, scoring all orderings of an item in one trie.

A leakage task sends one ``loglikelihood`` request per ordering of an item's options, all with the
same context (the question). lm-eval's ``hf`` model runs every request's full text through the
network: the question 24 times for a four-option item (120 times for five options), and an
ordering's first options as many times as orderings start with them. This backend groups the
requests by context and feeds each group's token trie instead: one node per distinct prefix of
the requests' inputs, so the question and every run of options that orderings share go through
the network once (:mod:`lm_eval_leakage.harness.trie`). Each token attends to exactly its
ancestors in the trie (a 4D boolean attention mask), at the position id of its depth, so its
output is the one it has in its full text. Log-probabilities are read only where a request
scores a token and only for the target, with the LM head run on those positions alone
(``logits_to_keep``) and the log-softmax taken a slice of rows at a time, as ``hf`` computes it.

Tries are packed into forward passes of ``--batch_size`` rows of ``trie_chunk`` new tokens (model
argument, default 256; ``--batch_size auto`` feeds as many tokens as ``hf`` would detect to fit);
a trie that does not fit goes on in later passes on top of the keys and values of its ancestors,
its remaining subtrees side by side (:mod:`lm_eval_leakage.harness.trie_scorer`). Memory is
bounded by the pass: the kept logits (at most rows x ``trie_chunk`` x vocabulary), the keys and
values of one pass, and per group in progress those of the ancestors still needed.

The figures are ``hf``'s up to float rounding (the tests compare the two backends on a tiny model
and, in ``tests/e2e``, on SmolLM2-135M within 2e-4 in summed log-probability). Requests that share
their context with no other request, requests longer than the model's window (lm-eval truncates
those from the left), and encoder-decoder models go through ``hf``'s own code. Models whose
attention takes no custom 4D mask (attention implementations other than ``sdpa`` and ``eager``,
such as flash attention; a forward without ``position_ids``), models on which a short check at
first use does not reproduce ``hf``'s scores, and groups longer than a sliding attention window
use this backend's earlier method: each group's common token prefix once with the key/value
cache, each request's remainder on a copy of it. The log says so once. Every ``hf`` model
argument works the same way.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm
from transformers import DynamicCache

from lm_eval_leakage.harness.autoload import PREFIX_MODEL
from lm_eval_leakage.harness.trie_scorer import KeysValues, Request, score_groups, target_logprobs

logger = logging.getLogger("lm_eval_leakage")

DEFAULT_TRIE_CHUNK = 256
"""New tokens per row of a trie pass (model argument ``trie_chunk``)."""
MASK_ATTENTION = ("sdpa", "eager")
"""Attention implementations that apply a custom 4D mask as given."""


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by every sequence."""
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for other in sequences[1:]:
        mismatch = next((i for i in range(length) if other[i] != first[i]), length)
        length = min(length, mismatch)
    return length


@register_model(PREFIX_MODEL)
class PrefixSharingHFLM(HFLM):
    """``HFLM`` whose ``loglikelihood`` scores each group of requests through its token trie.

    Args:
        trie_chunk: New tokens per row of a forward pass (fewer when the batch budget is smaller).
        *args: ``HFLM``'s.
        **kwargs: ``HFLM``'s.
    """

    def __init__(self, *args: Any, trie_chunk: int = DEFAULT_TRIE_CHUNK, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trie_chunk = int(trie_chunk)
        if self.trie_chunk < 1:
            raise ValueError(f"trie_chunk must be positive, got {trie_chunk}")
        self._use_trie = True  # False: the common-prefix method only (scripts/bench_prefix.py)
        self._trie_ok: bool | None = None
        self._said: set[str] = set()

    def _say_once(self, key: str, message: str, level: int = logging.INFO) -> None:
        if key not in self._said:
            self._said.add(key)
            logger.log(level, "hf-prefix: %s", message)

    def _loglikelihood_tokens(  # long: dispatch between hf, the trie and the common-prefix method
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) <= self.max_length + 1:  # no truncation needed
                groups[tuple(context)].append(index)
            else:
                self._say_once("long", "requests longer than the model's window go through hf's own code")
        shared = [members for members in groups.values() if len(members) > 1]
        results: list[tuple[float, bool] | None] = [None] * len(requests)

        rest = sorted(set(range(len(requests))) - {i for members in shared for i in members})
        if rest:
            if any(len(members) == 1 for members in groups.values()):
                self._say_once("lone", "contexts that no other request shares go through hf's own code")
            for i, answer in zip(rest, super()._loglikelihood_tokens(
                [requests[i] for i in rest], disable_tqdm=disable_tqdm, override_bs=override_bs
            ), strict=True):
                results[i] = answer

        trie, prefix = self._split_groups(requests, shared)
        with tqdm(total=sum(map(len, shared)), disable=disable_tqdm or self.rank != 0,
                  desc="Running loglikelihood requests (shared contexts)") as bar:
            if trie:
                rows, width = self._pass_shape(requests, trie, override_bs)
                for number, answers in self._trie_answers([[requests[i] for i in m] for m in trie], rows, width):
                    self._store(requests, trie[number], answers, results)
                    bar.update(len(answers))
            limit = self._prefix_limit(override_bs)
            for members in sorted(prefix, key=lambda m: -max(len(requests[i][1]) + len(requests[i][2]) for i in m)):
                self._store(requests, members, self._score_group([requests[i] for i in members], limit), results)
                bar.update(len(members))
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _store(self, requests: list[Request], members: list[int], answers: list[tuple[float, bool]],
               results: list[tuple[float, bool] | None]) -> None:
        for i, answer in zip(members, answers, strict=True):
            results[i] = answer
            if requests[i][0] is not None:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)

    def _split_groups(self, requests: list[Request], shared: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        """The groups scored through their trie and those scored by the common-prefix method."""
        if not shared or not (self._use_trie and self._trie_ready()):
            return [], shared
        window = self._sliding_window()
        if window is None:
            return shared, []
        fits = [max(len(requests[i][1]) + len(requests[i][2]) - 1 for i in m) <= window for m in shared]
        if not all(fits):
            self._say_once("window", f"groups longer than the sliding window ({window}) use the key/value cache")
        return [m for m, ok in zip(shared, fits) if ok], [m for m, ok in zip(shared, fits) if not ok]

    def _pass_shape(self, requests: list[Request], groups: list[list[int]], override_bs: int | None) -> tuple[int, int]:
        """Rows per pass and new tokens per row.

        A numeric batch size is the number of rows of ``trie_chunk`` tokens. ``auto`` detects, as
        ``hf`` does, how many of the longest requests fit in one batch, and feeds as many tokens.
        """
        width = self.trie_chunk
        if self.batch_size != "auto":
            return max(1, int(self.batch_size)), width
        longest = max((i for m in groups for i in m), key=lambda i: len(requests[i][1]) + len(requests[i][2]))
        batch_size = override_bs or self._detect_batch_size([requests[longest]], 0)
        length = len(requests[longest][1]) + len(requests[longest][2]) - 1
        return max(1, int(batch_size) * length // width), width

    def _prefix_limit(self, override_bs: int | None) -> int | None:
        batch_size = override_bs if self.batch_size == "auto" else self.batch_size
        return int(batch_size) if batch_size else None

    # ----- the trie --------------------------------------------------------------------------------

    def _trie_answers(self, groups: list[list[Request]], rows: int, width: int) -> Iterator[tuple[int, list]]:
        return score_groups(enumerate(groups), self._trie_forward, rows=rows, width=width, device=self.device,
                            softmax_dtype=self.softmax_dtype)

    def _trie_forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        allowed: torch.Tensor,
        past: KeysValues | None,
        keep: torch.Tensor,
    ) -> tuple[torch.Tensor, KeysValues]:
        """One trie pass (``trie_scorer.Forward``): the kept logits and every key and value after it."""
        mask: torch.Tensor = allowed
        if self.model.config._attn_implementation == "eager":  # eager adds the mask to the scores
            low = torch.finfo(self.model.dtype).min
            mask = torch.zeros(allowed.shape, dtype=self.model.dtype, device=allowed.device).masked_fill_(~allowed, low)
        cache = DynamicCache(ddp_cache_data=past) if past else DynamicCache()
        kwargs: dict[str, Any] = {self._cache_name(): cache}
        keeps = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        if keeps:
            kwargs["logits_to_keep"] = keep
        with (
            torch.no_grad(),
            torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                           enabled=self.mixed_precision_dtype is not None),
        ):
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                             **kwargs)
        logits = out.logits if keeps else out.logits[keep]
        return logits, [(kv[0], kv[1]) for kv in cache]

    def _cache_name(self) -> str:
        """The forward's cache argument (transformers 5 renamed ``past_key_values`` to ``cache``)."""
        if not hasattr(self, "_cache_argument"):
            params = inspect.signature(self.model.forward).parameters
            self._cache_argument = "cache" if "cache" in params else "past_key_values"
        return self._cache_argument

    def _sliding_window(self) -> int | None:
        config = self.model.config.get_text_config()
        window = getattr(config, "sliding_window", None)
        layer_types = getattr(config, "layer_types", None)
        if window is None or (layer_types is not None and not any("sliding" in t for t in layer_types)):
            return None
        return int(window)

    def _trie_ready(self) -> bool:
        """Whether this model scores tries (checked at first use; the log says so once if not)."""
        if self._trie_ok is None:
            reason = self._trie_obstacle()
            if reason is None:
                try:
                    reason = self._trie_check()
                except Exception as error:  # noqa: BLE001 - any failure means: use the other method
                    reason = f"the check pass failed ({type(error).__name__}: {error})"
            self._trie_ok = reason is None
            if reason is not None:
                self._say_once("model", f"scoring shared prefixes with the key/value cache, not the token trie: {reason}",
                               logging.WARNING)
        return self._trie_ok

    def _trie_obstacle(self) -> str | None:
        attention = getattr(self.model.config, "_attn_implementation", None)
        if attention not in MASK_ATTENTION:
            return f"attention implementation {attention!r} takes no custom 4D mask"
        if "position_ids" not in inspect.signature(self.model.forward).parameters:
            return "the model's forward takes no position_ids"
        return None

    def _trie_check(self) -> str | None:
        """Score a few short requests both ways, in passes small enough to use caches and packing."""
        words = self.tok_encode("Each ordering shares the question, so the trie reads the question once.")
        t = (words * (1 + 12 // max(1, len(words))))[:12]
        groups: list[list[Request]] = [
            [(None, t[:3], t[3:7]), (None, t[:3], t[3:5] + t[8:10]), (None, t[:3], t[8:10] + t[3:5])],
            [(None, t[1:4], t[4:6]), (None, t[1:4], t[6:9])],
        ]
        flat = [r for g in groups for r in g]
        expected = super()._loglikelihood_tokens(flat, disable_tqdm=True, override_bs=len(flat))
        answers = dict(self._trie_answers(groups, 2, 3))
        got = [a for number in range(len(groups)) for a in answers[number]]
        worst = max(abs(a[0] - b[0]) for a, b in zip(got, expected, strict=True))
        tolerance = 1e-3 if self.model.dtype in (torch.float32, torch.float64) else 0.1
        if not worst <= tolerance:
            return f"its scores differ from hf's by {worst:.3g} on a check"
        return None

    # ----- the common-prefix method ------------------------------------------------------------------

    def _forward(self, tokens: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """Logits of ``tokens`` after ``cache``, and the cache extended by them."""
        with (
            torch.no_grad(),
            torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                           enabled=self.mixed_precision_dtype is not None),
        ):
            out = self.model(input_ids=tokens, use_cache=True, **{self._cache_name(): cache})
        return out.logits, cache

    def _read(self, logits: torch.Tensor, continuation: list[int]) -> tuple[float, bool]:
        """Summed log-probability of ``continuation`` under ``logits`` (one row per token), and greediness."""
        rows = torch.arange(len(continuation), device=logits.device)
        target = torch.tensor(continuation, dtype=torch.long, device=logits.device)
        values, greedy = target_logprobs(logits, rows, target, self.softmax_dtype)
        return float(values.sum()), bool(greedy.all())

    def _score_group(self, group: list[Request], limit: int | None) -> list[tuple[float, bool]]:
        """Score requests with one context: the common prefix once, then the remainders in batches.

        With ``S`` a request's tokens (context + continuation, ``n`` of them, the last ``c`` of them
        scored) and ``p`` the group's common prefix length (at most ``min n - 1``), the network's
        output at position ``j`` predicts ``S[j + 1]``; outputs ``0 .. p - 1`` come from the prefix
        pass over ``S[:p]``, outputs ``p .. n - 2`` from a pass over ``S[p:n - 1]`` on its cache.
        """
        sequences = [context + continuation for _, context, continuation in group]
        p = min(common_prefix_length(sequences), min(len(s) for s in sequences) - 1)
        first = min(len(s) - len(c) - 1 for s, (_, _, c) in zip(sequences, group, strict=True))
        prefix = torch.tensor([sequences[0][:p]], dtype=torch.long, device=self.device)
        prefix_logits, prefix_cache = self._forward(prefix, DynamicCache())
        prefix_logits = prefix_logits[0, first:]  # outputs first .. p - 1

        answers: list[tuple[float, bool]] = []
        step = limit or len(group)
        for start in range(0, len(group), step):
            chunk = sequences[start:start + step]
            width = max(len(s) - 1 - p for s in chunk)
            suffix_logits = None
            if width > 0:
                rows = [s[p:len(s) - 1] + [0] * (width - (len(s) - 1 - p)) for s in chunk]  # right padding
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(chunk))
                suffix_logits, _ = self._forward(torch.tensor(rows, dtype=torch.long, device=self.device), cache)
            for row, (sequence, (_, _, continuation)) in enumerate(zip(chunk, group[start:start + step], strict=True)):
                n, c = len(sequence), len(continuation)
                start_j = n - c - 1  # outputs start_j .. n - 2 predict the continuation
                parts = [prefix_logits[start_j - first:min(p, n - 1) - first]]
                if suffix_logits is not None and n - 1 > p:
                    parts.append(suffix_logits[row, max(start_j, p) - p:n - 1 - p])
                answers.append(self._read(torch.cat(parts), continuation))
        return answers
