"""Simulated ordering scores of clean items, shared by the scenario-b tests."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

PERMS = np.array(list(itertools.permutations(range(4))), dtype=np.int64)  # row 0 = identity
N_ORDERINGS, K = PERMS.shape
N_ITEMS = 20_000
NULLS = ["iid_normal", "iid_t3", "additive_normal", "additive_t3"]
"""Laws of clean items: i.i.d. normal or t(3) scores, or additive position effects plus either."""


def position_effects(rng: np.random.Generator, m: int, tau: float) -> NDArray[np.float64]:
    """sum_p beta[perms[j, p], p] with beta ~ N(0, tau^2) per item, plus a random level."""
    beta = rng.standard_normal((m, K, K)) * tau
    effects = sum(beta[:, PERMS[:, p], p] for p in range(K))
    return rng.normal(-60.0, 15.0, (m, 1)) + effects


def null_scores(kind: str, seed: int, m: int = N_ITEMS) -> NDArray[np.float64]:
    """``m`` clean items' scores over the 24 orderings of four options, of law ``kind`` (see ``NULLS``)."""
    rng = np.random.default_rng(seed)
    if kind == "iid_normal":
        return rng.standard_normal((m, N_ORDERINGS))
    if kind == "iid_t3":
        return rng.standard_t(3, (m, N_ORDERINGS))
    noise = rng.standard_normal((m, N_ORDERINGS)) if kind.endswith("normal") else rng.standard_t(3, (m, N_ORDERINGS))
    return position_effects(rng, m, tau=2.0) + noise
