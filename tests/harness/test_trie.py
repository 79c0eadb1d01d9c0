"""The token trie of a group of requests, the pairs read from it, and how its nodes are packed into passes."""

from __future__ import annotations

import itertools

import pytest

from lm_eval_leakage.harness.trie import build_trie, fill_rows, scored_pairs, split_ready


def _prefixes(inputs: list[list[int]]) -> set[tuple[int, ...]]:
    return {tuple(s[:j + 1]) for s in inputs for j in range(len(s))}


def test_one_node_per_distinct_prefix_in_pre_order() -> None:
    inputs = [[5, 1, 2, 3], [5, 1, 2, 4], [5, 1, 7], [5, 1, 2, 3]]
    trie = build_trie(inputs)
    assert len(trie) == len(_prefixes(inputs)) == 6
    assert trie.tokens == [5, 1, 2, 3, 4, 7]  # depth first, children in first-seen order
    assert trie.depth == [0, 1, 2, 3, 3, 2]
    assert trie.parent == [-1, 0, 1, 2, 2, 1]
    assert trie.end == [6, 6, 5, 4, 5, 6]
    assert trie.paths == [[0, 1, 2, 3], [0, 1, 2, 4], [0, 1, 5], [0, 1, 2, 3]]
    assert trie.ancestors(4) == [0, 1, 2] and trie.ancestors(0) == []


def test_paths_spell_the_inputs_and_subtrees_are_ranges() -> None:
    """Every ordering of four options, each a few tokens long, after a shared question."""
    options = [[10, 11], [12], [13, 14, 15], [16]]
    inputs = [[1, 2, 3] + [t for i in perm for t in options[i]] for perm in itertools.permutations(range(4))]
    trie = build_trie(inputs)
    assert len(trie) == len(_prefixes(inputs))
    for sequence, path in zip(inputs, trie.paths, strict=True):
        assert [trie.tokens[u] for u in path] == sequence
        assert [trie.depth[u] for u in path] == list(range(len(sequence)))
        assert [trie.parent[u] for u in path] == [-1] + path[:-1]
        for j, u in enumerate(path):  # ancestry is pre-order range membership
            assert trie.ancestors(u) == path[:j]
            assert all(u <= v < trie.end[u] for v in path[j:])
    for u in range(len(trie)):
        below = [v for v in range(len(trie)) if u in trie.ancestors(v) or v == u]
        assert below == list(range(u, trie.end[u]))


def test_roots_that_differ_make_separate_trees() -> None:
    trie = build_trie([[1, 2], [3, 4], [1, 5]])
    assert trie.tokens == [1, 2, 5, 3, 4] and trie.parent == [-1, 0, 0, -1, 3]
    assert trie.end == [3, 2, 3, 5, 5]


def test_scored_pairs_are_read_once_and_in_position_order() -> None:
    context = [1, 2]
    sequences = [context + [3, 4, 5], context + [3, 4, 6], context + [7]]
    trie = build_trie([s[:-1] for s in sequences])
    pairs = scored_pairs(trie, sequences, [3, 3, 1])
    first = [(trie.tokens[pairs.node[k]], pairs.target[k]) for k in pairs.of_request[0]]
    assert first == [(2, 3), (3, 4), (4, 5)]  # the node before each scored token, and the token
    assert pairs.of_request[1][:2] == pairs.of_request[0][:2]  # shared (node, target) pairs, read once
    assert len(pairs.node) == 5
    assert sorted(k for ks in pairs.at_node.values() for k in ks) == list(range(5))


def test_fill_rows_packs_ranges_in_order_and_cuts_at_row_ends() -> None:
    assert fill_rows([4, 4, 4, 9], 2, 6) == [[(0, 4), (1, 2)], [(2, 4), (3, 2)]]
    assert fill_rows([4, 1], 3, 6) == [[(0, 4), (1, 1)]]
    assert fill_rows([20, 3], 2, 6) == [[(0, 6)], [(1, 3)]]  # each range once per pass
    assert fill_rows([1, 1, 1], 1, 1) == [[(0, 1)]]
    with pytest.raises(ValueError):
        fill_rows([3], 0, 4)
    with pytest.raises(ValueError):
        fill_rows([0], 1, 4)


def _orderings_trie():  # type: ignore[no-untyped-def]
    options = [[10, 11], [12], [13, 14, 15], [16]]
    return build_trie([[1, 2, 3] + [t for i in perm for t in options[i]] for perm in itertools.permutations(range(4))])


@pytest.mark.parametrize("cut", [1, 3, 4, 9, 30, 57])
@pytest.mark.parametrize("width", [1, 5, 20, 1000])
def test_split_ready_gives_whole_subtrees_whose_outside_ancestors_are_done(cut: int, width: int) -> None:
    trie = _orderings_trie()
    pieces = split_ready(trie, cut, len(trie), width)
    assert pieces[0][0] == cut and pieces[-1][1] == len(trie)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(pieces))
    for first, stop in pieces:
        assert all(trie.end[u] <= stop for u in range(first, stop))  # whole subtrees
        outside = {a for u in range(first, stop) for a in trie.ancestors(u) if a < first}
        assert all(a < cut for a in outside)  # done already
        assert outside <= set(trie.ancestors(first))  # and all ancestors of the first node
        if stop - first > width:  # too wide only when a single subtree is
            assert trie.end[first] == stop
    if width >= len(trie):
        assert pieces == [(cut, len(trie))]


def test_feeding_ranges_in_passes_covers_every_node_once() -> None:
    """The scorer's loop, without a model: cut ranges come back as ready subtrees."""
    trie = _orderings_trie()
    for rows, width in [(1, 1), (1, 7), (3, 5), (8, 16), (2, 100)]:
        done: list[int] = []
        queue = [(0, len(trie))]
        while queue:
            plan = fill_rows([b - a for a, b in queue], rows, width)
            taken = {index: take for row in plan for index, take in row}
            fed = [u for index, take in taken.items() for u in range(queue[index][0], queue[index][0] + take)]
            for u in fed:  # every ancestor is done before, or fed in the same range
                assert all(a in done or a in range(queue[i][0], u) for a in trie.ancestors(u)
                           for i in taken if queue[i][0] <= u < queue[i][0] + taken[i])
            done += fed
            rest = []
            for index, (a, b) in enumerate(queue):
                cut = a + taken.get(index, 0)
                if index not in taken:
                    rest.append((a, b))
                elif cut < b:
                    rest += split_ready(trie, cut, b, width)
            queue = rest
        assert sorted(done) == list(range(len(trie)))
