"""Exchangeability guard: find items whose option order is fixed by the options' content.

The leakage test of Ni et al. (arXiv 2409.01790, section 3) assumes that a model which never saw an
item has no reason to prefer the published order of its options over any other. That is false when
the options themselves fix an order (METHOD.md section 4, weakness 4):

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
inside ordinary text ("Vitamin A and vitamin D", 维生素A、B、C缺乏) never fires. Pure module:
standard library and numpy only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

Rule = Literal["refers_to_options", "sorted_numeric", "label_pairs"]
ALL_RULES: Final[tuple[Rule, ...]] = ("refers_to_options", "sorted_numeric", "label_pairs")

_LETTERS: Final[str] = "ABCDEFGHIJ"


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
_DECADE = re.compile(r"\d{2,4}'?s")


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
# Rule 2: sorted numbers, years, dates, ranges, percentages.
# ---------------------------------------------------------------------------------------------

_SUPERSCRIPTS: Final[dict[str, str]] = {
    "⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5",
    "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9", "⁻": "-", "⁺": "+",
}  # fmt: skip
_SUPERSCRIPT_RUN = re.compile("[" + "".join(_SUPERSCRIPTS) + "]+")

_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_NUMBER = re.compile(rf"^(?:{_NUM})$")
_SCIENTIFIC = re.compile(rf"^(?:({_NUM})\s*(?:[x×*·]\s*)?)?10\s*\^\s*\(?([-+]?\d+(?:\.\d+)?)\)?$")
_E_NOTATION = re.compile(rf"^({_NUM})e([-+]?\d+)$", re.IGNORECASE)
_FRACTION = re.compile(rf"^(?:(\d+)\s+)?({_NUM})\s*/\s*({_NUM})$")
_RANGE = re.compile(
    rf"^(?:between\s+({_NUM})\s*%?\s*and|(?:from\s+)?({_NUM})\s*%?\s*(?:-|–|—|~|～|to|至|到))"
    rf"\s*({_NUM})$",
    re.IGNORECASE,
)

_LESS = r"(?:<=?|≤|≦|less\s+than|fewer\s+than|under|below|at\s+most|up\s+to|no\s+more\s+than)"
_MORE = r"(?:>=?|≥|≧|more\s+than|greater\s+than|over|above|at\s+least|no\s+less\s+than)"
_APPROX = r"(?:about|approximately|approx\.?|around|roughly|nearly|almost|约|大约|~|≈)"
_PREFIX = re.compile(rf"^(?:({_LESS})|({_MORE})|{_APPROX})\s*", re.IGNORECASE)
_CJK_SUFFIX = re.compile(r"(以上|以下|以内|之内|左右|上下|多)$")
_CURRENCY = re.compile(r"^(?:[$€£¥￥₹]|rs\.?|usd|us\$|eur|rmb)\s*", re.IGNORECASE)
_ERA = re.compile(r"\s*(b\.?\s?c\.?(?:e\.?)?|bce|a\.?\s?d\.?|ce)$", re.IGNORECASE)
_AD_PREFIX = re.compile(r"^a\.?\s?d\.?\s+", re.IGNORECASE)
# A unit is a short tail without digits (other than a power on it): "cm", "kg/m^2", "%",
# "years of age", "°C", "个", "小时".
_UNIT = re.compile(
    r"^(?:(?:[^\W\d_]|[%‰°µ'\"])(?:[^\d]{0,24}[^\d\s])?(?:\^?[23])?(?:/[^\d\s]{1,8}(?:\^?[23])?)?)?$"
)
_QUANTITY_MAX_CHARS: Final[int] = 60
_LATIN_UNIT_MAX_WORDS: Final[int] = 3
_CJK_UNIT_MAX_CHARS: Final[int] = 3

_MONTHS: Final[dict[str, int]] = {
    name: index
    for index, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(\d{3,4})"
_DATE_PATTERNS: Final[tuple[tuple[re.Pattern[str], tuple[str, str, str]], ...]] = (
    (re.compile(r"^(\d{3,4})-(\d{1,2})-(\d{1,2})$"), ("y", "m", "d")),
    (re.compile(rf"^{_MONTH}\s+{_DAY},?\s+{_YEAR}$", re.IGNORECASE), ("M", "d", "y")),
    (re.compile(rf"^{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}$", re.IGNORECASE), ("d", "M", "y")),
    (re.compile(rf"^{_MONTH},?\s+{_YEAR}$", re.IGNORECASE), ("M", "y", "")),
    (re.compile(r"^(\d{3,4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$"), ("y", "m", "d")),
    (re.compile(r"^(\d{3,4})\s*年\s*(\d{1,2})\s*月$"), ("y", "m", "")),
)


def _to_float(number: str) -> float:
    return float(number.replace(",", ""))


def _parse_date(text: str) -> float | None:
    for pattern, fields in _DATE_PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        parts = {"y": 0, "m": 0, "d": 0}
        for field, value in zip(fields, match.groups(), strict=False):
            if field == "M":
                parts["m"] = _MONTHS[value.lower().rstrip(".")]
            elif field:
                parts[field] = int(value)
        if not (0 <= parts["m"] <= 12 and 0 <= parts["d"] <= 31):
            return None
        return parts["y"] * 10_000.0 + parts["m"] * 100.0 + parts["d"]
    return None


def _parse_core(text: str) -> float | None:
    """A bare quantity: number, fraction, power of ten, range (its midpoint)."""
    if _NUMBER.match(text):
        return _to_float(text)
    if match := _E_NOTATION.match(text):
        return _to_float(match.group(1)) * 10.0 ** int(match.group(2))
    if match := _SCIENTIFIC.match(text):
        mantissa = _to_float(match.group(1)) if match.group(1) else 1.0
        return mantissa * 10.0 ** float(match.group(2))
    if match := _FRACTION.match(text):
        whole, numerator, denominator = match.groups()
        if _to_float(denominator) == 0.0:
            return None
        value = _to_float(numerator) / _to_float(denominator)
        return value + int(whole) if whole else value
    if match := _RANGE.match(text):
        low = _to_float(match.group(1) or match.group(2))
        high = _to_float(match.group(3))
        return (low + high) / 2.0
    return None


def _split_unit(text: str) -> tuple[str, str]:
    """Split ``"3.5 cm"`` into ``("3.5", "cm")``; the quantity is the longest parsable prefix."""
    for end in range(len(text), 0, -1):
        head, tail = text[:end].strip(), text[end:].strip()
        if not head or (end < len(text) and text[end - 1].isdigit() and text[end].isdigit()):
            continue
        if _parse_core(head) is not None and _UNIT.match(tail):
            return head, tail
    return "", text


def _unit_is_short(unit: str) -> bool:
    cjk = sum(1 for char in unit if "\u4e00" <= char <= "\u9fff")
    if cjk:
        return cjk <= _CJK_UNIT_MAX_CHARS and cjk == len(re.sub(r"[\s/%]", "", unit))
    return len(unit.split()) <= _LATIN_UNIT_MAX_WORDS


def parse_quantity(option: str) -> float | None:
    """Read an option as one number, or return None.

    Accepts plain numbers (``"1,200"``, ``"-3.5"``), currency (``"$5"``, ``"¥20"``), percentages
    (``"12%"``), units (``"3.5 cm"``, ``"5 years"``, ``"3天"``), fractions (``"1/2"``,
    ``"1 1/2"``), powers of ten (``"10^3"``, ``"2 × 10^5"``, ``"10⁻³"``, ``"1.5e3"``), ranges
    (``"10-20"``, ``"3~5天"``: their midpoint), one-sided bounds (``"<18"``, ``"over 60"``,
    ``"60岁以上"``: the bound nudged by a tiny amount in its direction), years with an era
    (``"500 BC"`` is -500, ``"1960s"`` is 1960) and dates (``"March 5, 1990"``, ``"1990-03-05"``,
    ``"1990年3月5日"``: as the number yyyymmdd). Units are ignored, so ``"5 cm"`` and ``"5 m"``
    both read as 5.

    Args:
        option: The option text.

    Returns:
        The value, or None when the option is not a single quantity.
    """
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^" + "".join(_SUPERSCRIPTS[c] for c in m.group()), option)
    text = unicodedata.normalize("NFKC", text).replace("−", "-")
    text = _WHITESPACE.sub(" ", text).strip().rstrip(".。")
    if not text or len(text) > _QUANTITY_MAX_CHARS or not any(char.isdigit() for char in text):
        return None
    if (date := _parse_date(text)) is not None:
        return date
    nudge = 0.0
    if match := _PREFIX.match(text):
        nudge = -1.0 if match.group(1) else (1.0 if match.group(2) else 0.0)
        text = text[match.end() :]
    if match := _CJK_SUFFIX.search(text):
        nudge = {"以上": 1.0, "多": 1.0, "以下": -1.0, "以内": -1.0, "之内": -1.0}.get(match.group(1), 0.0)
        text = text[: match.start()].strip()
    text = _CURRENCY.sub("", text)
    sign = 1.0
    if match := _ERA.search(text):
        sign = -1.0 if match.group(1).lower().startswith("b") else 1.0
        text = text[: match.start()].strip()
    text = _AD_PREFIX.sub("", text)
    if _DECADE.fullmatch(text):  # a decade: "1960s"
        text = text.rstrip("s").rstrip("'")
    head, unit = _split_unit(text)
    if not head or not _unit_is_short(unit):
        return None
    value = _parse_core(head)
    if value is None or not math.isfinite(value):
        return None
    # One-sided bounds sit just beyond their number so that "<18", "18-30", ">30" reads as sorted.
    return sign * value + nudge * 1e-9 * max(1.0, abs(value))


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
    return _LETTERS[index] if index < len(_LETTERS) else str(index)


def check_exchangeable(
    options: Sequence[str], *, rules: Collection[Rule] = ALL_RULES
) -> ExchangeabilityReport:
    """Check whether an item's options are exchangeable, i.e. their order carries no content.

    Rules (METHOD.md section 4, weakness 4; issue 3, item 2):

    * ``"refers_to_options"``: an option refers to other options, their letters or numbered
      statements. English: "all/none/both/neither/any of the above/these/them", "all of the
      options given are correct", "all are correct", a lone "Both"/"Neither", letter or statement
      combinations covering the whole option ("A and B", "both A and C", "A, B and C", "(a) and
      (b)", "only 1 and 2", "I and II only", "C only"). Chinese: options starting with 以上/上述
      (以上都是, 以上都不是, 以上均正确, 以上皆非), whole-option verdicts (全部都是, 都不是,
      均正确), letter or circled-number combinations (A和B, A、B和C, A+B, B和D都对, ①③).
    * ``"sorted_numeric"``: at least 3 options, every option reads as one quantity
      (:func:`parse_quantity`) and the published order is monotonic (non-decreasing or
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
