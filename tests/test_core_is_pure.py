"""The statistics core must not import lm_eval, torch or datasets (STYLE.md: a pure core)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = ["orderings", "templates", "stats", "benchmarks", "reference_rule", "autoload"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_heavy_library(module: str) -> None:
    code = (
        f"import sys, lm_eval_leakage.{module}\n"
        "heavy = sorted(m for m in ('lm_eval', 'torch', 'datasets', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    env_off = {"LM_EVAL_LEAKAGE_AUTOLOAD": "0", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env_off)
    assert out.stdout.strip() == ""
