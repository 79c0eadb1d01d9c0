"""Reading benchmark records from the Hugging Face hub or from local files.

Local files are in the benchmark's own schema (the hub's field names): JSON Lines, a JSON list,
CSV or Parquet; a path may be a file, a folder (every supported file in it, sorted), a glob, or
several of these separated by commas; inside a folder, hidden files and folders (a name starting
with a dot, such as ``.ipynb_checkpoints``) are skipped, and the count is logged. Every record keeps
where it came from (``file:line``), so a bad record or a duplicate id is reported at its place.
Text must be UTF-8; a file that is not is reported with the line of the first bad byte. For benchmarks split into subject configs (CMMLU, C-Eval),
a record without a ``subject`` field takes it from its file name, with a trailing ``_test``,
``_val``, ``_dev`` or ``_validation`` removed (``agronomy_test.csv`` -> ``agronomy``), as in the
benchmarks' original releases.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from lm_eval_leakage.benchmarks.schemas import Benchmark

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_SPLIT_SUFFIX = re.compile(r"_(test|val|dev|validation|train)$")


logger = logging.getLogger("lm_eval_leakage")


class DataFileError(ValueError):
    """A local data file that cannot be read; the message names the file (and line)."""


class Located(NamedTuple):
    """A record and where it was read (``file:line``, ``file: record N`` or ``hub config: row N``)."""

    record: Any
    where: str


def data_env_var(benchmark: str) -> str:
    """Environment variable that points ``leak_<benchmark>`` at local files."""
    return f"LM_EVAL_LEAKAGE_{benchmark.upper()}_DATA"


def expand_paths(spec: str | os.PathLike[str] | list[str]) -> list[Path]:
    """Expand a data-files specification into a sorted list of existing files."""
    parts = spec if isinstance(spec, list) else [p for p in str(spec).split(",") if p.strip()]
    files: list[Path] = []
    for part in parts:
        path = Path(str(part).strip()).expanduser()
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix in SUPPORTED_SUFFIXES and p.is_file())
            found = [p for p in candidates if not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if len(found) < len(candidates):
                logger.warning("%s: skipped %d hidden file(s) (names or folders starting with a dot), e.g. %s",
                               path, len(candidates) - len(found), sorted(set(candidates) - set(found))[0])
            if not found:
                raise DataFileError(f"{path}: folder holds no {'/'.join(SUPPORTED_SUFFIXES)} files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(path)))
            if not matches:
                raise DataFileError(f"{path}: no such file, folder or glob match")
            files += matches
    return files


def read_file(path: Path) -> list[Located]:
    """Read the records of one local file, each with its place in the file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        try:
            data = json.loads(_utf8(path, path.read_bytes()))
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, list):
            raise DataFileError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        return [Located(record, f"{path}: record {i + 1}") for i, record in enumerate(data)]
    if suffix == ".csv":
        import io

        import pandas as pd

        frame = pd.read_csv(io.StringIO(_utf8(path, path.read_bytes())), dtype=str, keep_default_na=False)
        return [Located(r, f"{path}:{i + 2}") for i, r in enumerate(frame.to_dict(orient="records"))]
    if suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(path).to_dict(orient="records")
        return [Located(r, f"{path}: row {i + 1}") for i, r in enumerate(rows)]
    raise DataFileError(f"{path}: unsupported file type {suffix!r}; use one of {SUPPORTED_SUFFIXES}")


def _utf8(path: Path, raw: bytes, first_line: int = 1) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + first_line
        raise DataFileError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8") from None


def _read_jsonl(path: Path) -> list[Located]:
    records = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            line = _utf8(path, raw, line_no) if raw.strip() else ""
            if not line.strip():
                continue
            try:
                records.append(Located(json.loads(line), f"{path}:{line_no}"))
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
    return records


def read_local(spec: str | os.PathLike[str] | list[str], benchmark: Benchmark) -> list[Any]:
    """Every record of a local data specification (see the module docstring), without its place."""
    return [located.record for located in read_located(spec, benchmark)]


def read_located(spec: str | os.PathLike[str] | list[str], benchmark: Benchmark) -> list[Located]:
    """Every record of a local data specification, each with where it was read."""
    records: list[Located] = []
    for path in expand_paths(spec):
        stem = _SPLIT_SUFFIX.sub("", path.stem)
        for record, where in read_file(path):
            if benchmark.configs is not None and isinstance(record, dict) and "subject" not in record:
                record = {**record, "subject": stem}
            records.append(Located(record, where))
    return records


def read_hub(benchmark: Benchmark, split: str) -> list[Located]:
    """Read a benchmark's split from the Hugging Face hub (needs network or a warm cache)."""
    if benchmark.hub_file is not None:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(benchmark.hub_path, benchmark.hub_file, repo_type="dataset")
        return read_file(Path(path))
    import datasets

    records: list[Located] = []
    for config in benchmark.configs or (None,):
        rows = datasets.load_dataset(benchmark.hub_path, config, split=split)
        for index, row in enumerate(rows):
            if config is not None and not row.get("subject"):
                row = {**row, "subject": config}
            records.append(Located(row, f"{benchmark.hub_path} {config or ''} {split}: row {index + 1}"))
    return records
