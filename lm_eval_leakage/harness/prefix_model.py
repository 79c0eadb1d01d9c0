"""``--model hf-prefix``: lm-eval's Hugging Face backend, scoring shared prefixes once.

A leakage task sends one ``loglikelihood`` request per ordering of an item's options, all with the
same context (the question). lm-eval's ``hf`` model runs every request's full text through the
network, so the question is computed 24 times for a four-option item (120 times for five
options). This backend groups the requests by context, runs the group's longest common token
prefix once with the key/value cache on, and runs only each request's remaining tokens on top of
that cache. On 20 MMLU items the network saw 2.07 times fewer tokens and ran about twice as fast
(``scripts/bench_prefix.py``; figures in the README).

The figures are the same up to floating-point summation order: the tokens, positions and
attention are those of the full text (``tests/test_prefix_model.py`` compares the two backends on
SmolLM2-135M). Requests that share their context with no other request, requests longer than
the model's window (lm-eval truncates those from the left), and encoder-decoder models go
through ``hf``'s own code unchanged. Every ``hf`` model argument works the same way; a numeric
``batch_size`` bounds the number of continuations scored at once on one prefix, ``auto`` scores
each group at once.

Source of the idea: the TODO in ``HFLM._loglikelihood_tokens`` of lm-eval 0.4.13 ("lumps
together requests with the same context"); the vLLM backend gets the same effect from
``enable_prefix_caching=True``.
"""

from __future__ import annotations

import copy
import inspect
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm
from transformers import DynamicCache

from lm_eval_leakage.harness.autoload import PREFIX_MODEL

Request = tuple[tuple[str, str], list[int], list[int]]


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
    """``HFLM`` whose ``loglikelihood`` runs each group's shared prefix once (module docstring)."""

    def _loglikelihood_tokens(
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
        shared = [members for members in groups.values() if len(members) > 1]
        results: list[tuple[float, bool] | None] = [None] * len(requests)

        rest = sorted(set(range(len(requests))) - {i for members in shared for i in members})
        if rest:
            for i, answer in zip(rest, super()._loglikelihood_tokens(
                [requests[i] for i in rest], disable_tqdm=disable_tqdm, override_bs=override_bs
            ), strict=True):
                results[i] = answer

        batch_size = override_bs if self.batch_size == "auto" else self.batch_size
        limit = int(batch_size) if batch_size else None
        longest_first = sorted(shared, key=lambda m: -max(len(requests[i][1]) + len(requests[i][2]) for i in m))
        with tqdm(total=sum(map(len, shared)), disable=disable_tqdm or self.rank != 0,
                  desc="Running loglikelihood requests (shared prefixes)") as bar:
            for members in longest_first:
                for i, answer in zip(members, self._score_group([requests[i] for i in members], limit), strict=True):
                    results[i] = answer
                    if requests[i][0] is not None:
                        self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
                bar.update(len(members))
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _forward(self, tokens: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """Logits of ``tokens`` after ``cache``, and the cache extended by them."""
        if not hasattr(self, "_cache_argument"):  # transformers 5 renamed past_key_values to cache
            self._cache_argument = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        with (
            torch.no_grad(),
            torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                           enabled=self.mixed_precision_dtype is not None),
        ):
            out = self.model(input_ids=tokens, use_cache=True, **{self._cache_argument: cache})
        return out.logits, out[self._cache_argument]

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
        prefix_logp = F.log_softmax(prefix_logits[0, first:], dim=-1, dtype=self.softmax_dtype)  # rows first..p-1

        answers: list[tuple[float, bool]] = []
        step = limit or len(group)
        for start in range(0, len(group), step):
            chunk = sequences[start:start + step]
            width = max(len(s) - 1 - p for s in chunk)
            suffix_logp = None
            if width > 0:
                rows = [s[p:len(s) - 1] + [0] * (width - (len(s) - 1 - p)) for s in chunk]  # right padding
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(chunk))
                logits, _ = self._forward(torch.tensor(rows, dtype=torch.long, device=self.device), cache)
                suffix_logp = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
            for row, (sequence, (_, _, continuation)) in enumerate(zip(chunk, group[start:start + step], strict=True)):
                n, c = len(sequence), len(continuation)
                start_j = n - c - 1  # outputs start_j .. n - 2 predict the continuation
                parts = [prefix_logp[start_j - first:min(p, n - 1) - first]]
                if suffix_logp is not None and n - 1 > p:
                    parts.append(suffix_logp[row, max(start_j, p) - p:n - 1 - p])
                logp = torch.cat(parts)  # (c, vocab)
                target = torch.tensor(continuation, dtype=torch.long, device=logp.device)
                answers.append((
                    float(logp.gather(1, target[:, None]).sum()),
                    bool((logp.argmax(dim=-1) == target).all()),
                ))
        return answers
