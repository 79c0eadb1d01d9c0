from __future__ import annotations

from lm_eval_leakage.benchmarks.schemas import Item
from lm_eval_leakage.core.control import control_items


def _items() -> list[Item]:
    items = [Item(str(i), "bio", f"Q{i}?", (f"a{i}", f"b{i}", f"c{i}", f"d{i}")) for i in range(5)]
    items += [Item("m1", "math", "M1?", ("1", "2", "3", "4")), Item("m2", "math", "M2?", ("5", "6", "7", "8"))]
    items += [Item("lone", "law", "L?", ("x", "y", "z", "w")), Item("five", "bio", "F?", tuple("vwxyz"))]
    return items


def test_every_item_with_a_group_gets_another_items_options() -> None:
    items = _items()
    controls = control_items(items, seed=1)
    by_id = {c.id: c for c in controls}
    assert set(by_id) == {f"{i.id}~control" for i in items if i.id not in {"lone", "five"}}
    for item in items:
        control = by_id.get(f"{item.id}~control")
        if control is None:
            continue
        assert control.question == item.question and control.subject == item.subject
        assert control.options != item.options
        donor = next(d for d in items if d.options == control.options)
        assert donor.subject == item.subject and len(donor.options) == len(item.options)
    # a derangement: each donor lends exactly once
    lent = [c.options for c in controls]
    assert len(set(lent)) == len(lent)


def test_control_assignment_is_seeded() -> None:
    assert control_items(_items(), seed=4) == control_items(_items(), seed=4)
