"""The report on real ``lm_eval --log_samples`` output: two tiny random models (two seeds) x
(``leak_mmlu``, ``leak_cmb``), written once per session by the ``lm_eval`` CLI, and the report's
figures checked against what lm-eval printed for the same samples.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import CMB_EXAMPLE, MMLU_RECORDS, write_jsonl
from support.tiny_model import build_tiny_model

from lm_eval_leakage.harness.columns import columns as harness_columns
from lm_eval_leakage.report import analysis, cli, runs

pytestmark = pytest.mark.slow

FAST = ["--null-draws", "5", "--cases", "1", "--formats", "png", "--top", "3"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def lm_eval_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny models x (leak_mmlu, leak_cmb), written by the real lm_eval CLI with --log_samples."""
    root = tmp_path_factory.mktemp("report_runs")
    mmlu = write_jsonl(root / "mmlu.jsonl", MMLU_RECORDS)
    env = os.environ | {
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        # One lm_eval call per model runs both tasks; each task reads its own file from here.
        "LM_EVAL_LEAKAGE_MMLU_DATA": str(mmlu),
        "LM_EVAL_LEAKAGE_CMB_DATA": str(CMB_EXAMPLE),
    }
    for seed in (0, 1):
        model = build_tiny_model(root / f"tiny-seed{seed}", seed=seed)
        command = [
            sys.executable, "-m", "lm_eval", "--model", "hf",
            "--model_args", f"pretrained={model},dtype=float32", "--tasks", "leak_mmlu,leak_cmb",
            # 24 sampled orderings of CMB's 120 keep the run short (480 requests instead of 2,400).
            "--metadata", json.dumps({"sample_items": 20, "max_orderings": 24}),
            "--device", "cpu",
            "--batch_size", "8", "--output_path", str(root / "out"), "--log_samples",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "out"


def test_recomputed_figures_equal_what_lm_eval_printed(lm_eval_runs: Path) -> None:
    loaded, _ = runs.load_runs([lm_eval_runs])
    assert sorted((r.model, r.task, len(r.items)) for r in loaded) == [
        (m, t, n) for m in ("tiny-seed0", "tiny-seed1") for t, n in (("leak_cmb", 20), ("leak_mmlu", 3))]
    for run in loaded:
        summary = analysis.summarise(analysis.analyse(run), analysis.Settings(null_draws=0))
        assert summary.leak_a == run.logged["leak_a"]
        assert summary.leak_a_chance == run.logged["leak_a_chance"]
        assert summary.leak_a_p == pytest.approx(run.logged["leak_a_p"], rel=1e-12)
        assert summary.orig_rank == pytest.approx(run.logged["orig_rank"], rel=1e-12)
        assert summary.leak_b == run.logged["leak_b"]  # the same IsolationForest rule at the run's delta
        assert summary.leak_b_cal == run.logged["leak_b_cal"]
        assert summary.n_nonexch == run.logged["n_nonexch"] and summary.n_excluded == run.logged["n_excluded"]
        for column in harness_columns(control=False):  # every lm-eval column, under its lm-eval name
            expected = pytest.approx(run.logged[column.name], rel=1e-12, nan_ok=True)
            assert getattr(summary, column.name) == expected, (run.task, column.name)


def test_report_on_real_runs_has_a_two_by_two_leaderboard(lm_eval_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    assert cli.main([str(lm_eval_runs), "--out", str(out), *FAST]) == 0
    rows = read_csv(out / "leaderboard.csv")
    assert {(r["model"], r["benchmark"]) for r in rows} == {
        (m, b) for m in ("tiny-seed0", "tiny-seed1") for b in ("MMLU", "CMB")}
    header = (out / "leaderboard.md").read_text(encoding="utf-8").splitlines()[4]
    assert header == "| model | MMLU a | MMLU b | MMLU b cal. | CMB a | CMB b | CMB b cal. |"
    assert (out / "figures" / "leaderboard.png").stat().st_size > 10_000


def test_truncated_real_samples_file_keeps_the_other_runs(
    lm_eval_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = shutil.copytree(lm_eval_runs, tmp_path / "runs")
    samples = next(copy.glob("*tiny-seed1/samples_leak_cmb_*.jsonl"))
    data = samples.read_bytes()
    samples.write_bytes(data[: data.index(b"\n", len(data) // 2) + 500])  # 500 bytes into the next line
    good_lines = data[: data.index(b"\n", len(data) // 2) + 1].count(b"\n")
    assert cli.main([str(copy), "--out", str(tmp_path / "rep"), *FAST]) == 1
    assert f"{samples}:{good_lines + 1}: not valid JSON" in capsys.readouterr().err
    rows = {(r["model"], r["task"]): r for r in read_csv(tmp_path / "rep" / "leaderboard.csv")}
    assert len(rows) == 4 and rows[("tiny-seed1", "leak_cmb")]["n_items"] == str(good_lines)
