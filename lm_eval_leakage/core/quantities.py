"""Read an option as one quantity: numbers, units, fractions, powers of ten, ranges, bounds, dates.

Used by the exchangeability guard's ``"sorted_numeric"`` rule (:mod:`exchangeability`): options
that all read as quantities and are listed in monotonic order have an order fixed by their content
(docs/method.md, sections 4 and 5.3). Pure module: standard library only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Final

_WHITESPACE = re.compile(r"\s+")
_DECADE = re.compile(r"\d{2,4}'?s")

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
