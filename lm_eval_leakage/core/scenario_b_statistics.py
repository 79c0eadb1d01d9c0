"""The calibrated scenario-b detector's machinery: designs, statistics, Gaussian tables, mirror and control nulls.

An item's ordering scores are reduced to two statistics, ``T+`` (how much the scores look like a
trained best ordering) and its mirror ``T-`` (the same for the negated scores); under no leakage
the scores are taken to be symmetric about their centre, so ``T+`` and ``T-`` share one law. The
production statistic is slot agreement (:func:`slot_agreement_design`); the studentised maximum
(Grubbs' statistic) is the other one, and the only one with a Gaussian table. The model of
an unseen item, the statistics, the nulls and the measured figures behind these choices are in
docs/method.md, section 6. The public entry points are in :mod:`scenario_b`; experimental
statistics (the additive residual, the gap ratio) plug their own designs into :func:`fit_items`
from :mod:`scenario_b_experimental`.

Pure module: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

REASON_TOO_FEW: Final[str] = "fewer than 3 orderings"
REASON_NON_FINITE: Final[str] = "non-finite score"
REASON_ALL_EQUAL: Final[str] = "all scores equal"
REASON_EXACT_FIT: Final[str] = "scores fit the model exactly (no residual variation)"
REASON_TOO_FEW_ITEMS: Final[str] = "fewer than 2 valid items for the mirror null"
REASON_INVALID_ITEM: Final[str] = "the item had no valid statistic"

SLOT_AGREEMENT: Final[str] = "slot_agreement"
"""Name (statistic and fitted model) of the default statistic, :func:`slot_agreement_design`."""
TABLE_MODELS: Final[frozenset[str]] = frozenset({"intercept", "additive", "gap"})
"""Fitted models whose statistic has a Gaussian table (its law under i.i.d. scores is the null)."""
REASON_NO_CONTROL: Final[str] = "no control item with the same statistic and number of orderings"
REASON_NO_TABLE: Final[str] = "the statistic has no Gaussian table (its null is made of other items)"

MIN_MIRROR_ITEMS: Final[int] = 200
"""``null="auto"`` uses the mirror null in each pool (valid items sharing a fitted model and a number
of orderings) of at least this many items, and the Gaussian table in smaller pools."""

_CHUNK_VALUES: Final[int] = 1 << 22  # Monte Carlo draws per chunk (32 MiB of float64)
_CACHE_LIMIT: Final[int] = 256

Statistics = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]
"""``T+``, ``T-``, standout ordering and "the model fits exactly" mask, one entry per item."""
ResolvedNull = Literal["mirror", "gaussian", "mirror+gaussian"]


@dataclass(frozen=True, eq=False)
class Design:
    """The fitted model and statistic for one set of orderings.

    Attributes:
        model: Name of the fitted model, recorded per item (``"intercept"`` for the default).
        statistic: Name of the statistic (part of the Gaussian table's cache key).
        basis: ``(n, r)`` orthonormal basis of the model's column space.
        residual_diag: ``(n,)`` diagonal of ``M = I - basis @ basis.T``.
        residual_df: Residual degrees of freedom of the fit.
        null_key: Identifies the null law of the statistic (row order of the orderings does not
            matter).
        compute: ``(scores, design) -> Statistics`` for the items of one design.
    """

    model: str
    statistic: str
    basis: NDArray[np.float64]
    residual_diag: NDArray[np.float64]
    residual_df: int
    null_key: Hashable
    compute: Callable[[NDArray[np.float64], Design], Statistics]


@dataclass(frozen=True, eq=False)
class FittedItems:
    """Per-item statistics of a batch, before any null is applied.

    Attributes:
        upper: ``T+`` per item (NaN where the item has no statistic).
        lower: ``T-`` per item.
        standout: Index of the standout ordering (-1 where invalid).
        reasons: Per item, why it has no statistic (``""`` where valid).
        models: Per item, the fitted model (``""`` where invalid).
        designs: The designs used, one per group of items shown the same orderings.
        design_of: Per item, its index into ``designs`` (-1 where invalid).
    """

    upper: NDArray[np.float64]
    lower: NDArray[np.float64]
    standout: NDArray[np.int64]
    reasons: list[str]
    models: list[str]
    designs: list[Design]
    design_of: NDArray[np.int64]


_NULL_TABLES: dict[tuple[Hashable, str, int, int | None], NDArray[np.float64]] = {}


def remember(cache: dict[Any, Any], key: Hashable, value: Any) -> None:
    """Store ``value`` in ``cache``, dropping the oldest entry beyond ``_CACHE_LIMIT``."""
    if len(cache) >= _CACHE_LIMIT:
        cache.pop(next(iter(cache)))
    cache[key] = value


def grubbs(scores: NDArray[np.float64], design: Design | None = None) -> Statistics:
    """Studentised maximum ``(max - mean) / sd`` and its mirror ``(mean - min) / sd`` per item."""
    mean = scores.mean(axis=1)
    sd = scores.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (scores.max(axis=1) - mean) / sd
        lower = (mean - scores.min(axis=1)) / sd
    return upper, lower, np.argmax(scores, axis=1), sd <= 0.0


def intercept_design(
    n: int, statistic: str = "grubbs", compute: Callable[[NDArray[np.float64], Design], Statistics] = grubbs
) -> Design:
    """The intercept-only model of ``n`` orderings (no position effects)."""
    return Design(
        model="intercept",
        statistic=statistic,
        basis=np.full((n, 1), n**-0.5),
        residual_diag=np.full(n, 1.0 - 1.0 / n),
        residual_df=n - 1,
        null_key=("intercept", statistic, n),
        compute=compute,
    )


def studentised_max_design(perms: NDArray[np.int64]) -> Design:
    """The design of the studentised maximum over the item's orderings."""
    return intercept_design(perms.shape[0])


def shared_positions(perms: NDArray[np.int64]) -> NDArray[np.float64]:
    """``(n, n)``: in how many positions orderings ``i`` and ``j`` show the same option."""
    return np.asarray((perms[:, None, :] == perms[None, :, :]).sum(axis=2), dtype=np.float64)


def _agreement(scores: NDArray[np.float64], shared: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per item: correlation of its scores with the template of its best ordering (see :func:`slot_agreement_design`)."""
    best = np.argmax(scores, axis=1)
    agree = shared[best]  # (m, n)
    agree[np.arange(len(best)), best] *= 2.0  # the ordering itself: its k positions, and k more as a whole text
    agree = agree - agree.mean(axis=1, keepdims=True)
    centred = scores - scores.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (agree * centred).sum(axis=1) / np.sqrt((agree**2).sum(axis=1) * (centred**2).sum(axis=1))
    return value, best


def slot_agreement_design(perms: NDArray[np.int64]) -> Design:
    """The default detector's design: agreement of the scores with the best ordering, position by position.

    ``T+`` is the Pearson correlation, over the item's orderings, between the scores and a template
    of "this ordering was trained on": the number of positions in which each ordering shows the
    same option as the best-scoring one, the best one itself counted twice (``2k``: its ``k``
    positions, and ``k`` more for being the whole trained text). ``T-`` is the same for the
    negated scores (the worst ordering). Training on one ordering raises every ordering that
    puts some of its options in the same places, roughly in proportion to how many, which a
    studentised maximum does not see; the doubled weight keeps a lone spike at the best ordering
    (correlation 0.88 for four options) detectable too. Why, and the measurements:
    docs/method.md, section 6.4. Unseen items have the positional structure too (a model's
    preferences for options in positions add up the same way), so the statistic has no law of
    its own: its null is always made of other items (control items, or the mirror ``T-``),
    never a Gaussian table.
    """
    shared = shared_positions(perms)

    def compute(scores: NDArray[np.float64], design: Design) -> Statistics:
        upper, standout = _agreement(scores, shared)
        lower, _ = _agreement(-scores, shared)
        return upper, lower, standout, ~np.isfinite(upper) | ~np.isfinite(lower)

    n = perms.shape[0]
    return Design(
        model=SLOT_AGREEMENT,
        statistic=SLOT_AGREEMENT,
        basis=np.full((n, 1), n**-0.5),
        residual_diag=np.full(n, 1.0 - 1.0 / n),
        residual_df=n - 1,
        null_key=(SLOT_AGREEMENT, perms.tobytes()),
        compute=compute,
    )


# ---------------------------------------------------------------------------------------------
# Per-item statistics, vectorised over items that share one design.
# ---------------------------------------------------------------------------------------------


def check_perms(perms: NDArray[np.int64], n: int) -> None:
    """Raise ValueError unless ``perms`` has ``n`` orderings, each a permutation of 0..k-1."""
    if perms.shape[-2] != n:
        raise ValueError(f"perms has {perms.shape[-2]} orderings but scores have {n}")
    k = perms.shape[-1]
    if not np.array_equal(np.sort(perms, axis=-1), np.broadcast_to(np.arange(k), perms.shape)):
        raise ValueError("every row of perms must be a permutation of 0..k-1")


def screen(values: NDArray[np.float64]) -> list[str]:
    """Per item: ``""`` when usable, else why not (non-finite score, all scores equal)."""
    finite = np.all(np.isfinite(values), axis=1)
    safe = np.where(finite[:, None], values, 0.0)
    magnitude = np.maximum(np.max(np.abs(safe), axis=1), 1.0)
    equal = finite & (np.ptp(safe, axis=1) <= 1e-12 * magnitude)
    return [
        REASON_NON_FINITE if not ok else (REASON_ALL_EQUAL if same else "")
        for ok, same in zip(finite, equal, strict=True)
    ]


def design_groups(
    orderings: NDArray[np.int64], usable: NDArray[np.bool_]
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Usable items grouped by the orderings they were shown: ``[(perms, item indices), ...]``."""
    if orderings.ndim == 2:
        members = np.flatnonzero(usable)
        return [(orderings, members)] if members.size else []
    _, first, inverse = np.unique(
        orderings.reshape(len(orderings), -1), axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.ravel()
    groups = [(orderings[i], np.flatnonzero(usable & (inverse == g))) for g, i in enumerate(first)]
    return [(perms, members) for perms, members in groups if members.size]


def fit_items(
    values: NDArray[np.float64],
    orderings: NDArray[np.int64],
    design_for: Callable[[NDArray[np.int64]], Design] = studentised_max_design,
) -> FittedItems:
    """``T+``, ``T-`` and the standout ordering of every usable item (``orderings`` checked)."""
    m = len(values)
    reasons = screen(values)
    upper = np.full(m, np.nan)
    lower = np.full(m, np.nan)
    standout = np.full(m, -1, dtype=np.int64)
    models = [""] * m
    designs: list[Design] = []
    design_of = np.full(m, -1, dtype=np.int64)
    for group_perms, members in design_groups(orderings, np.array([not r for r in reasons])):
        design = design_for(group_perms)
        up, low, idx, exact = design.compute(values[members], design)
        for i in members[exact]:
            reasons[i] = REASON_EXACT_FIT
        kept = members[~exact]
        upper[kept], lower[kept], standout[kept] = up[~exact], low[~exact], idx[~exact]
        for i in kept:
            models[i] = design.model
        design_of[kept] = len(designs)
        designs.append(design)
    return FittedItems(upper, lower, standout, reasons, models, designs, design_of)


# ---------------------------------------------------------------------------------------------
# Nulls.
# ---------------------------------------------------------------------------------------------


def gaussian_table(design: Design, n_null: int, rng: np.random.Generator | int) -> NDArray[np.float64]:
    """Sorted ``T+`` of ``n_null`` items with i.i.d. standard normal scores on ``design``."""
    seed = None if isinstance(rng, np.random.Generator) else int(rng)
    key = (design.null_key, design.statistic, n_null, seed)
    if seed is not None and key in _NULL_TABLES:
        return _NULL_TABLES[key]
    generator = np.random.default_rng(rng)
    n = design.residual_diag.shape[0]
    rows = max(1, _CHUNK_VALUES // n)
    parts = []
    for start in range(0, n_null, rows):
        draws = generator.standard_normal((min(rows, n_null - start), n))
        parts.append(design.compute(draws, design)[0])
    table = np.sort(np.concatenate(parts))
    table.setflags(write=False)
    if seed is not None:
        remember(_NULL_TABLES, key, table)
    return table


def upper_tail_pvalues(statistic: NDArray[np.float64], null_sorted: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(1 + #{null >= t}) / (N + 1)``: the Monte Carlo p-value, never 0."""
    count = null_sorted.size - np.searchsorted(null_sorted, statistic, side="left")
    return np.asarray((1.0 + count) / (null_sorted.size + 1.0), dtype=np.float64)


def gaussian_pvalues(
    fitted: FittedItems, members: NDArray[np.int64], n_null: int, rng: np.random.Generator | int
) -> NDArray[np.float64]:
    """Gaussian-table p-values of ``members``, one table per design."""
    out = np.full(members.size, np.nan)
    for key in np.unique(fitted.design_of[members]):
        chosen = fitted.design_of[members] == key
        if fitted.designs[key].model not in TABLE_MODELS:
            for i in members[chosen]:
                fitted.reasons[i] = REASON_NO_TABLE
            continue
        table = gaussian_table(fitted.designs[key], n_null, rng)
        out[chosen] = upper_tail_pvalues(fitted.upper[members[chosen]], table)
    return out


def mirror_pvalues(upper: NDArray[np.float64], lower: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(1 + #{l != i: T-_l >= T+_i}) / m`` over the ``m`` items given."""
    m = upper.size
    ordered = np.sort(lower)
    count = m - np.searchsorted(ordered, upper, side="left") - (lower >= upper)
    return (1.0 + count) / m


def pool_groups(model: NDArray[Any], n_orderings: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Valid items that share a fitted model and a number of orderings (one law of ``T+`` each)."""
    valid = model != ""
    return [np.flatnonzero(valid & (model == name) & (n_orderings == n)) for name, n in pool_keys(model, n_orderings)]


def pool_keys(model: NDArray[Any], n_orderings: NDArray[np.int64]) -> list[tuple[str, int]]:
    """The ``(fitted model, number of orderings)`` of each of :func:`pool_groups`' groups, in its order."""
    valid = model != ""
    return sorted({(str(name), int(n)) for name, n in zip(model[valid], n_orderings[valid], strict=True)})


def pooled_pvalues(
    upper: NDArray[np.float64],
    lower: NDArray[np.float64],
    groups: list[NDArray[np.int64]],
    gaussian: Callable[[NDArray[np.int64]], tuple[NDArray[np.float64], int]],
    null: Literal["auto", "mirror"],
    reasons: list[str],
    model_of: Callable[[NDArray[np.int64]], str] = lambda members: "intercept",
) -> tuple[NDArray[np.float64], ResolvedNull, int]:
    """Mirror-null p-values within each pool group (T+ laws differ across models and ``n``).

    ``null="auto"`` uses the mirror null in groups of at least ``MIN_MIRROR_ITEMS`` items and
    ``gaussian`` (a callable ``members -> p-values``) in the others, if their statistic has a
    Gaussian table (``model_of(members)`` in :data:`TABLE_MODELS`), else the mirror null at any
    size; ``"mirror"`` uses it in every group (a group of one item gets NaN and a reason).
    Returns the p-values, the null(s) used, and the smallest null sample behind a p-value (the
    conservative size for intervals).
    """
    pvalue = np.full(upper.size, np.nan)
    used: set[str] = set()
    sizes: list[int] = []
    for members in groups:
        if null == "auto" and members.size < MIN_MIRROR_ITEMS and model_of(members) in TABLE_MODELS:
            pvalue[members], size = gaussian(members)
            used.add("gaussian")
        elif members.size == 1:
            reasons[members[0]] = REASON_TOO_FEW_ITEMS
            continue
        else:
            pvalue[members] = mirror_pvalues(upper[members], lower[members])
            size = members.size - 1
            used.add("mirror")
        sizes.append(size)
    if not used:  # no valid item: what the null would have been
        used.add("gaussian" if null == "auto" else "mirror")
    resolved = "mirror+gaussian" if len(used) == 2 else used.pop()
    return pvalue, resolved, min(sizes, default=0)  # type: ignore[return-value]


def control_pvalues(
    upper: NDArray[np.float64],
    groups: list[NDArray[np.int64]],
    keys: list[tuple[str, int]],
    control: dict[tuple[str, int], NDArray[np.float64]],
    reasons: list[str],
) -> tuple[NDArray[np.float64], int]:
    """P-values of each pool's ``T+`` against the control items' ``T+`` of the same pool key.

    ``groups[g]`` are the items of pool ``keys[g]`` (fitted model, number of orderings);
    ``control[key]`` the control items' ``T+`` values there. ``p = (1 + #{control >= T+}) /
    (N + 1)``. A pool with no control item gets NaN and a reason. Returns the p-values and the
    smallest control sample behind one (0 when none was).
    """
    pvalue = np.full(upper.size, np.nan)
    sizes = []
    for members, key in zip(groups, keys, strict=True):
        reference = np.sort(control.get(key, np.zeros(0)))
        if reference.size == 0:
            for i in members:
                reasons[i] = REASON_NO_CONTROL
            continue
        pvalue[members] = upper_tail_pvalues(upper[members], reference)
        sizes.append(reference.size)
    return pvalue, min(sizes, default=0)
