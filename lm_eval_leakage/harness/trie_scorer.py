"""Score groups of requests through their token tries (``hf-prefix``'s default path).

Each group (requests with one context) becomes the trie of its inputs
(:mod:`lm_eval_leakage.harness.trie`), fed in forward passes of at most ``rows`` x ``width`` new
tokens. The work is a queue of ranges of whole subtrees in pre-order; a group starts as one
range, its whole trie. A pass packs queued ranges into rows
(:func:`~lm_eval_leakage.harness.trie.fill_rows`), each row preceded by the keys and values of
its ranges' outside ancestors (those of a range's first node), kept from earlier passes; a range
cut at the end of a row comes back as the subtrees left under its done part
(:func:`~lm_eval_leakage.harness.trie.split_ready`), which later passes can feed side by side. Per
group, only the keys and values of the ancestors of its queued ranges are kept between passes.
Every token attends to exactly its ancestors in its own trie and itself (a boolean mask over
cache and row), at the position id of its depth, so its output is the one it has in its full
sequence alone. Padding tokens attend to themselves only, so no row of the attention is empty.
Log-probabilities are read only where a request scores a token, and only the target's
(:func:`target_logprobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lm_eval_leakage.harness.trie import ScoredPairs, Trie, build_trie, fill_rows, scored_pairs, split_ready

Request = tuple[tuple[str, str] | None, list[int], list[int]]
KeysValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, keys and values ``(B, heads, length, head_dim)``."""
Forward = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, "KeysValues | None", torch.Tensor],
    "tuple[torch.Tensor, KeysValues]",
]
"""``forward(input_ids, position_ids, allowed, past, keep)`` -> ``(logits, keys_values)``.

``input_ids`` and ``position_ids``: ``(B, L)``; ``allowed``: ``(B, 1, L, P + L)`` boolean, True where
a query may attend a key (``P`` cached keys first); ``past``: the ``P`` cached keys and values, or
None when ``P`` is 0; ``keep``: ``(B, L)`` boolean. Returns the logits of the kept positions in
row-major order ``(K, vocab)`` and every key and value after the pass (length ``P + L``).
"""

SLICE_ELEMENTS = 1 << 21
"""Logits per log-softmax slice (the slice's log-softmax is the largest temporary)."""


@dataclass
class _Item:
    """A group being scored: its trie, the pairs to read, what is left, and the keys it still needs."""

    group: int
    trie: Trie
    pairs: ScoredPairs
    logp: list[float]
    greedy: list[bool]
    left: int  # nodes not fed yet
    dtype: torch.dtype = torch.float32  # of the log-probabilities, summed in it as hf sums them
    store: tuple[torch.Tensor, torch.Tensor] | None = None  # keys, values: (layers, len(slot), heads, head_dim)
    slot: dict[int, int] = field(default_factory=dict)  # node -> its column in store


@dataclass(frozen=True)
class _Range:
    """Nodes ``start .. stop - 1`` of item ``item``'s trie: whole subtrees, queued to be fed."""

    item: int
    start: int
    stop: int


