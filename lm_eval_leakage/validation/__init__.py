"""The controlled-contamination experiment (fine-tune on half of a sample, detect through lm-eval)
and the offline assets it and the tests use (SmolLM2-135M and MMLU from PyPI packages).

``from lm_eval_leakage.validation import ValidationConfig, run_validation, write_report`` works;
the names are loaded on first use, so importing ``validation.offline`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ValidationConfig": "config",
    "quick_config": "config",
    "run_validation": "experiment",
    "write_report": "report",
    "comparison_markdown": "tables",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ValidationConfig", "comparison_markdown", "quick_config", "run_validation", "write_report"]
