"""Text of one ordering, split into a context (question) and a continuation (option block).

The question prefix is the same for every ordering of an item, so scoring only the option block,
conditioned on the question, gives the same differences between orderings as scoring the whole
text (docs/method.md, section 2): lm-eval's ``loglikelihood(context, continuation)`` reproduces the
reference's rankings without its token search.

Pure module: standard library only.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

Template = Literal["reference", "native"]
TEMPLATES: tuple[Template, ...] = ("reference", "native")
LETTERS = string.ascii_uppercase


def _check_letters(k: int) -> None:
    if k > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options can be lettered, got {k}")


def reference_context(question: str) -> str:
    """Context of the reference template: a leading newline, the question and a colon."""
    return "\n" + question + ":\n"


def reference_block(options: Sequence[str]) -> str:
    """Option block of the reference template, byte for byte for four options.

    ``"A:" + o1 + "\\nB:" + o2 + "\\nC:" + o3 + " \\nD:" + o4 + "\\n"``: no space after the colon,
    a stray space at the end of the C line and a trailing newline. For other numbers of options the
    same pattern continues (E:, F:, ...); the stray space stays on the C line whenever a D line
    follows it, as in the reference.
    """
    _check_letters(len(options))
    lines = [f"{LETTERS[i]}:{text}" for i, text in enumerate(options)]
    if len(lines) >= 4:
        lines[2] += " "
    return "\n".join(lines) + "\n"


def native_block(options: Sequence[str]) -> str:
    """Option block in lm-eval's native multiple-choice style: ``"A. text"`` lines."""
    _check_letters(len(options))
    return "".join(f"{LETTERS[i]}. {text}\n" for i, text in enumerate(options))


def render(
    question: str,
    options: Sequence[str],
    *,
    template: Template = "reference",
    header: str = "",
) -> tuple[str, str]:
    """Render one ordering as ``(context, continuation)``.

    Args:
        question: The question text.
        options: The option texts in the order of this ordering.
        template: ``"reference"`` (Ni et al.'s text) or ``"native"`` (the benchmark's own
            lm-eval prompt style: ``header``, the question, then ``"A. ..."`` lines).
        header: Instruction line(s) put before the question by the native template; ignored by
            the reference template, which has none.

    Returns:
        The context (constant across orderings) and the continuation (the option block).
    """
    if template == "reference":
        return reference_context(question), reference_block(options)
    if template == "native":
        return header + question + "\n", native_block(options)
    raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