@dataclass
class _Pass:
    """The tensors of one forward pass, and where its kept outputs and fed ranges sit."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    allowed: torch.Tensor
    past: KeysValues | None
    keep: torch.Tensor
    kept: list[tuple[int, int]] = field(default_factory=list)  # (item, node) per kept output
    fed: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)  # item -> (start, stop, row, column)


def score_groups(  # long: the pass loop
    groups: Iterable[tuple[int, Sequence[Request]]],
    forward: Forward,
    *,
    rows: int,
    width: int,
    device: torch.device,
    softmax_dtype: torch.dtype | None = None,
) -> Iterator[tuple[int, list[tuple[float, bool]]]]:
    """Score each group's requests through its trie, ``(log-likelihood, is_greedy)`` per request.

    Args:
        groups: ``(key, requests)`` pairs, read lazily (as passes need more work); every request
            of a group fits the model's window and has the same context.
        forward: Runs one pass (see :data:`Forward`).
        rows: Rows per pass.
        width: New tokens per row.
        device: Where the inputs go.
        softmax_dtype: Dtype of the log-softmax (default: the logits' dtype, as in ``hf``).

    Yields:
        ``(key, answers)`` per group as soon as its last pass is done (not necessarily in order).
    """
    items: dict[int, _Item] = {}
    queue: list[_Range] = []
    sources = enumerate(groups)
    while True:
        while sum(min(r.stop - r.start, width) for r in queue) < rows * width:  # what a pass can take
            number, (key, requests) = next(sources, (-1, (None, None)))
            if requests is None:
                break
            sequences = [list(context) + list(continuation) for _, context, continuation in requests]
            trie = build_trie([s[:-1] for s in sequences])
            pairs = scored_pairs(trie, sequences, [len(c) for _, _, c in requests])
            items[number] = _Item(key, trie, pairs, [0.0] * len(pairs.node), [False] * len(pairs.node), len(trie))
            queue.append(_Range(number, 0, len(trie)))
        if not queue:
            return
        plan = fill_rows([r.stop - r.start for r in queue], rows, width)
        batch = _assemble(plan, queue, items, device)
        logits, layers = forward(batch.input_ids, batch.position_ids, batch.allowed, batch.past, batch.keep)
        batch.past, batch.allowed = None, torch.empty(0)  # free them before reading the logits
        _read_pairs(logits, batch.kept, items, softmax_dtype)
        del logits
        taken = {index: take for row in plan for index, take in row}
        rest: list[_Range] = []
        for index, task in enumerate(queue):
            if index in taken:
                items[task.item].left -= taken[index]
                cut = task.start + taken[index]
                if cut < task.stop:
                    rest.extend(_Range(task.item, a, b) for a, b in split_ready(items[task.item].trie, cut, task.stop, width))
            else:
                rest.append(task)
        queue = rest
        starts: dict[int, list[int]] = {number: [] for number in batch.fed}
        for task in queue:
            if task.item in starts:
                starts[task.item].append(task.start)
        _keep_ancestors({n: (items[n], mine) for n, mine in starts.items() if items[n].left}, batch.fed, layers)
        del layers
        for number in starts:
            if items[number].left == 0:
                item = items.pop(number)
                yield item.group, [
                    (float(torch.tensor([item.logp[k] for k in pairs], dtype=item.dtype).sum()),
                     all(item.greedy[k] for k in pairs))
                    for pairs in item.pairs.of_request
                ]


def _assemble(  # long: one pass's tensors
    plan: list[list[tuple[int, int]]], queue: list[_Range], items: dict[int, _Item], device: torch.device
) -> _Pass:
    """The inputs of one pass: rows of ranges, each row's cached ancestors first.

    In a row, an item's ranges share one copy of their cached ancestors and one tag: each range
    holds whole subtrees, so no node of one is an ancestor of a node of another, and the pre-order
    test ``u <= v < end[u]`` alone says who attends to whom within the item.
    """
    caches = [_row_cache(row, queue, items) for row in plan]
    cache_len = max(sum(len(nodes) for nodes, _ in cache.values()) for cache in caches)
    width = max(sum(take for _, take in row) for row in plan)
    n_rows, total = len(plan), cache_len + width
    ids = torch.zeros(n_rows, width, dtype=torch.long)
    positions = torch.zeros(n_rows, width, dtype=torch.long)
    query_tag = torch.full((n_rows, width), -1, dtype=torch.int32)
    query_node = torch.zeros(n_rows, width, dtype=torch.int32)
    key_tag = torch.full((n_rows, total), -2, dtype=torch.int32)
    key_lo = torch.zeros(n_rows, total, dtype=torch.int32)
    key_hi = torch.zeros(n_rows, total, dtype=torch.int32)
    keep = torch.zeros(n_rows, width, dtype=torch.bool)
    batch = _Pass(ids, positions, torch.empty(0), None, keep)
    for b, (row, cache) in enumerate(zip(plan, caches, strict=True)):
        cached = 0
        for number, (nodes, _) in cache.items():
            end = items[number].trie.end
            span = slice(cached, cached + len(nodes))
            key_tag[b, span] = number
            key_lo[b, span] = torch.tensor(nodes, dtype=torch.int32)
            key_hi[b, span] = torch.tensor([end[u] for u in nodes], dtype=torch.int32)
            cached += len(nodes)
        fed = 0
        for index, take in row:
            task = queue[index]
            item = items[task.item]
            stop = task.start + take
            span, columns = slice(fed, fed + take), slice(cache_len + fed, cache_len + fed + take)
            ids[b, span] = torch.tensor(item.trie.tokens[task.start:stop])
            positions[b, span] = torch.tensor(item.trie.depth[task.start:stop])
            query_tag[b, span] = key_tag[b, columns] = task.item
            query_node[b, span] = key_lo[b, columns] = torch.arange(task.start, stop, dtype=torch.int32)
            key_hi[b, columns] = torch.tensor(item.trie.end[task.start:stop], dtype=torch.int32)
            for u in range(task.start, stop):
                if u in item.pairs.at_node:
                    keep[b, fed + u - task.start] = True
                    batch.kept.append((task.item, u))
            batch.fed.setdefault(task.item, []).append((task.start, stop, b, cache_len + fed))
            fed += take
    allowed = (
        (key_tag[:, None, :] == query_tag[:, :, None])
        & (key_lo[:, None, :] <= query_node[:, :, None])
        & (query_node[:, :, None] < key_hi[:, None, :])
    )
    allowed[:, :, cache_len:] |= torch.diag_embed(query_tag < 0)  # padding attends to itself
    batch.allowed = allowed[:, None].to(device)
    batch.past = _stack_past([[kv for _, kv in cache.values()] for cache in caches], cache_len)
    for name in ("input_ids", "position_ids", "keep"):
        setattr(batch, name, getattr(batch, name).to(device))
    return batch


def _row_cache(
    row: list[tuple[int, int]], queue: list[_Range], items: dict[int, _Item]
) -> dict[int, tuple[list[int], tuple[torch.Tensor, torch.Tensor]]]:  # keys, values: (layers, n, heads, dim)
    """Per item in ``row``: its ranges' outside ancestors (in the order kept), and their keys and values."""
    needed: dict[int, set[int]] = {}
    for index, _ in row:
        task = queue[index]
        needed.setdefault(task.item, set()).update(items[task.item].trie.ancestors(task.start))
    cache = {}
    for number, nodes in needed.items():
        item = items[number]
        if nodes:
            assert item.store is not None
            ordered = sorted(nodes, key=item.slot.__getitem__)
            at = torch.tensor([item.slot[u] for u in ordered], dtype=torch.long, device=item.store[0].device)
            cache[number] = (ordered, (item.store[0].index_select(1, at), item.store[1].index_select(1, at)))
    return cache


def _keep_ancestors(
    touched: dict[int, tuple[_Item, list[int]]], fed: dict[int, list[tuple[int, int, int, int]]], layers: KeysValues
) -> None:
    """Keep, per item fed in this pass, the keys and values of the ancestors of its queued ranges, no more.

    ``touched``: item -> (item, starts of its queued ranges). Each such ancestor is kept already or
    was fed in this pass: ``fed`` lists an item's ranges in it as ``(start, stop, row, column of
    start)``; ``layers`` holds the pass's keys and values.
    """
    plans, rows, columns = {}, [], []
    for number, (item, starts) in touched.items():
        needed = sorted({u for start in starts for u in item.trie.ancestors(start)})
        old = [u for u in needed if u in item.slot]
        new = [u for u in needed if u not in item.slot]
        for u in new:
            row, column = next((row, column + u - a) for a, b, row, column in fed[number] if a <= u < b)
            rows.append(row)
            columns.append(column)
        plans[number] = (old, new, len(rows) - len(new))
    if not plans:
        return
    device = layers[0][0].device
    at_rows = torch.tensor(rows, dtype=torch.long, device=device)
    at_columns = torch.tensor(columns, dtype=torch.long, device=device)
    gathered = [torch.stack([kv[which][at_rows, :, at_columns] for kv in layers]) for which in (0, 1)] if rows else []
    for number, (old, new, first) in plans.items():
        item = touched[number][0]
        parts = []
        if old:
            assert item.store is not None
            at = torch.tensor([item.slot[u] for u in old], dtype=torch.long, device=item.store[0].device)
            parts.append((item.store[0].index_select(1, at), item.store[1].index_select(1, at)))
        if new:
            parts.append((gathered[0][:, first:first + len(new)], gathered[1][:, first:first + len(new)]))
        item.store = (torch.cat([k for k, _ in parts], 1), torch.cat([v for _, v in parts], 1)) if parts else None
        item.slot = {u: i for i, u in enumerate(old + new)}


def _stack_past(past_rows: list[list[tuple[torch.Tensor, torch.Tensor]]], cache_len: int) -> KeysValues | None:
    """Each row's cached keys and values side by side, zero-padded to ``cache_len``, per layer."""
    if cache_len == 0:
        return None
    sample = next(kv for row in past_rows for kv in row)[0]
    layers, _, heads, dim = sample.shape
    stacked = []
    for which in (0, 1):
        out = sample.new_zeros(layers, len(past_rows), cache_len, heads, dim)
        for b, row in enumerate(past_rows):
            at = 0
            for kv in row:
                out[:, b, at:at + kv[which].shape[1]] = kv[which]
                at += kv[which].shape[1]
        stacked.append(out.transpose(2, 3))  # (layers, B, heads, P, dim)
    return [(stacked[0][n], stacked[1][n]) for n in range(layers)]


def target_logprobs(
    logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, softmax_dtype: torch.dtype | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log_softmax(logits[rows[k]])[targets[k]]`` and whether ``targets[k]`` is its argmax, per ``k``.

    Computed as lm-eval's ``hf`` does (a log-softmax in ``softmax_dtype``, by default the logits'
    dtype), so that the figures agree to float noise, but a slice of rows at a time: only the
    slice's log-softmax exists at once. ``rows`` must be sorted.
    """
    step = max(1, SLICE_ELEMENTS // max(1, logits.shape[-1]))
    values, greedy = [], []
    bounds = torch.searchsorted(rows, torch.arange(0, logits.shape[0] + step, step, device=rows.device)).tolist()
    for n, a in enumerate(range(0, logits.shape[0], step)):
        lo, hi = bounds[n], bounds[n + 1]
        if lo == hi:
            continue
        logp = F.log_softmax(logits[a:a + step], dim=-1, dtype=softmax_dtype)
        local, wanted = rows[lo:hi] - a, targets[lo:hi]
        values.append(logp[local, wanted])
        greedy.append(logp.argmax(dim=-1)[local] == wanted)
    if not values:
        return logits.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=logits.device)
    return torch.cat(values), torch.cat(greedy)


def _read_pairs(
    logits: torch.Tensor, kept: list[tuple[int, int]], items: dict[int, _Item], softmax_dtype: torch.dtype | None
) -> None:
    """Store each pair's log-probability and whether its target is the argmax (:func:`target_logprobs`)."""
    if not kept:
        return
    if logits.shape[0] != len(kept):
        raise RuntimeError(f"the model returned {logits.shape[0]} logit rows for {len(kept)} kept positions")
    rows, targets, owners = [], [], []
    for row, (number, node) in enumerate(kept):
        item = items[number]
        for k in item.pairs.at_node[node]:
            rows.append(row)
            targets.append(item.pairs.target[k])
            owners.append((item, k))
    values, greedy = target_logprobs(logits, torch.tensor(rows, device=logits.device),
                                     torch.tensor(targets, device=logits.device), softmax_dtype)
    for (item, k), value, hit in zip(owners, values.tolist(), greedy.tolist(), strict=True):
        item.logp[k] = value
        item.greedy[k] = hit
        item.dtype = values.dtype


__all__ = ["Forward", "KeysValues", "Request", "score_groups", "target_logprobs"]
