"""End to end through lm_eval's own CLI with a tiny random model, on data in each benchmark's schema."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import CEVAL_RECORDS, CMB_RECORDS, CMMLU_RECORDS, CUSTOM_RECORDS, MMLU_RECORDS, write_jsonl

from lm_eval_leakage.harness.autoload import tasks_dir

pytestmark = pytest.mark.slow

COLUMNS = {
    "leak_a", "leak_a_chance", "leak_a_p", "leak_a_excess", "leak_a_excess_lo", "leak_a_excess_hi",
    "orig_rank", "orig_rank_p", "orig_z", "orig_p", "gap_ratio", "leak_b", "leak_b_cal",
    "leak_b_cal_excess", "leak_b_cal_lo", "leak_b_cal_hi", "leak_b_cal_p", "n_excluded", "n_nonexch",
}
ORDERINGS = {  # per task: orderings of each item, in file order
    "leak_mmlu": [24, 24, 24],
    "leak_cmmlu": [24, 24],
    "leak_ceval": [24, 24],
    "leak_cmb": [120, 24],
    "leak_custom": [6, 120],
}


def lm_eval(*args: str, env: dict[str, str] | None = None, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lm_eval"] if module else [str(Path(sys.executable).parent / "lm_eval")]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def data_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bench_data")
    cmmlu = folder / "cmmlu"
    cmmlu.mkdir()
    (cmmlu / "agronomy_test.csv").write_text(
        "Question,A,B,C,D,Answer\n"
        + "".join(f"{r['Question']},{r['A']},{r['B']},{r['C']},{r['D']},{r['Answer']}\n" for r in CMMLU_RECORDS),
        encoding="utf-8",
    )
    (folder / "cmb.json").write_text(json.dumps(CMB_RECORDS, ensure_ascii=False), encoding="utf-8")
    return {
        "LM_EVAL_LEAKAGE_MMLU_DATA": str(write_jsonl(folder / "mmlu.jsonl", MMLU_RECORDS)),
        "LM_EVAL_LEAKAGE_CMMLU_DATA": str(cmmlu),
        "LM_EVAL_LEAKAGE_CEVAL_DATA": str(write_jsonl(folder / "ceval.jsonl", CEVAL_RECORDS)),
        "LM_EVAL_LEAKAGE_CMB_DATA": str(folder / "cmb.json"),
        "LM_EVAL_LEAKAGE_CUSTOM_DATA": str(write_jsonl(folder / "custom.jsonl", CUSTOM_RECORDS)),
    }


@pytest.fixture(scope="module")
def run_all(tiny_model: Path, data_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("run_all")
    proc = lm_eval(
        "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
        "--tasks", ",".join(ORDERINGS), "--device", "cpu", "--batch_size", "16",
        "--output_path", str(out), "--log_samples", env=data_env,
    )
    (results_file,) = glob.glob(str(out / "*" / "results_*.json"))
    return proc.stdout, json.loads(Path(results_file).read_text()), out


def test_table_has_every_column_for_every_task(run_all) -> None:  # type: ignore[no-untyped-def]
    stdout, results, _ = run_all
    for task in ORDERINGS:
        assert task in stdout
        row = results["results"][task]
        assert {key.split(",")[0] for key in row} >= COLUMNS
        assert row["n_excluded,none"] == 0
        assert 0.0 <= row["leak_a,none"] <= 1.0 and 0.0 <= row["orig_rank,none"] <= 1.0
        assert results["n-samples"][task]["effective"] == len(ORDERINGS[task])


def test_chance_levels_follow_the_orderings(run_all) -> None:  # type: ignore[no-untyped-def]
    _, results, _ = run_all
    for task, sizes in ORDERINGS.items():
        guarded = results["results"][task]["n_nonexch,none"]
        if guarded == 0:
            expected = sum(1 / n for n in sizes) / len(sizes)
            assert results["results"][task]["leak_a_chance,none"] == pytest.approx(expected)


def test_samples_keep_every_ordering_score(run_all) -> None:  # type: ignore[no-untyped-def]
    _, _, out = run_all
    for task, sizes in ORDERINGS.items():
        (samples_file,) = glob.glob(str(out / "*" / f"samples_{task}_*.jsonl"))
        samples = sorted((json.loads(line) for line in Path(samples_file).read_text().splitlines()),
                         key=lambda s: s["doc_id"])
        assert [len(s["filtered_resps"]) for s in samples] == sizes
        assert [len(s["doc"]["perms"]) for s in samples] == sizes
        assert all(s["doc"]["perms"][0] == sorted(s["doc"]["perms"][0]) for s in samples)


def test_subject_is_kept(run_all) -> None:  # type: ignore[no-untyped-def]
    _, _, out = run_all
    (samples_file,) = glob.glob(str(out / "*" / "samples_leak_cmmlu_*.jsonl"))
    subjects = {json.loads(line)["doc"]["subject"] for line in Path(samples_file).read_text().splitlines()}
    assert subjects == {"agronomy"}


def test_python_m_lm_eval_with_explicit_include_path(tiny_model: Path, data_env: dict[str, str], tmp_path: Path) -> None:
    proc = lm_eval(
        "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
        "--tasks", "leak_mmlu_native", "--include_path", str(tasks_dir()), "--device", "cpu",
        "--metadata", json.dumps({"reference_rule": False}),
        env={**data_env, "LM_EVAL_LEAKAGE_AUTOLOAD": "0"}, module=True,
    )
    assert "leak_mmlu_native" in proc.stdout and "leak_b_cal" in proc.stdout


def test_accuracy_and_leakage_in_one_table(tiny_model: Path, data_env: dict[str, str], tmp_path: Path) -> None:
    """A standard lm-eval multiple-choice task (as `mmlu` is) and leak_mmlu in one run and one table.

    `mmlu` itself needs the hub; this stand-in is an ordinary YAML task over the same items.
    """
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "local_mc.yaml").write_text(
        "task: local_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data_env['LM_EVAL_LEAKAGE_MMLU_DATA']}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    proc = lm_eval(
        "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
        "--tasks", "local_mc,leak_mmlu", "--include_path", str(tasks), "--device", "cpu",
        "--metadata", json.dumps({"reference_rule": False}), "--output_path", str(out), env=data_env,
    )
    table = proc.stdout
    assert "local_mc" in table and "acc" in table and "leak_mmlu" in table and "leak_a_chance" in table
    (results_file,) = glob.glob(str(out / "*" / "results_*.json"))
    results = json.loads(Path(results_file).read_text())["results"]
    assert "acc,none" in results["local_mc"] and "leak_a,none" in results["leak_mmlu"]


def test_control_task_reports_observed_minus_control(tiny_model: Path, tmp_path: Path) -> None:
    from support.data import CMB_EXAMPLE

    metadata = {"data_files": str(CMB_EXAMPLE), "sample_items": 6, "reference_rule": False}
    out = tmp_path / "control"
    proc = lm_eval(
        "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--tasks", "leak_cmb_control",
        "--device", "cpu", "--batch_size", "32", "--metadata", json.dumps(metadata), "--output_path", str(out),
    )
    assert "leak_a_vs_control" in proc.stdout
    (results_file,) = glob.glob(str(out / "*" / "results_*.json"))
    row = json.loads(Path(results_file).read_text())["results"]["leak_cmb_control"]
    low, mid, high = (row[f"leak_a_vs_control{end},none"] for end in ("_lo", "", "_hi"))
    assert low <= mid <= high
    assert row["leak_a_chance,none"] == pytest.approx(1 / 120)


def test_invalid_item_stops_before_the_model_runs(tiny_model: Path, tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [MMLU_RECORDS[0], {"question": "Q?", "choices": ["only one"]}])
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model}",
         "--tasks", "leak_mmlu", "--device", "cpu", "--metadata", json.dumps({"data_files": str(bad)})],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "item '1': field 'choices[0]': needs at least two options" in proc.stderr
    assert "Running loglikelihood requests" not in proc.stderr
