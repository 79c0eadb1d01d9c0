"""Reading benchmark records from the Hugging Face hub or from local files.

Local files are in the benchmark's own schema (the hub's field names): JSON Lines, a JSON list,
CSV or Parquet; a path may be a file, a folder (every supported file in it, sorted), a glob, or
several of these separated by commas. For benchmarks split into subject configs (CMMLU, C-Eval),
a record without a ``subject`` field takes it from its file name, with a trailing ``_test``,
``_val``, ``_dev`` or ``_validation`` removed (``agronomy_test.csv`` -> ``agronomy``), as in the
benchmarks' original releases.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import Any

from lm_eval_leakage.benchmarks.schemas import Benchmark

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_SPLIT_SUFFIX = re.compile(r"_(test|val|dev|validation|train)$")


class DataFileError(ValueError):
    """A local data file that cannot be read; the message names the file (and line)."""


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
            found = sorted(p for p in path.rglob("*") if p.suffix in SUPPORTED_SUFFIXES and p.is_file())
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


def read_file(path: Path) -> list[dict[str, Any]]:
    """Read the records of one local file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = []
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFileError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
        return records
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, list):
            raise DataFileError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        return data
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = (
            pd.read_csv(path, dtype=str, keep_default_na=False)
            if suffix == ".csv"
            else pd.read_parquet(path)
        )
        return frame.to_dict(orient="records")
    raise DataFileError(f"{path}: unsupported file type {suffix!r}; use one of {SUPPORTED_SUFFIXES}")


def read_local(spec: str | os.PathLike[str] | list[str], benchmark: Benchmark) -> list[dict[str, Any]]:
    """Read every record of a local data specification (see the module docstring)."""
    records: list[dict[str, Any]] = []
    for path in expand_paths(spec):
        stem = _SPLIT_SUFFIX.sub("", path.stem)
        for record in read_file(path):
            if benchmark.configs is not None and isinstance(record, dict) and "subject" not in record:
                record = {**record, "subject": stem}
            records.append(record)
    return records


def read_hub(benchmark: Benchmark, split: str) -> list[dict[str, Any]]:
    """Read a benchmark's split from the Hugging Face hub (needs network or a warm cache)."""
    if benchmark.hub_file is not None:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(benchmark.hub_path, benchmark.hub_file, repo_type="dataset")
        return read_file(Path(path))
    import datasets

    records: list[dict[str, Any]] = []
    for config in benchmark.configs or (None,):
        rows = datasets.load_dataset(benchmark.hub_path, config, split=split)
        for row in rows:
            if config is not None and not row.get("subject"):
                row = {**row, "subject": config}
            records.append(row)
    return records
