from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_leakage.core.orderings import build_orderings, count_distinct_orderings


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["a", "b"], 2),
        (["a", "b", "c", "d"], 24),
        (["a", "b", "c", "d", "e"], 120),
        (["a", "a", "b", "c"], 12),  # 4! / 2!
        (["a", "a", "b", "b"], 6),  # 4! / (2! 2!)
        (["x", "x", "x"], 1),
    ],
)
def test_count_distinct_orderings(options: list[str], expected: int) -> None:
    assert count_distinct_orderings(options) == expected


def test_all_orderings_identity_first_and_distinct() -> None:
    orderings = build_orderings(["a", "b", "c", "d"])
    assert orderings.perms[0] == (0, 1, 2, 3)
    assert len(orderings.perms) == 24 == len(set(orderings.perms))
    assert orderings.complete and orderings.n_distinct == 24
    assert orderings.chance == pytest.approx(1 / 24)


def test_duplicate_texts_collapse_and_set_chance() -> None:
    options = ["same", "same", "other", "third"]
    orderings = build_orderings(options)
    rendered = {tuple(options[i] for i in p) for p in orderings.perms}
    assert len(orderings.perms) == len(rendered) == 12
    assert orderings.chance == pytest.approx(1 / 12)


def test_single_distinct_ordering_is_kept_alone() -> None:
    orderings = build_orderings(["x", "x"])
    assert orderings.perms == ((0, 1),)


def test_five_options_all_120_by_default() -> None:
    orderings = build_orderings(list("abcde"))
    assert len(orderings.perms) == 120 and orderings.complete


def test_six_options_sampled_with_original_and_reproducible() -> None:
    options = list("abcdef")
    first = build_orderings(options, max_orderings=120, seed=7, item_id="item-1")
    again = build_orderings(options, max_orderings=120, seed=7, item_id="item-1")
    other = build_orderings(options, max_orderings=120, seed=7, item_id="item-2")
    assert not first.complete and first.n_distinct == math.factorial(6)
    assert first.perms[0] == tuple(range(6))
    assert len(first.perms) == 120 == len(set(first.perms))
    assert first.perms == again.perms
    assert first.perms != other.perms
    assert all(sorted(p) == list(range(6)) for p in first.perms)


def test_sampling_just_above_the_cap_with_duplicates() -> None:
    # 5 options with one repeated text: 60 distinct orderings, cap 59 forces sampling.
    options = ["a", "a", "b", "c", "d"]
    orderings = build_orderings(options, max_orderings=59, item_id="x")
    rendered = [tuple(options[i] for i in p) for p in orderings.perms]
    assert len(rendered) == 59 == len(set(rendered))
    assert rendered[0] == tuple(options)


def test_sampled_orderings_are_uniform_over_non_identity() -> None:
    # With 7 options and cap 2 each item draws one non-identity ordering; over many item ids the
    # position of option 0 must be uniform (chi-square, fixed seeds so this cannot flake).
    counts = np.zeros(7)
    for i in range(3500):
        counts[build_orderings(list("abcdefg"), max_orderings=2, item_id=str(i)).perms[1].index(0)] += 1
    expected = counts.sum() / 7
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 22.46  # 0.999 quantile of chi-square with 6 df


@pytest.mark.parametrize("bad", [[], ["only"]])
def test_too_few_options_raise(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="at least two options"):
        build_orderings(bad)
