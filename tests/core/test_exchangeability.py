"""Tests for the exchangeability guard (``core.exchangeability``; docs/method.md, section 5.3)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lm_eval_leakage.core.exchangeability import (
    ALL_RULES,
    check_exchangeable,
    filter_exchangeable,
)

NEUTRAL = ["ligament", "muscle", "blood"]  # three ordinary options to pad an item with


def _fires_on_last(option: str) -> bool:
    report = check_exchangeable([*NEUTRAL, option], rules=("refers_to_options",))
    return not report.exchangeable


# Options that refer to other options, their letters or numbered statements.
REFERRING = [
    "All of the above",
    "all of the above.",
    "None of the above",
    "None of these",
    "Both of the above",
    "Neither of these",
    "All of these options.",
    "all of them",
    "Any of the above is an acceptable alternative.",
    "All of the options given are correct",
    "None of the statements",
    "All are correct",
    "Both",
    "Neither.",
    "none of above.",
    "both A and B",
    "A and B",
    "Both A and C",
    "A, B and C",
    "A, B, and C",
    "neither A nor B",
    "either A or B.",
    "(a) and (b)",
    "both (A) and (C)",
    "(i) and (iii) only",
    "(i), (ii), (iii), and (iv)",
    "I and II only",
    "II and III are correct.",
    "I only",
    "only II",
    "only 1 and 2",
    "1 and 2 only",
    "1, 2 and 3 only",
    "statements 1 and 3",
    "a. and c. above",
    # Chinese
    "以上都是",
    "以上都不是",
    "以上都对",
    "以上都不对",
    "以上均是",
    "以上均不是",
    "以上皆是",
    "以上皆非",
    "以上全是",
    "以上说法均正确",
    "上述都不对",
    "上面都对",
    "全部都是",
    "都不是",
    "均正确",
    "A和B",
    "A和C",
    "A、B和C",
    "A+B",
    "A+C+D",
    "B和D都对",
    "只有A和C",
    "①③",
    "①和②",
]

# Ordinary content that mentions letters, quantifiers or 以上 without referring to options.
NOT_REFERRING = [
    "Vitamin A and vitamin D",
    "Type A and type B personalities",
    "Both mitosis and meiosis",
    "Neither price level nor real GDP",
    "Both supply and demand shift rightward.",
    "They both require research monitoring.",
    "No-one is above the law.",
    "It is symmetrical (half falls above the mean, half below)",
    "None",
    "All",
    "A",
    "AB",
    "a and b",
    "1 and 2",
    "4, 7",
    "1/2",
    "3+5",
    "I have a dream",
    "any examination given by your state or country",
    "Plan A and plan B",
    "Hepatitis A and B vaccines",
    # Chinese
    "维生素A、B、C缺乏",
    "60岁以上",
    "突眼度19mm以上",
    "均数",
    "几何均数和中位数",
    "全部观察值",
    "腹壁静脉血流全部向上",
    "AB型血",
    "含有DNA和RNA两种核酸",
    "前面部分",
    "上面观",
]


@pytest.mark.parametrize("option", REFERRING)
def test_referring_options_fire(option: str) -> None:
    assert _fires_on_last(option), option


@pytest.mark.parametrize("option", NOT_REFERRING)
def test_ordinary_options_do_not_fire(option: str) -> None:
    assert not _fires_on_last(option), option


def test_reason_names_rule_index_and_text() -> None:
    report = check_exchangeable(["cat", "dog", "bird", "All of the above"])
    assert not report.exchangeable
    assert report.reasons == ("option 3 (D) refers to other options: 'All of the above'",)


def test_exchangeable_item_has_no_reasons() -> None:
    report = check_exchangeable(["ligament", "muscle", "blood", "cartilage"])
    assert report.exchangeable
    assert report.reasons == ()


# (options, sorted?) for the numeric rule.
NUMERIC_ITEMS = [
    (["1", "2", "5", "10"], True),
    (["10", "5", "2", "1"], True),
    (["$5", "$10", "$20", "$50"], True),
    (["12%", "25%", "50%", "75%"], True),
    (["1/8", "1/4", "1/2", "1"], True),
    (["10^1", "10^2", "10^3", "10^4"], True),
    (["1914", "1918", "1939", "1945"], True),
    (["Fewer than 7", "Between 8 and 15", "Between 16 and 25", "More than 25"], True),
    (["1天", "3天", "7天", "14天"], True),
    (["40", "42", "45", "47", "50"], True),
    (["3", "1", "4", "2"], False),
    (["3.5 cm", "1 cm", "2 cm", "10 cm"], False),
    (["5", "5", "5", "5"], False),
    (["1", "2"], False),  # fewer than 3 options
    (["1", "2", "three", "4"], False),  # one option is not a quantity
]


@pytest.mark.parametrize(("options", "is_sorted"), NUMERIC_ITEMS)
def test_sorted_numeric_rule(options: list[str], is_sorted: bool) -> None:
    report = check_exchangeable(options, rules=("sorted_numeric",))
    assert report.exchangeable is not is_sorted
    if is_sorted:
        assert report.reasons[0].startswith("options are sorted numbers")


@pytest.mark.parametrize(
    ("options", "enumerates"),
    [
        (["True, True", "True, False", "False, True", "False, False"], True),
        (["Wrong, Wrong", "Wrong, Not wrong", "Not wrong, Wrong", "Not wrong, Not wrong"], True),
        (["True, True", "True, True", "False, True", "False, False"], False),  # repeated pair
        (["red, blue", "green, blue", "red, green", "blue, red"], False),  # three labels
    ],
)
def test_label_pairs_rule(options: list[str], enumerates: bool) -> None:
    report = check_exchangeable(options, rules=("label_pairs",))
    assert report.exchangeable is not enumerates


def test_rules_can_be_switched_off_and_are_validated() -> None:
    options = ["1", "2", "3", "All of the above"]
    assert not check_exchangeable(options).exchangeable
    assert check_exchangeable(options, rules=("sorted_numeric", "label_pairs")).exchangeable
    with pytest.raises(ValueError, match="unknown exchangeability rules"):
        check_exchangeable(options, rules=("no_such_rule",))  # type: ignore[arg-type]
    assert set(ALL_RULES) == {"refers_to_options", "sorted_numeric", "label_pairs"}


def test_several_rules_report_several_reasons() -> None:
    report = check_exchangeable(["1", "2", "3", "4", "None of the above"])
    assert len(report.reasons) == 1  # "None of the above" is not a number: no numeric rule
    report = check_exchangeable(["以上都是", "A和B", "1", "2"])
    assert [reason.split(" (")[0] for reason in report.reasons] == ["option 0", "option 1"]


def test_filter_exchangeable_mask() -> None:
    items = [
        ["ligament", "muscle", "blood", "cartilage"],
        ["cat", "dog", "bird", "All of the above"],
        ["1", "2", "3", "4"],
        ("肝", "肾", "心", "以上都不是"),
        ["Vitamin A and vitamin D", "Vitamin B", "Vitamin C", "Vitamin E"],
    ]
    mask = filter_exchangeable(items)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, False, False, False, True]
    assert filter_exchangeable([]).shape == (0,)


def test_module_is_pure() -> None:
    code = (
        "import sys, lm_eval_leakage.core.exchangeability, lm_eval_leakage.core.scenario_b\n"
        "heavy = {'lm_eval', 'torch', 'datasets', 'sklearn', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
