"""Exchangeability guard: find items whose option order is fixed by the options' content.

The leakage test of Ni et al. (arXiv 2409.01790, section 3) assumes that a model which never saw an
item has no reason to prefer the published order of its options over any other. That is false when
the options themselves fix an order (docs/method.md, section 4, weakness 4):

* an option refers to other options or to their letters ("All of the above", "Both A and C",
  "(i) and (iii) only", 以上都不是, A和B, ①③): it is written for its slot, usually the last one;
* the options are sorted numbers, years, dates, ranges or percentages ("1", "2", "5", "10");
* the options enumerate label pairs in a fixed pattern ("True, True" / "True, False" /
  "False, True" / "False, False"; MMLU's "Wrong, Not wrong" moral scenarios), which benchmark authors
  always list in the same order.

A clean model may rightly prefer the published order of such items, so they inflate scenario a
above its 1/k! floor. :func:`check_exchangeable` says which rule fired on which option;
:func:`filter_exchangeable` gives a boolean mask over many items.

The rules are regular expressions anchored on the whole option or on unambiguous phrases: a letter
inside ordinary text ("Vitamin A and vitamin D", 维生素A、B、C缺乏) never fires. The number, date and
range reader behind the sorted-numbers rule is :mod:`quantities`. Pure module: standard library and
numpy only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from lm_eval_leakage.core.quantities import parse_quantity
from lm_eval_leakage.core.templates import LETTERS

Rule = Literal["refers_to_options", "sorted_numeric", "label_pairs"]
ALL_RULES: Final[tuple[Rule, ...]] = ("refers_to_options", "sorted_numeric", "label_pairs")

@dataclass(frozen=True)
class ExchangeabilityReport:
    """Whether an item's options can be shuffled without changing what a clean model should prefer.

    Attributes:
        exchangeable: True when no rule fired.
        reasons: One human-readable line per rule firing, naming the rule and the option index
            (0-based, with its letter), e.g.
            ``"option 3 (D) refers to other options: 'All of the above'"``. Empty when exchangeable.
    """

    exchangeable: bool
    reasons: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Rule 1: options that refer to other options, their letters, or numbered statements.
# ---------------------------------------------------------------------------------------------

_QUANT = r"(?:all|none|both|neither|any|each|either|one|some)"
_COLLECTIVE = r"(?:options?|choices?|answers?|alternatives?|responses?|statements?)"
_ADJECTIVE = r"(?:listed|given|mentioned|preceding|previous|foregoing|other|above|answer)"
_VERDICT = r"(?:correct|true|right|incorrect|false|wrong|valid|invalid|possible|applicable)"

# A reference to another option or to a numbered statement of the question. Bare lowercase
# letters are not references ("a" is an article); bracketed ones are. Bare digits only count with
# a qualifier ("only 1 and 2", "1 and 2 only"): "1 and 2" alone is as likely a pair of numbers.
_REF_BARE = r"(?:[A-F]|I{1,3}|IV|VI?|i{1,3}|iv|vi?)"
_REF_BRACKETED = r"(?:\(\s*(?:[A-Fa-f]|I{1,3}|IV|VI?|i{1,3}|iv|vi?|[1-9])\s*\)|[A-Fa-f]\)|[A-Fa-f]\.(?=\s|$))"
_REF = rf"(?:{_REF_BRACKETED}|{_REF_BARE})"
_REF_OR_DIGIT = rf"(?:{_REF}|[1-9])"
_REF_SINGLE = _REF_BARE  # no digits: "only 1" is a number
_JOIN = r"(?:\s*(?:,|;|&)\s*(?:and\s+|or\s+)?|\s+(?:and|or|nor|as\s+well\s+as)\s+)"
_QUALIFIER = r"(?:both|either|neither|only|just|options?|answers?|choices?|statements?)"
_LEAD = rf"(?:{_QUALIFIER}\s+)*"
_TAIL_REQUIRED = rf"(?:\s+(?:only|both|together|above|(?:are|is)\s+(?:both\s+|all\s+)?{_VERDICT}))"
_TAIL = rf"{_TAIL_REQUIRED}?"

_ENGLISH_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    # "all of the above", "none of the above is correct", "all the above", "any of the foregoing"
    re.compile(rf"\b{_QUANT}\s+(?:of\s+)?the\s+(?:above|foregoing|preceding)\b", re.IGNORECASE),
    re.compile(r"\b(?:all|none|both|neither)\s+above\b", re.IGNORECASE),
    # "none of above", "combinations of the above methods", "all the functions listed above"
    re.compile(r"\bof\s+(?:the\s+)?above\b|\b(?:listed|mentioned|given)\s+above\b", re.IGNORECASE),
    re.compile(r"^the\s+above\b", re.IGNORECASE),
    # "none of these", "all of them", "both of those" at the start of the option
    re.compile(rf"^{_QUANT}\s+(?:of\s+)?(?:these|those|them)\b", re.IGNORECASE),
    # "all of the options given are correct", "none of the statements", "all answers",
    # "none of the listed"
    re.compile(rf"^{_QUANT}\s+(?:of\s+)?(?:the\s+)?(?:{_ADJECTIVE}\s+)?{_COLLECTIVE}\b", re.IGNORECASE),
    re.compile(rf"^{_QUANT}\s+of\s+the\s+{_ADJECTIVE}\b", re.IGNORECASE),
    # "all are correct", "neither is true"
    re.compile(rf"^(?:all|none|both|neither)\s+(?:is|are)\s+{_VERDICT}$", re.IGNORECASE),
    # a lone "Both" or "Neither" only makes sense against the other options
    re.compile(r"^(?:both|neither)$", re.IGNORECASE),
    # "A and B", "both A and C", "A, B and C", "(i) and (iii) only", "only 1 and 2"
    re.compile(rf"^{_LEAD}{_REF}(?:{_JOIN}{_REF})+{_TAIL}$"),
    re.compile(rf"^(?:{_QUALIFIER}\s+)+{_REF_OR_DIGIT}(?:{_JOIN}{_REF_OR_DIGIT})+{_TAIL}$", re.IGNORECASE),
    re.compile(rf"^{_REF_OR_DIGIT}(?:{_JOIN}{_REF_OR_DIGIT})+{_TAIL_REQUIRED}$", re.IGNORECASE),
    # "I only", "only II", "C only"
    re.compile(rf"^(?:only\s+{_REF_SINGLE}|\(?{_REF_SINGLE}\)?\s+only)$"),
)

_CJK_REF = r"[A-FＡ-Ｆ]"
_CJK_JOIN = r"\s*(?:和|与|及|或|或者|、|,|，|\+|＋|&|/)\s*"  # required: "AB" may be a blood group
_CIRCLED = r"[①-⑩]"
_CJK_VERDICT = r"(?:是|对|正确|不是|不对|错误|不正确|非|可以|不可以|可能|不可能|有|没有|无|不|可)"

_CHINESE_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    # 以上都是, 以上都不是, 以上均正确, 上述说法均不对, 以上皆非: "以上" at the start always refers
    # back; elsewhere it usually means "more than" (60岁以上) and is left to the numeric rule.
    re.compile(r"^(?:以上|上述|前述)"),
    # 上面/前面 also name the upper/front side of an organ: only with a quantifier after them
    re.compile(r"^(?:上面|前面)的?(?:都|均|皆|全|所有|各项|选项|说法|答案)"),
    # 全部都是, 都不是, 均正确, 皆非, 全对
    re.compile(rf"^(?:全部|所有|全|均|都|皆)+(?:都|均|皆)?{_CJK_VERDICT}$"),
    re.compile(r"^(?:选项)?(?:全部|所有|都|均)(?:选项|答案|说法)"),
    # A和B, A、B和C, A+B, 只有A和C, B和D都对; ①③, ①和②
    re.compile(
        rf"^(?:只有|仅有|仅|只|都|均)?{_CJK_REF}(?:{_CJK_JOIN}{_CJK_REF})+"
        rf"(?:都|均|皆|全)?{_CJK_VERDICT}?$"
    ),
)
# ①③, ①和②: matched before NFKC folding, which turns circled numbers into plain digits.
_CIRCLED_COMBINATION: Final[re.Pattern[str]] = re.compile(
    rf"^(?:只有|仅有|仅|只|都|均)?{_CIRCLED}(?:(?:{_CJK_JOIN})?{_CIRCLED})+(?:都|均|皆|全)?{_CJK_VERDICT}?$"
)


_WHITESPACE = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s.。!！;；:：]+$")


def _normalise(option: str) -> str:
    """NFKC-fold, collapse whitespace and drop trailing sentence punctuation."""
    text = unicodedata.normalize("NFKC", option)
    text = _WHITESPACE.sub(" ", text).strip()
    return _TRAILING_PUNCTUATION.sub("", text)


def _combine(patterns: Iterable[re.Pattern[str]]) -> re.Pattern[str]:
    """One alternation, each branch keeping its own case sensitivity (one scan per option)."""
    branches = [
        f"(?i:{pattern.pattern})" if pattern.flags & re.IGNORECASE else f"(?:{pattern.pattern})"
        for pattern in patterns
    ]
    return re.compile("|".join(branches))


_REFERS: Final[re.Pattern[str]] = _combine(_CHINESE_PATTERNS + _ENGLISH_PATTERNS)


def _refers_to_options(option: str) -> bool:
    if _CIRCLED_COMBINATION.match(_TRAILING_PUNCTUATION.sub("", option.strip())):
        return True
    text = _normalise(option)
    return bool(text) and _REFERS.search(text) is not None


# ---------------------------------------------------------------------------------------------
# Rule 2: sorted numbers, years, dates, ranges, percentages (read by ``quantities``).
# ---------------------------------------------------------------------------------------------


def _sorted_numeric(options: Sequence[str]) -> tuple[str, list[float]] | None:
    """Return ("increasing"|"decreasing", values) when >= 3 options parse and are monotonic."""
    if len(options) < 3:
        return None
    numbers: list[float] = []
    for option in options:
        value = parse_quantity(option)
        if value is None:
            return None
        numbers.append(value)
    if max(numbers) == min(numbers):
        return None
    steps = np.diff(numbers)
    if np.all(steps >= 0):
        return "increasing", numbers
    if np.all(steps <= 0):
        return "decreasing", numbers
    return None


# ---------------------------------------------------------------------------------------------
# Rule 3: options enumerating pairs of two labels ("True, False"; "Wrong, Not wrong").
# ---------------------------------------------------------------------------------------------

_PAIR = re.compile(r"^([^,，]{1,20})[,，]\s*([^,，]{1,20})$")


def _label_pairs(options: Sequence[str]) -> bool:
    """True when every option is "X, Y" with X and Y from the same two labels, all distinct."""
    if len(options) < 3:
        return False
    pairs = []
    for option in options:
        match = _PAIR.match(_normalise(option).lower())
        if match is None:
            return False
        pairs.append((match.group(1).strip(), match.group(2).strip()))
    labels = {label for pair in pairs for label in pair}
    return len(labels) == 2 and len(set(pairs)) == len(pairs)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def _letter(index: int) -> str:
    return LETTERS[index] if index < len(LETTERS) else str(index)


def check_exchangeable(
    options: Sequence[str], *, rules: Collection[Rule] = ALL_RULES
) -> ExchangeabilityReport:
    """Check whether an item's options are exchangeable, i.e. their order carries no content.

    Rules (docs/method.md, sections 4 and 5.3):

    * ``"refers_to_options"``: an option refers to other options, their letters or numbered
      statements. English: "all/none/both/neither/any of the above/these/them", "all of the
      options given are correct", "all are correct", a lone "Both"/"Neither", letter or statement
      combinations covering the whole option ("A and B", "both A and C", "A, B and C", "(a) and
      (b)", "only 1 and 2", "I and II only", "C only"). Chinese: options starting with 以上/上述
      (以上都是, 以上都不是, 以上均正确, 以上皆非), whole-option verdicts (全部都是, 都不是,
      均正确), letter or circled-number combinations (A和B, A、B和C, A+B, B和D都对, ①③).
    * ``"sorted_numeric"``: at least 3 options, every option reads as one quantity
      (:func:`quantities.parse_quantity`) and the published order is monotonic (non-decreasing or
      non-increasing, not all equal).
    * ``"label_pairs"``: every option is "X, Y" over the same two labels, all pairs distinct
      ("True, True" / "True, False" / ...; "Wrong, Not wrong" / ...): a fixed enumeration that
      authors always write in the same order.

    A letter inside ordinary text ("Vitamin A and vitamin D") or "以上" after a number
    ("60岁以上") does not count as a reference.

    Args:
        options: Option texts in the published order.
        rules: Which rules to apply; all by default.

    Returns:
        The report; ``exchangeable`` is True when no rule fired. Fewer than two options are
        trivially exchangeable (nothing to reorder).

    Raises:
        ValueError: If ``rules`` names an unknown rule.
    """
    unknown = set(rules) - set(ALL_RULES)
    if unknown:
        raise ValueError(f"unknown exchangeability rules {sorted(unknown)}; known: {ALL_RULES}")
    reasons: list[str] = []
    if "refers_to_options" in rules:
        for index, option in enumerate(options):
            if _refers_to_options(option):
                reasons.append(
                    f"option {index} ({_letter(index)}) refers to other options: {option.strip()!r}"
                )
    if "sorted_numeric" in rules and (found := _sorted_numeric(options)) is not None:
        direction, values = found
        shown = ", ".join(f"{value:g}" for value in values)
        reasons.append(f"options are sorted numbers ({direction}): {shown}")
    if "label_pairs" in rules and _label_pairs(options):
        reasons.append(
            "options enumerate pairs of two labels in a fixed order: "
            + " / ".join(option.strip() for option in options)
        )
    return ExchangeabilityReport(exchangeable=not reasons, reasons=tuple(reasons))


def filter_exchangeable(items: Iterable[Sequence[str]], *, rules: Collection[Rule] = ALL_RULES) -> np.ndarray:
    """Boolean mask, True for items whose options are exchangeable.

    Args:
        items: One sequence of option texts per item.
        rules: Passed to :func:`check_exchangeable`.

    Returns:
        A 1-D ``bool`` array with one entry per item.
    """
    return np.fromiter(
        (check_exchangeable(options, rules=rules).exchangeable for options in items), dtype=bool
    )
