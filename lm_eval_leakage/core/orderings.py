"""Orderings of an item's option contents.

An ordering is a permutation ``perm`` of option indices: position ``p`` shows the original option
``perm[p]``. Letters stay fixed, contents move (Ni et al., arXiv 2409.01790, section 3).
Ordering 0 is always the identity, i.e. the order in which the benchmark published the item.

Options with identical text make some orderings render to the same string; those are collapsed
so that every scored ordering is distinct, and the item's chance level (the probability that the
original comes out on top when the model has no preference) is ``1 / number of scored orderings``.

Pure module: standard library and numpy only.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_ORDERINGS = 120
"""Enumerate every distinct ordering up to this many (5! = 120, so five-option CMB items are complete)."""


@dataclass(frozen=True)
class Orderings:
    """The orderings scored for one item.

    Attributes:
        perms: One tuple per ordering; ``perms[j][p]`` is the original index of the option shown at
            position ``p`` in ordering ``j``. ``perms[0]`` is the identity.
        n_distinct: How many distinct orderings the item has in all (``k!`` divided by the
            factorials of the multiplicities of repeated option texts).
        complete: True when every distinct ordering is in ``perms``; False when they were sampled.
    """

    perms: tuple[tuple[int, ...], ...]
    n_distinct: int
    complete: bool

    @property
    def chance(self) -> float:
        """Probability that the original ranks first among the scored orderings under no leakage."""
        return 1.0 / len(self.perms)


def count_distinct_orderings(options: Sequence[str]) -> int:
    """Number of distinct orderings of ``options``: k! / prod(m_i!) over repeated texts."""
    total = math.factorial(len(options))
    for multiplicity in Counter(options).values():
        total //= math.factorial(multiplicity)
    return total


def item_seed(seed: int, item_id: str) -> np.random.SeedSequence:
    """Seed for one item's sampling, stable across processes, ranks and item order."""
    return np.random.SeedSequence([seed, zlib.crc32(item_id.encode("utf-8"))])


def build_orderings(
    options: Sequence[str],
    *,
    max_orderings: int = DEFAULT_MAX_ORDERINGS,
    seed: int = 1234,
    item_id: str = "",
) -> Orderings:
    """Build the orderings to score for one item.

    All distinct orderings when there are at most ``max_orderings`` of them, in lexicographic order
    of permutations (so the identity comes first); otherwise the identity plus
    ``max_orderings - 1`` distinct non-identity orderings drawn uniformly without replacement
    with a generator seeded from ``(seed, item_id)``.

    Under no leakage the original and the sampled orderings are exchangeable, so the chance level
    stays ``1 / len(perms)`` when sampling too.

    Args:
        options: The option texts in their original order.
        max_orderings: Cap on the number of orderings (at least 2).
        seed: Global seed for sampling.
        item_id: Identifies the item, so that every item draws its own reproducible sample.

    Returns:
        The orderings; ``perms[0]`` is the identity.

    Raises:
        ValueError: Fewer than two options, or ``max_orderings < 2``.
    """
    k = len(options)
    if k < 2:
        raise ValueError(f"an item needs at least two options to reorder, got {k}")
    if max_orderings < 2:
        raise ValueError(f"max_orderings must be at least 2, got {max_orderings}")
    n_distinct = count_distinct_orderings(options)
    identity = tuple(range(k))

    if n_distinct <= max_orderings:
        seen: set[tuple[str, ...]] = set()
        perms: list[tuple[int, ...]] = []
        for perm in itertools.permutations(range(k)):
            rendered = tuple(options[i] for i in perm)
            if rendered not in seen:
                seen.add(rendered)
                perms.append(perm)
        return Orderings(perms=tuple(perms), n_distinct=n_distinct, complete=True)

    rng = np.random.default_rng(item_seed(seed, item_id))
    seen = {tuple(options)}
    perms = [identity]
    # Rejection sampling: every distinct rendering is equally likely per draw, so even when
    # n_distinct barely exceeds the cap this is a coupon-collector run of a few hundred draws.
    while len(perms) < max_orderings:
        perm = tuple(int(i) for i in rng.permutation(k))
        rendered = tuple(options[i] for i in perm)
        if rendered not in seen:
            seen.add(rendered)
            perms.append(perm)
    return Orderings(perms=tuple(perms), n_distinct=n_distinct, complete=False)
