"""Token tries of requests that share a context, and how to feed them to a network in rows.

Pure Python: no model, no tensor. :mod:`lm_eval_leakage.harness.trie_scorer` feeds tries to the
network in passes planned with :func:`fill_rows` and :func:`split_ready`.

A request is the token sequence ``S = context + continuation`` (``n`` tokens, the last ``c`` of
them scored). The network reads ``S[:n - 1]``; its output at position ``j`` predicts ``S[j + 1]``.
The trie holds one node per distinct input prefix ``S[:j + 1]``: the node's token is ``S[j]``, its
depth is ``j`` (the token's position), and its ancestors are the tokens before it. Nodes are
numbered in depth-first pre-order, so the subtree of node ``u`` is the range ``u .. end[u] - 1``
and ``u`` is an ancestor of ``v`` (or ``v`` itself) exactly when ``u <= v < end[u]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Trie:
    """The token trie of some sequences' inputs, nodes in depth-first pre-order.

    Attributes:
        tokens: ``tokens[u]``: the token of node ``u``.
        depth: ``depth[u]``: its position in every sequence through it (the root's is 0).
        parent: ``parent[u]``: its parent node, ``-1`` for a root.
        end: ``end[u]``: one past the last node of its subtree.
        paths: ``paths[r][j]``: the node of input position ``j`` of sequence ``r``.
    """

    tokens: list[int]
    depth: list[int]
    parent: list[int]
    end: list[int]
    paths: list[list[int]]

    def __len__(self) -> int:
        return len(self.tokens)

    def ancestors(self, node: int) -> list[int]:
        """The strict ancestors of ``node``, root first (the ``i``-th has depth ``i``)."""
        chain = []
        node = self.parent[node]
        while node >= 0:
            chain.append(node)
            node = self.parent[node]
        return chain[::-1]


def build_trie(inputs: Sequence[Sequence[int]]) -> Trie:
    """The trie of ``inputs`` (each a non-empty token list, the tokens a network reads).

    Children are kept in the order their first sequence lists them, so the numbering depends on
    the order of ``inputs`` only.
    """
    children: list[dict[int, int]] = [{}]  # insertion node 0 is a virtual root above the real roots
    token_of = [-1]
    raw_paths = []
    for sequence in inputs:
        node, path = 0, []
        for token in sequence:
            nxt = children[node].get(token)
            if nxt is None:
                nxt = children[node][token] = len(token_of)
                children.append({})
                token_of.append(token)
            path.append(nxt)
            node = nxt
        raw_paths.append(path)

    order = [0] * len(token_of)  # insertion id -> pre-order id (the virtual root gets -1 below)
    tokens: list[int] = []
    depth: list[int] = []
    parent: list[int] = []
    end: list[int] = []
    stack = [(child, -1, 0) for child in reversed(children[0].values())]
    opened: list[int] = []  # pre-order ids whose subtree is still open, deepest last
    while stack:
        raw, up, level = stack.pop()
        while opened and depth[opened[-1]] >= level:
            end[opened.pop()] = len(tokens)
        order[raw] = len(tokens)
        tokens.append(token_of[raw])
        depth.append(level)
        parent.append(up)
        end.append(-1)
        opened.append(order[raw])
        stack.extend((child, order[raw], level + 1) for child in reversed(children[raw].values()))
    for node in opened:
        end[node] = len(tokens)
    return Trie(tokens, depth, parent, end, [[order[raw] for raw in path] for path in raw_paths])


@dataclass(frozen=True)
class ScoredPairs:
    """The (node, next token) pairs whose log-probabilities make up the requests' scores.

    Attributes:
        node: ``node[k]``: the node whose output is read for pair ``k``.
        target: ``target[k]``: the token whose log-probability is read there.
        of_request: ``of_request[r]``: the pairs of request ``r``, in position order; its
            log-likelihood is their sum, and it is greedy when every one is the argmax.
        at_node: ``at_node[u]``: the pairs read at node ``u`` (absent when none).
    """

    node: list[int]
    target: list[int]
    of_request: list[list[int]]
    at_node: dict[int, list[int]]


def scored_pairs(trie: Trie, sequences: Sequence[Sequence[int]], continuation_lengths: Sequence[int]) -> ScoredPairs:
    """The pairs to read for ``sequences`` (context + continuation; ``trie`` built from their inputs).

    A pair shared by several requests (the same node and target, e.g. the option letter right
    after a shared prefix) is read once.
    """
    index: dict[tuple[int, int], int] = {}
    of_request = []
    for sequence, path, c in zip(sequences, trie.paths, continuation_lengths, strict=True):
        n = len(sequence)
        mine = []
        for j in range(n - c - 1, n - 1):
            mine.append(index.setdefault((path[j], sequence[j + 1]), len(index)))
        of_request.append(mine)
    node = [u for u, _ in index]
    at_node: dict[int, list[int]] = {}
    for k, u in enumerate(node):
        at_node.setdefault(u, []).append(k)
    return ScoredPairs(node, [t for _, t in index], of_request, at_node)


def split_ready(trie: Trie, start: int, stop: int, width: int) -> list[tuple[int, int]]:
    """``start .. stop - 1`` cut into ranges of whole subtrees, each at most ``width`` nodes if it can be.

    ``start .. stop - 1`` must be the rest of a range of whole subtrees (every node's subtree is
    in it) of which the nodes before ``start`` are done. Each subtree whose root's parent is
    done can then be fed on its own: its ancestors outside it are done. Consecutive such
    subtrees are grouped while they fit in ``width``; a subtree wider than that is a range of
    its own. The ancestors of a range's nodes that lie outside it are ancestors of its first node.
    """
    pieces = []
    first = root = start
    while root < stop:
        after = trie.end[root]
        if root > first and after - first > width:
            pieces.append((first, root))
            first = root
        root = after
    pieces.append((first, stop))
    return pieces


def fill_rows(sizes: Sequence[int], rows: int, width: int) -> list[list[tuple[int, int]]]:
    """One forward pass over queued ranges: per row, ``(range index, nodes taken from its start)``.

    Ranges are taken in order, each once at most, packed one after another into rows of
    ``width`` nodes, and the one that reaches the end of a row is cut there (its rest waits for a
    later pass: its nodes need the keys and values of the part just cut). At most ``rows`` rows.
    """
    if rows < 1 or width < 1:
        raise ValueError(f"rows and width must be positive, got {rows} and {width}")
    out: list[list[tuple[int, int]]] = []
    row: list[tuple[int, int]] = []
    space = width
    for index, size in enumerate(sizes):
        if size < 1:
            raise ValueError(f"range {index} is empty")
        take = min(space, size)
        row.append((index, take))
        space -= take
        if space == 0:
            out.append(row)
            row, space = [], width
            if len(out) == rows:
                return out
    if row:
        out.append(row)
    return out


__all__ = ["ScoredPairs", "Trie", "build_trie", "fill_rows", "scored_pairs", "split_ready"]
