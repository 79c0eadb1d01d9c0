"""The leaked fraction of a validation run: its rounding, its bounds, the split it gives, the CLI and resume.

No model: the items are hand-built (``support.data.fake_records``) and lengths are counted in words.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pytest
from support.data import fake_records

from lm_eval_leakage.validation.cli import build_parser, config_from_args, main
from lm_eval_leakage.validation.config import ValidationConfig, leaked_count, min_items
from lm_eval_leakage.validation.experiment import recorded_config
from lm_eval_leakage.validation.report import jsonable
from lm_eval_leakage.validation.sampling import sample_items


def words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- rounding and bounds


@pytest.mark.parametrize(
    ("n_items", "fraction", "expected"),
    [
        (200, 0.1, 20),
        (60, 0.5, 30),
        (61, 0.5, 30),  # 30.5: a tie, rounded down (n_items // 2, as before the option existed)
        (15, 0.1, 1),  # 1.5: a tie, down
        (25, 0.1, 2),  # 2.5: a tie, down
        (25, 0.3, 7),  # 7.5: a tie, down, although 0.3 is not exact in binary
        (10, 0.35, 3),  # 3.5
        (10, 0.36, 4),  # 3.6: nearest
        (10, 0.14, 1),  # 1.4: nearest
        (9, 0.75, 7),  # 6.75
    ],
)
def test_leaked_count_rounds_to_nearest_with_ties_down(n_items: int, fraction: float, expected: int) -> None:
    assert leaked_count(n_items, fraction) == expected
    config = ValidationConfig(out_dir="unused", n_items=n_items, leaked_fraction=fraction)
    assert config.n_leaked == expected


def test_half_leaks_n_items_floor_half_for_every_size() -> None:
    assert all(leaked_count(n, 0.5) == n // 2 for n in range(4, 2001))
    assert ValidationConfig(out_dir="unused").leaked_fraction == 0.5


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, -1, 1.5, 2, math.nan, math.inf, True])
def test_leaked_fraction_outside_the_open_unit_interval_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="leaked_fraction must be a number strictly between 0 and 1"):
        ValidationConfig(out_dir="unused", leaked_fraction=fraction)


@pytest.mark.parametrize(
    ("n_items", "fraction", "smallest"),
    [(4, 0.1, 6), (5, 0.1, 6), (10, 0.01, 51), (4, 0.9, 5), (20, 0.99, 50)],
)
def test_too_few_items_for_the_fraction_is_refused(n_items: int, fraction: float, smallest: int) -> None:
    with pytest.raises(ValueError, match=rf"n_items={n_items} is too small .*\(n_items >= {smallest}"):
        ValidationConfig(out_dir="unused", n_items=n_items, leaked_fraction=fraction)
    assert min_items(fraction) == smallest
    ValidationConfig(out_dir="unused", n_items=smallest, leaked_fraction=fraction)  # accepted


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99])
def test_min_items_is_the_smallest_size_with_a_leaked_and_a_clean_item(fraction: float) -> None:
    def fits(n: int) -> bool:
        return 1 <= leaked_count(n, fraction) <= n - 1

    smallest = min_items(fraction)
    assert fits(smallest) and all(fits(n) for n in range(smallest, smallest + 300))
    assert smallest == 4 or not fits(smallest - 1)


def test_n_items_below_four_is_still_refused() -> None:
    with pytest.raises(ValueError, match="n_items must be at least 4"):
        ValidationConfig(out_dir="unused", n_items=3)


# --------------------------------------------------------------------------- the split


def test_sample_honours_the_fraction_and_keeps_the_items_and_their_order() -> None:
    records = fake_records(300)
    half = sample_items(records, ValidationConfig(out_dir="u", n_items=40, filler=3, max_length=30, seed=2), words)
    tenth = sample_items(
        records,
        ValidationConfig(out_dir="u", n_items=40, filler=3, max_length=30, seed=2, leaked_fraction=0.1),
        words,
    )
    assert [s.role for s in tenth] == ["leaked"] * 4 + ["clean"] * 36 + ["filler"] * 3
    assert [s.item.id for s in tenth] == [s.item.id for s in half]  # only the cut moves
    assert all(s.text and s.shown for s in tenth if s.role != "clean")
    assert all(not s.text and not s.shown for s in tenth if s.role == "clean")


# What sample_items returned for this configuration before the leaked fraction existed (it split at
# n_items // 2): item ids, roles and the orderings trained (scenario b), in order.
PINNED = ValidationConfig(out_dir="u", n_items=11, filler=3, max_length=30, seed=3, scenario="b")
PINNED_SPLIT = [
    ("mmlu-98", "leaked", (3, 1, 0, 2)),
    ("mmlu-162", "leaked", (2, 0, 3, 1)),
    ("mmlu-161", "leaked", (2, 3, 0, 1)),
    ("mmlu-171", "leaked", (1, 2, 0, 3)),
    ("mmlu-246", "leaked", (0, 3, 2, 1)),
    ("mmlu-291", "clean", ()),
    ("mmlu-238", "clean", ()),
    ("mmlu-158", "clean", ()),
    ("mmlu-211", "clean", ()),
    ("mmlu-62", "clean", ()),
    ("mmlu-133", "clean", ()),
    ("mmlu-58", "filler", (2, 0, 1, 3)),
    ("mmlu-180", "filler", (0, 2, 3, 1)),
    ("mmlu-170", "filler", (1, 2, 0, 3)),
]


def test_default_split_is_the_one_written_before_the_option() -> None:
    records = fake_records(300)
    sampled = sample_items(records, PINNED, words)
    assert [(s.item.id, s.role, s.shown) for s in sampled] == PINNED_SPLIT
    for seed in (0, 1, 3):
        for n_items in (10, 11, 60, 61):
            default = ValidationConfig(out_dir="u", n_items=n_items, max_length=30, seed=seed)
            explicit = ValidationConfig(out_dir="u", n_items=n_items, max_length=30, seed=seed, leaked_fraction=0.5)
            got = sample_items(records, default, words)
            assert [s.role for s in got] == ["leaked"] * (n_items // 2) + ["clean"] * (n_items - n_items // 2)
            assert got == sample_items(records, explicit, words)


# --------------------------------------------------------------------------- command line and resume


def test_cli_passes_the_fraction_and_refuses_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--out", "x", "--n-items", "200", "--leaked-fraction", "0.1"])
    config = config_from_args(args)
    assert (config.leaked_fraction, config.n_items, config.n_leaked) == (0.1, 200, 20)
    assert config_from_args(build_parser().parse_args(["--out", "x"])).leaked_fraction == 0.5
    for bad in (["--leaked-fraction", "1"], ["--leaked-fraction", "0"], ["--leaked-fraction", "-0.2"],
                ["--leaked-fraction", "0.01", "--n-items", "20"]):
        with pytest.raises(SystemExit) as stopped:
            main(["--out", "unused", *bad])
        assert stopped.value.code == 2
        assert "leaked_fraction" in capsys.readouterr().err


def test_resume_refuses_another_fraction_and_reads_runs_written_before_it(tmp_path: Path) -> None:
    default = ValidationConfig(out_dir=str(tmp_path))
    tenth = ValidationConfig(out_dir=str(tmp_path), leaked_fraction=0.1)
    written = jsonable(asdict(default))
    assert written["leaked_fraction"] == 0.5  # recorded in run.json (and so in validation.json)
    assert recorded_config({"config": written}, default) == written
    assert recorded_config({"config": written}, tenth) != jsonable(asdict(tenth))
    before = {k: v for k, v in written.items() if k != "leaked_fraction"}  # a run.json from before the option
    assert recorded_config({"config": before}, default) == written
    assert recorded_config({"config": before}, tenth) != jsonable(asdict(tenth))
    assert recorded_config({"config": {**before, "seed": 1}}, default) != written
    assert recorded_config({}, default) == {}
