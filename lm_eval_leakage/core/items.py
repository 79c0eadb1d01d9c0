"""A multiple-choice item as every layer sees it, whatever benchmark it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """A multiple-choice item, normalised across benchmarks.

    Attributes:
        id: Stable identifier within its dataset.
        subject: Subject or category ("" when the benchmark has none).
        question: The question text.
        options: Option texts in the published order.
        header: Native-template instruction shown before the question.
    """

    id: str
    subject: str
    question: str
    options: tuple[str, ...]
    header: str = ""


class InvalidItemError(ValueError):
    """A record that cannot be used as a multiple-choice item."""

    def __init__(self, dataset: str, item_id: str, field: str, problem: str) -> None:
        self.dataset, self.item_id, self.field, self.problem = dataset, item_id, field, problem
        super().__init__(f"{dataset}: item {item_id!r}: field {field!r}: {problem}")
