"""The validation's command line (``scripts/validate_contamination.py``), without running a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_leakage.validation.cli import build_parser, config_from_args, main
from lm_eval_leakage.validation.config import QUICK_OVERRIDES, ValidationConfig


def test_quick_flag_with_explicit_overrides() -> None:
    args = build_parser().parse_args(["--out", "x", "--quick", "--epochs", "1,3", "--scenario", "b"])
    config = config_from_args(args)
    assert config.n_items == QUICK_OVERRIDES["n_items"] and config.epochs == (1, 3)
    assert config.scenario == "b" and config.exchangeable_only and config.keep_checkpoints
    defaults = config_from_args(build_parser().parse_args(["--out", "x"]))
    assert defaults == ValidationConfig(out_dir="x")


def test_compare_prints_the_tables_of_finished_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = {"roc_auc": 0.5, "f1": None, "fpr_clean": 0.1}
    names = ("alg1", "perm_p", "orig_z", "alg2_d020", "alg2_d017", "alg2_d015", "calib_b")
    report = {"config": {"scenario": "a", "train_format": "template"},
              "epochs": {"0": {"detectors": {n: figures for n in names}}}}
    (tmp_path / "validation.json").write_text(json.dumps(report))
    assert main(["--compare", str(tmp_path)]) == 0
    assert "| a / template | perm_p | .500 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--compare", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        main([])
