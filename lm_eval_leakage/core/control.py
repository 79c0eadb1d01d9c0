"""A control set built from the benchmark itself, so that no training corpus can contain it.

Each control item keeps an item's question and takes the options of another item of the same subject
with the same number of options, in that donor's published order. The question-options pairing
exists nowhere, so a model cannot have memorised it; what remains is the model's own preference for
the published order of options as such (sorted numbers, "All of the above" last, the donor's
ordering if the donor leaked). Scored like the benchmark, the control therefore measures the
model's null floor from the same kind of text, and "observed minus control" is a conservative
estimate of leakage: a donor that leaked raises the control too.

Pure module: standard library and numpy only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from lm_eval_leakage.core.items import Item

CONTROL_SUFFIX = "~control"


def control_items(items: Sequence[Item], *, seed: int = 0) -> list[Item]:
    """One control item per item that has a donor: same subject, same number of options, not itself.

    Donors are assigned by a random derangement within each (subject, number of options) group, so
    every item lends its options exactly once; an item alone in its group gets no control.

    Args:
        items: The benchmark's items.
        seed: Seed of the derangement.

    Returns:
        Control items, in the order of ``items``, with ids ``<id>~control``.
    """
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[(item.subject, len(item.options))].append(index)
    rng = np.random.default_rng(seed)
    donor_of: dict[int, int] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        order = [members[i] for i in rng.permutation(len(members))]
        # Shifting a random order by one is a derangement: nobody lends to themselves.
        for taker, donor in zip(order, order[1:] + order[:1], strict=True):
            donor_of[taker] = donor
    return [
        replace(item, id=item.id + CONTROL_SUFFIX, options=items[donor_of[i]].options)
        for i, item in enumerate(items)
        if i in donor_of
    ]
