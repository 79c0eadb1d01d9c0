"""The ``--out`` folder: never mixed with what was there before, silently.

The report writes a marker file, :data:`MARKER`, listing every file it wrote. ``--out`` then
accepts a new or empty folder, or an earlier report (recognised by its marker), whose own files are
deleted before the new ones are written (nothing else in the folder is touched); any other
non-empty folder is refused unless ``--force`` (files of the same names are then replaced and the
others kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lm_eval_leakage.report.reader import ReportError

MARKER = ".lm_eval_leakage_report"
MARKER_HEADER = (
    "# lm_eval_leakage report: the files below were written by `python -m lm_eval_leakage report`;\n"
    "# a new report written to this folder deletes them first (and nothing else).\n"
)


class OutFolderError(ReportError):
    """``--out`` cannot take the report (not a folder, or a non-empty folder that is no report)."""


def check_out(out: Path, *, force: bool) -> list[Path]:
    """Whether the report may be written to ``out``; the earlier report's files to delete first.

    Raises:
        OutFolderError: ``out`` is not a folder, or is a non-empty folder without :data:`MARKER`
            and ``force`` is false.
    """
    if out.exists() and not out.is_dir():
        raise OutFolderError(f"--out {out}: not a folder")
    if not out.exists():
        return []
    if (out / MARKER).is_file():
        return earlier_files(out)
    if any(out.iterdir()) and not force:
        raise OutFolderError(
            f"--out {out}: the folder is not empty and holds no earlier report (no {MARKER} file); "
            "choose a new or empty folder, or pass --force to write into it (files of the same names "
            "are replaced, the others kept)"
        )
    return []


def earlier_files(out: Path) -> list[Path]:
    """The files the earlier report in ``out`` listed in its marker (inside ``out`` only), and the marker."""
    files: list[Path] = []
    for line in (out / MARKER).read_text(encoding="utf-8", errors="replace").splitlines():
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            continue  # not written by a report: never leave the folder
        path = out.joinpath(*relative.parts)
        if path.is_file() or path.is_symlink():
            files.append(path)
    return [*files, out / MARKER]


def clear_earlier(out: Path, files: Sequence[Path]) -> int:
    """Delete the earlier report's files, then the folders of them left empty; the count deleted."""
    deleted = 0
    for path in files:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            continue
    folders = sorted({p.parent for p in files if p.parent != out}, key=lambda p: -len(p.parts))
    for folder in folders:
        while folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return deleted


def write_marker(out: Path, files: Sequence[Path]) -> Path:
    """Write :data:`MARKER` listing ``files`` (relative to ``out``)."""
    names = sorted({p.relative_to(out).as_posix() for p in files})
    path = out / MARKER
    path.write_text(MARKER_HEADER + "".join(f"{n}\n" for n in names), encoding="utf-8")
    return path
