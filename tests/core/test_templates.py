from __future__ import annotations

import pytest

from lm_eval_leakage.core.templates import render


def test_reference_template_byte_for_byte_four_options() -> None:
    q, (o1, o2, o3, o4) = "Which is a muscle", ["ligament", "muscle", "blood", "cartilage"]
    context, block = render(q, [o1, o2, o3, o4])
    reference = "\n" + q + ":\nA:" + o1 + "\nB:" + o2 + "\nC:" + o3 + " \nD:" + o4 + "\n"
    assert context + block == reference
    assert context == "\nWhich is a muscle:\n"


def test_reference_template_extends_to_more_and_fewer_options() -> None:
    assert render("Q", list("abcde"))[1] == "A:a\nB:b\nC:c \nD:d\nE:e\n"
    assert render("Q", list("abc"))[1] == "A:a\nB:b\nC:c\n"


def test_native_template() -> None:
    context, block = render("2+2?", ["3", "4"], template="native", header="About maths.\n\n")
    assert context == "About maths.\n\n2+2?\n"
    assert block == "A. 3\nB. 4\n"


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown template"):
        render("Q", ["a", "b"], template="fancy")  # type: ignore[arg-type]
