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
    names = ("leak_a", "orig_p", "orig_z", "leak_b_d020", "leak_b_d017", "leak_b_d015", "leak_b_cal")
    report = {"config": {"scenario": "a", "train_format": "template"},
              "epochs": {"0": {"detectors": {n: figures for n in names}}}}
    (tmp_path / "validation.json").write_text(json.dumps(report))
    assert main(["--compare", str(tmp_path)]) == 0
    assert "| a / template | orig_p | .500 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--compare", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        main([])


def test_compare_reads_a_run_written_with_the_old_detector_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``validation.json`` from before the detectors took lm-eval's column names still compares."""
    from lm_eval_leakage.validation.detectors import OLD_NAMES, detectors, with_current_names

    def report(names: list[str]) -> dict:
        epochs = {
            e: {"detectors": {n: {"roc_auc": 0.5 + i / 100 + int(e) / 10, "f1": 0.25 + i / 100, "fpr_clean": i / 50}
                              for i, n in enumerate(names)}}
            for e in ("0", "3")
        }
        listed = [{"name": n, "origin": "paper", "scenario": "b", "threshold": "t"} for n in names]
        return {"config": {"scenario": "b", "train_format": "native"}, "detectors": listed, "epochs": epochs}

    new = [d.name for d in detectors()]
    back = {v: k for k, v in OLD_NAMES.items()}
    old = [back.get(n, n) for n in new]
    assert old == ["alg1", "perm_p", "orig_z", "alg2_d020", "alg2_d017", "alg2_d015", "calib_b"]
    assert with_current_names(report(old)) == report(new)
    printed = {}
    for label, names in (("old", old), ("new", new)):
        run = tmp_path / label
        run.mkdir()
        (run / "validation.json").write_text(json.dumps(report(names)))
        assert main(["--compare", str(run)]) == 0
        printed[label] = capsys.readouterr().out
    assert printed["old"] == printed["new"]
    assert "| b / native | leak_b_cal | .560 | .860 |" in printed["old"]
    assert "calib_b" not in printed["old"] and "alg1" not in printed["old"]
