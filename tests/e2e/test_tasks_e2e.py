"""lm-eval's own commands see the tasks; the start-up bridge can be switched off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lm_eval_leakage.harness.autoload import tasks_dir


def test_lm_eval_validate_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "validate", "--tasks", "leak_mmlu,leak_cmmlu,leak_ceval,leak_cmb"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_bridge_can_be_switched_off_and_include_path_works(tmp_path: Path) -> None:
    code = (
        "from lm_eval.tasks import TaskManager; import json, sys\n"
        "tm = TaskManager(include_path=sys.argv[1] if len(sys.argv) > 1 else None)\n"
        "print(json.dumps('leak_mmlu' in tm.all_subtasks))"
    )
    env = {**os.environ, "LM_EVAL_LEAKAGE_AUTOLOAD": "0"}
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(off.stdout.strip().splitlines()[-1]) is False
    explicit = subprocess.run(
        [sys.executable, "-c", code, str(tasks_dir())], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(explicit.stdout.strip().splitlines()[-1]) is True
