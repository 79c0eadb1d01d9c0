"""Tests for the quantity reader behind the sorted-numbers rule (``core.quantities``)."""

from __future__ import annotations

import pytest

from lm_eval_leakage.core.quantities import parse_quantity

# (text, value); values from reading the option by hand.
QUANTITIES = [
    ("42", 42.0),
    ("-3.5", -3.5),
    ("1,200", 1200.0),
    ("$5", 5.0),
    ("¥20", 20.0),
    ("12%", 12.0),
    ("3.5 cm", 3.5),
    ("5 years", 5.0),
    ("0.5 mg/kg", 0.5),
    ("25 kg/m^2", 25.0),
    ("100°C", 100.0),
    ("3天", 3.0),
    ("1/2", 0.5),
    ("1 1/2", 1.5),
    ("10^3", 1000.0),
    ("2 × 10^5", 200000.0),
    ("10⁻³", 0.001),
    ("1.5e3", 1500.0),
    ("10-20", 15.0),
    ("3~5天", 4.0),
    ("between 10 and 20", 15.0),
    ("500 BC", -500.0),
    ("1960s", 1960.0),
    ("March 5, 1990", 19900305.0),
    ("1990-03-05", 19900305.0),
    ("1990年3月5日", 19900305.0),
]


@pytest.mark.parametrize(("text", "value"), QUANTITIES)
def test_parse_quantity(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "text", ["ligament", "1:2", "1 and 2", "5 x 2", "2 apples are very good", "3个细胞核分裂", "I only", ""]
)
def test_parse_quantity_rejects_non_quantities(text: str) -> None:
    assert parse_quantity(text) is None


def test_one_sided_bounds_order_with_ranges() -> None:
    values = [parse_quantity(text) for text in ["<18", "18-30", "31-50", ">50"]]
    assert all(value is not None for value in values)
    assert values == sorted(values)  # type: ignore[type-var]
    assert parse_quantity("60岁以上") > 60.0  # type: ignore[operator]
