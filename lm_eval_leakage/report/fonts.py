"""Fonts of the report's figures: a CJK font when one is installed (or given), else placeholders.

The case plots of Chinese benchmarks (CMMLU, C-Eval, CMB) need a font with CJK glyphs.
:func:`text_font` looks for one among the fonts matplotlib knows (or one given with
:func:`use_font_file`); when there is none, characters no available font can draw are replaced by
``"□"`` (:func:`drawable`) and the figure says so (:data:`FONT_NOTE`), instead of matplotlib's
boxes and a warning per glyph.
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache
from pathlib import Path

from matplotlib import font_manager

MISSING_GLYPH = "□"
_CJK_PROBE = 0x4E2D  # 中
_extra_fonts: list[str] = []


def use_font_file(path: str | Path) -> str:
    """Register a font file (e.g. a CJK font) and use it before the others.

    Args:
        path: A TrueType/OpenType font file.

    Returns:
        The font's family name.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    font_path = Path(path)
    if not font_path.is_file():
        raise FileNotFoundError(f"font file {font_path} does not exist")
    font_manager.fontManager.addfont(str(font_path))
    name = font_manager.FontProperties(fname=str(font_path)).get_name()
    if name not in _extra_fonts:
        _extra_fonts.insert(0, name)
    _font_setup.cache_clear()
    return name


@cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError):
        return frozenset()


@lru_cache(maxsize=1)
def _font_setup() -> tuple[tuple[str, ...], frozenset[int]]:
    """Font families to use, best first, and the code points they cover together."""
    families: list[str] = list(_extra_fonts)
    covered: set[int] = set()
    default = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    covered |= _charmap(default)
    cjk = None
    for entry in font_manager.fontManager.ttflist:
        if entry.name.startswith("Last Resort"):
            continue  # maps every code point to a placeholder box: covers CJK only on paper
        if entry.name in families:
            covered |= _charmap(entry.fname)
        elif cjk is None and _CJK_PROBE in _charmap(entry.fname):
            cjk = entry
    if cjk is not None:
        families.append(cjk.name)
        covered |= _charmap(cjk.fname)
    families.append("DejaVu Sans")
    return tuple(families), frozenset(covered)


def text_font() -> tuple[str, ...]:
    """Font families for figure text: registered fonts, a CJK font if one exists, DejaVu Sans."""
    return _font_setup()[0]


def has_cjk_font() -> bool:
    """Whether some usable font draws CJK characters."""
    return _CJK_PROBE in _font_setup()[1]


def drawable(text: str) -> tuple[str, bool]:
    """``text`` with characters no available font can draw replaced by ``"□"``.

    Control and format characters (e.g. the C1 controls of mis-decoded text in MMLU) draw as
    nothing, so they are dropped without counting as missing glyphs.

    Returns:
        The text to draw and whether a printable character was replaced.
    """
    covered = _font_setup()[1]
    out: list[str] = []
    replaced = False
    for char in text:
        if char in "\n\t " or ord(char) in covered:
            out.append(char)
        elif unicodedata.category(char)[0] != "C":
            out.append(MISSING_GLYPH)
            replaced = True
    return "".join(out), replaced


FONT_NOTE = (
    "(no font with these characters was found: they show as □; pass --font FILE, e.g. a Noto CJK font)"
)
