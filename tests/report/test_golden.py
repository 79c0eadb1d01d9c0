"""The report on the golden lm-eval run writes exactly the golden text files.

``tests/data/golden/run`` is an ``lm_eval --log_samples`` output folder (four tasks, one of them
with control items); ``tests/data/golden/report*`` hold the text files the report wrote on it with
the settings of ``support.make_golden.REPORT_SETTINGS``. Any change of a figure, a format or a
column shows here as a diff; when one is intended, rewrite the expected files with the report part
of ``tests/support/make_golden.py`` and say so in the commit.
The report's summary also carries every lm-eval column of the run under lm-eval's name and with
lm-eval's value (``harness.columns``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.make_golden import GOLDEN, REPORT_SETTINGS, REPORT_TEXT_FILES

from lm_eval_leakage.harness.columns import columns as harness_columns
from lm_eval_leakage.report import analysis, cli, runs
from lm_eval_leakage.report.columns import SUMMARY_COLUMNS


@pytest.mark.parametrize("name", sorted(REPORT_SETTINGS))
def test_report_on_the_golden_run_is_byte_identical(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    assert cli.main([str(GOLDEN / "run"), "--out", str(out), "--formats", "png", *REPORT_SETTINGS[name]]) == 0
    expected = GOLDEN / name
    written = {f for f in REPORT_TEXT_FILES if (out / f).exists()}
    assert written == {p.name for p in expected.iterdir()}
    for file in sorted(written):
        assert (out / file).read_bytes() == (expected / file).read_bytes(), f"{name}/{file} differs"


def test_every_lm_eval_column_is_a_summary_field_with_lm_evals_value() -> None:
    """The report names a figure lm-eval also reports as lm-eval does, and recomputes the same value."""
    loaded, _ = runs.load_runs([GOLDEN / "run"])
    assert loaded
    for run in loaded:
        summary = analysis.summarise(analysis.analyse(run), analysis.Settings(null_draws=0))
        for column in harness_columns(control=False):
            assert column.name in SUMMARY_COLUMNS
            expected = pytest.approx(run.logged[column.name], rel=1e-12, nan_ok=True)
            assert getattr(summary, column.name) == expected, (run.task, column.name)
