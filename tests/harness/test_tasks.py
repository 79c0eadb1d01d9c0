"""Every YAML is indexed by lm-eval's TaskManager, follows one naming scheme and renders its text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.data import MMLU_RECORDS, write_jsonl

from lm_eval_leakage.harness.autoload import tasks_dir

BENCHMARKS = ("mmlu", "cmmlu", "ceval", "cmb", "custom")
EXPECTED = {f"leak_{b}{s}" for b in BENCHMARKS for s in ("", "_native", "_control")}


@pytest.fixture(scope="module")
def task_manager():  # type: ignore[no-untyped-def]
    from lm_eval.tasks import TaskManager

    return TaskManager()  # no include_path: the start-up bridge must add ours


def test_task_files_follow_the_naming_scheme() -> None:
    names = {p.stem for p in tasks_dir().glob("*.yaml")}
    assert names == EXPECTED


def test_generated_yamls_are_up_to_date() -> None:
    from lm_eval_leakage.tasks.generate import expected_files

    for name, text in expected_files().items():
        assert (tasks_dir() / name).read_text(encoding="utf-8") == text, (
            f"run python -m lm_eval_leakage.tasks.generate ({name})")


def test_task_manager_indexes_every_task_without_include_path(task_manager) -> None:  # type: ignore[no-untyped-def]
    assert EXPECTED <= set(task_manager.all_subtasks)
    assert {"leakage", "leakage_native", "leakage_control"} <= set(task_manager.all_tags)


def test_task_loads_and_renders_requests(task_manager, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lm_eval.tasks import TaskManager

    data = write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)
    manager = TaskManager(metadata={"data_files": str(data)})
    task = manager.load(["leak_mmlu"])["tasks"]["leak_mmlu"]
    docs = list(task.test_docs())
    assert len(docs) == 3
    requests = task.construct_requests(docs[0], task.doc_to_text(docs[0]))
    assert len(requests) == 24
    context, continuation = requests[0].args
    reference = "\nWhich tissue connects bone to bone?:\nA:ligament\nB:muscle\nC:blood \nD:cartilage\n"
    assert context + continuation == reference
    assert context == "\nWhich tissue connects bone to bone?:\n"
    assert len({r.args[1] for r in requests}) == 24


def test_start_up_hook_imports_nothing_heavy() -> None:
    code = "import sys; print(sorted(m for m in ('lm_eval', 'numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    hooked = subprocess.run(
        [sys.executable, "-c", "import sys; print(any(type(f).__name__ == '_Finder' for f in sys.meta_path))"],
        capture_output=True, text=True, check=True,
    )
    assert hooked.stdout.strip() == "True"


def test_readme_tables_are_generated_from_the_column_and_option_tables() -> None:
    from lm_eval_leakage.tasks.generate import README, readme_with_tables

    text = README.read_text(encoding="utf-8")
    assert readme_with_tables(text) == text, "run python -m lm_eval_leakage.tasks.generate"
