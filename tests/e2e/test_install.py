"""The install path: a wheel in a fresh virtual environment, non-editable, finds the tasks with no flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from support.data import CUSTOM_RECORDS, REPO, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = (root / "dist").glob("lm_eval_leakage-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    # The dependencies (torch, lm-eval, ...) come from this interpreter's environment rather than a
    # multi-GB download: a path line appends them after the fresh site-packages, so our package
    # itself can only come from the wheel.
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def _run(env_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "LM_EVAL_LEAKAGE_AUTOLOAD"}}
    proc = subprocess.run([str(env_dir / "bin" / "python"), *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_wheel_ships_tasks_and_startup_hook(fresh_env: Path) -> None:
    where = _run(fresh_env, "-c", "import lm_eval_leakage, sys; print(lm_eval_leakage.__file__)")
    assert str(fresh_env) in where
    folder = Path(_run(fresh_env, "-m", "lm_eval_leakage", "tasks-dir").strip())
    assert str(fresh_env) in str(folder) and (folder / "leak_mmlu.yaml").is_file()
    assert (folder / "_leak_template_yaml").is_file()


def test_lm_eval_finds_tasks_with_no_flag(fresh_env: Path) -> None:
    listing = _run(fresh_env, "-m", "lm_eval", "ls", "tasks")
    line = next(row for row in listing.splitlines() if "|leak_mmlu " in row)
    assert str(fresh_env) in line


def test_installed_task_runs(fresh_env: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "custom.jsonl", CUSTOM_RECORDS)
    out = _run(
        fresh_env, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model}",
        "--tasks", "leak_custom", "--device", "cpu", "--metadata", json.dumps({"data_files": str(data)}),
    )
    assert "leak_custom" in out and "leak_a_chance" in out


def test_lm_eval_finds_the_prefix_model_with_no_flag(fresh_env: Path) -> None:
    code = "from lm_eval.api.registry import get_model; m = get_model('hf-prefix'); print(m.__module__, m.__name__)"
    module, name = _run(fresh_env, "-c", code).split()
    assert (module, name) == ("lm_eval_leakage.harness.prefix_model", "PrefixSharingHFLM")
    assert str(fresh_env) in _run(fresh_env, "-c", "import lm_eval_leakage.harness.prefix_model as m; print(m.__file__)")
