"""Dataset-level figures of a validation run: lm-eval's columns over all the scored items, per epoch.

Synthetic ordering scores, no model. Records are scored without Algorithm 2's IsolationForest
(``reference_rule=False``), which none of these figures reads.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lm_eval_leakage.core import intervals, pipeline
from lm_eval_leakage.validation import report as report_module
from lm_eval_leakage.validation.detectors import (
    DATASET_COLUMNS,
    UNTOUCHED_COLUMNS,
    dataset_figures,
    detectors,
)
from lm_eval_leakage.validation.tables import (
    comparison_markdown,
    fmt_p,
    fmt_signed,
    markdown_report,
    run_label,
)

PERMS = np.array(list(itertools.permutations(range(4))))


def scores(n_items: int, *, leaked: int = 0, bump: float = 0.0, seed: int = 0) -> np.ndarray:
    """Gaussian ordering scores; the original ordering of the first ``leaked`` items raised by ``bump``."""
    values = np.random.default_rng(seed).normal(size=(n_items, len(PERMS)))
    values[:leaked, 0] += bump
    return values


def records(values: np.ndarray) -> list[pipeline.ItemRecord]:
    return [pipeline.score_item(row, PERMS, reference_rule=False) for row in values]


def test_dataset_section_has_lm_evals_columns_with_summarise_values() -> None:
    before = records(scores(120, seed=1))
    after = records(scores(120, leaked=30, bump=2.0, seed=2))
    out = dataset_figures(after, before)
    assert set(out) == {"n_items", "b_null", "verdict", *DATASET_COLUMNS, *UNTOUCHED_COLUMNS}
    assert set(UNTOUCHED_COLUMNS) == {
        f"{name}_vs_untouched{end}" for name in ("leak_a", "orig_rank", "leak_b_cal") for end in ("", "_lo", "_hi")
    }
    f = pipeline.summarise(after)
    assert f.calibrated is not None
    expected = {
        "n_items": f.n_items, "b_null": f.b_null, "n_excluded": f.n_excluded,
        "leak_a": f.scenario_a.rate, "leak_a_chance": f.scenario_a.chance, "leak_a_p": f.scenario_a.pvalue,
        "leak_a_excess": f.scenario_a.excess, "leak_a_excess_lo": f.scenario_a.excess_ci[0],
        "leak_a_excess_hi": f.scenario_a.excess_ci[1],
        "orig_rank": f.rank.mean_rank, "orig_rank_p": f.rank.pvalue,
        "leak_b_cal": f.calibrated.flagged_fraction, "leak_b_cal_excess": f.calibrated.excess,
        "leak_b_cal_lo": f.calibrated.excess_low, "leak_b_cal_hi": f.calibrated.excess_high,
        "leak_b_cal_p": f.calibrated.pvalue,
    }
    assert {k: out[k] for k in expected} == expected
    assert out["verdict"] == f.verdict.text and f.verdict.floor == "chance"
    assert out["n_items"] == 120 and out["b_null"] == "mirror"  # lm-eval's "auto" null without control items
    # Epoch E minus epoch 0, by the project's interval helpers on the two sets of items. For the
    # calibrated column the untouched model's items are the null (as control items are): each
    # checkpoint item against all of theirs, each of theirs against the others.
    upper = np.array([r.b_statistic for r in after])
    reference = np.array([r.b_statistic for r in before])
    flagged_after = sum((1 + np.sum(reference >= u)) / 121 < 0.05 for u in upper)
    flagged_before = sum((1 + np.sum(np.delete(reference, j) >= u)) / 120 < 0.05 for j, u in enumerate(reference))
    leak_a = intervals.proportion_difference(
        sum(r.stats.original_first for r in after), 120, sum(r.stats.original_first for r in before), 120
    )
    rank = intervals.mean_difference([r.stats.rank for r in after], [r.stats.rank for r in before])
    leak_b = intervals.proportion_difference(flagged_after, 120, flagged_before, 120)
    for name, difference in (("leak_a", leak_a), ("orig_rank", rank), ("leak_b_cal", leak_b)):
        got = [out[f"{name}_vs_untouched{end}"] for end in ("", "_lo", "_hi")]
        assert got == pytest.approx([difference.difference, *difference.ci], rel=1e-12), name
    assert leak_a.observed == out["leak_a"] and rank.observed == out["orig_rank"]


def test_untouched_model_has_no_change_against_itself() -> None:
    out = dataset_figures(records(scores(30)))
    assert all(math.isnan(out[name]) for name in UNTOUCHED_COLUMNS)
    assert all(not (isinstance(out[name], float) and math.isnan(out[name])) for name in DATASET_COLUMNS)


def test_ten_percent_leaked_by_construction_is_found_and_clean_items_are_not() -> None:
    """200 items, 20 with their original ordering's score raised strongly: a low leak rate.

    With no leakage a p-value is uniform: the clean items' ``> 0.01`` fails for 1% of seeds (an
    honest level, not a tuned seed; this seed gives .87 and .19).
    """
    values = scores(200, leaked=20, bump=6.0, seed=12)
    leaked = dataset_figures(records(values), records(scores(200, seed=13)))
    clean = dataset_figures(records(values[20:]))
    assert leaked["leak_a_p"] < 0.01 and leaked["orig_rank_p"] < 0.01
    assert leaked["leak_a_excess_lo"] > 0 and leaked["leak_a_vs_untouched_lo"] > 0
    assert clean["leak_a_p"] > 0.01 and clean["orig_rank_p"] > 0.01
    assert clean["leak_a_excess_lo"] < 0 < clean["leak_a_excess_hi"]
    assert leaked["b_null"] == "mirror"  # 200 items: the mirror null, as lm-eval uses it
    assert leaked["verdict"].startswith("leakage beyond chance") and "scenario a +" in leaked["verdict"]
    assert clean["verdict"] == "no evidence beyond chance (no control floor measured)"


def test_formats_of_p_values_and_differences() -> None:
    assert fmt_p(9.18e-8) == "9.2e-08" and fmt_p(0.0123) == ".012" and fmt_p(None) == "n/a"
    assert fmt_signed(-0.023) == "-.023" and fmt_signed(0.08) == "+.080" and fmt_signed(1.5) == "+1.500"
    assert fmt_signed(math.nan) == "n/a"


METRICS = dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc", "tpr_at_fpr", "fpr_clean"), 0.5)


def _report(fraction: float, dataset: bool) -> dict:
    """A ``write_report``-like report: two epochs, placeholder detector figures, optionally dataset figures."""
    before, after = scores(40, seed=3), scores(40, leaked=4, bump=6.0, seed=4)
    epochs = {}
    for epoch, values, untouched in (("0", before, None), ("3", after, before)):
        epochs[epoch] = {"detectors": {d.name: METRICS for d in detectors()}}
        if dataset:
            epochs[epoch]["dataset"] = dataset_figures(
                records(values), None if untouched is None else records(untouched)
            )
    config = {"scenario": "a", "train_format": "template", "n_items": 40, "leaked_fraction": fraction}
    return {"config": config, "epochs": epochs}


def test_tables_show_the_dataset_figures_and_the_fraction() -> None:
    report = _report(0.1, dataset=True)
    report["detectors"] = []
    report["epochs"]["0"]["sanity"] = report["epochs"]["3"]["sanity"] = {
        "leaked_original_first": 0, "leaked_n": 4, "clean_original_first": 0, "clean_n": 36,
        "leaked_mean_rank": 0.5, "clean_mean_rank": 0.5, "leaked_mean_z": 0.0, "clean_mean_z": 0.0,
    }
    text = markdown_report(report)
    assert "40 items (4 leaked, fraction 0.1)" in text
    assert "## Dataset level: did this model see the benchmark?" in text
    d = report["epochs"]["3"]["dataset"]
    row = next(line for line in text.splitlines() if line.startswith("| 3 | 40 |"))
    assert f"| {fmt_p(d['leak_a_p'])} |" in row and f"| {fmt_p(d['orig_rank_p'])} |" in row
    change = next(line for line in text.splitlines() if line.startswith(("| 3 | +", "| 3 | -")))
    assert change.startswith(f"| 3 | {fmt_signed(d['leak_a_vs_untouched'])} [")
    assert not any(line.startswith(("| 0 | +", "| 0 | n/a")) for line in text.splitlines())
    for epoch in ("0", "3"):
        assert f"- epoch {epoch}: {report['epochs'][epoch]['dataset']['verdict']}" in text
    del report["epochs"]["3"]["dataset"], report["epochs"]["0"]["dataset"]
    assert "Dataset level" not in markdown_report(report)  # a report written before the figures


def test_compare_adds_the_dataset_rows_when_runs_have_them() -> None:
    low, half = _report(0.1, dataset=True), _report(0.5, dataset=False)
    assert run_label(low) == "a / template / 0.1 leaked" and run_label(half) == "a / template"
    text = comparison_markdown([low, half])
    assert "Dataset level, all items" in text
    p = low["epochs"]["3"]["dataset"]["leak_a_p"]
    assert f"| a / template / 0.1 leaked | leak_a_p | {fmt_p(low['epochs']['0']['dataset']['leak_a_p'])} | {fmt_p(p)} |" in text
    assert "| a / template | leak_a_p | n/a | n/a |" in text
    assert "Dataset level" not in comparison_markdown([half])


def test_write_report_puts_a_dataset_section_in_every_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "roc_figure", lambda report, path: None)
    (tmp_path / "scores").mkdir()
    config = {"n_items": 6, "leaked_fraction": 0.5, "scenario": "a", "train_format": "template"}
    (tmp_path / "run.json").write_text(json.dumps({"config": config}))
    perms = PERMS.tolist()
    by_epoch = {0: scores(6, seed=5), 2: scores(6, leaked=3, bump=4.0, seed=6)}
    for epoch, values in by_epoch.items():
        items = [{"id": f"q{i}", "role": "leaked" if i < 3 else "clean", "scores": row.tolist(), "perms": perms}
                 for i, row in enumerate(values)]
        (tmp_path / "scores" / f"epoch_{epoch}.json").write_text(json.dumps({"epoch": epoch, "items": items}))
    written = report_module.write_report(tmp_path)
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert saved["config"]["leaked_fraction"] == 0.5
    for epoch in ("0", "2"):
        assert set(saved["epochs"][epoch]["dataset"]) == {"n_items", "b_null", "verdict", *DATASET_COLUMNS, *UNTOUCHED_COLUMNS}
    expected = dataset_figures(records(by_epoch[2]), records(by_epoch[0]))
    assert written["epochs"]["2"]["dataset"] == expected
    assert saved["epochs"]["0"]["dataset"]["leak_a_vs_untouched"] is None  # NaN in JSON
    assert "## Dataset level" in (tmp_path / "validation.md").read_text()
