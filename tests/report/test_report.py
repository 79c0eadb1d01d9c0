"""The report command: reading lm-eval output, recomputing, tables, figures and bad input.

Fast tests write run folders by hand in lm-eval's layout (``results_<time>.json`` and
``samples_<task>_<time>.jsonl``, one sample per line with ``doc``, ``resps`` and
``filtered_resps`` as lm-eval 0.4 writes them). The tests that run the real ``lm_eval`` CLI are in
``tests/e2e/test_report_e2e.py``; the byte-for-byte check on the golden run is ``test_golden.py``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lm_eval_leakage.core import reference_rule
from lm_eval_leakage.report import analysis, cli, figure_data, fonts, reader, runs
from lm_eval_leakage.report import figures as plots

STAMP = "2026-01-02T03-04-05.678901"
FAST = ["--null-draws", "5", "--cases", "1", "--formats", "png", "--top", "3"]


# --------------------------------------------------------------------------- hand-built runs


def sample_line(doc_id: int, scores: list[float], *, subject: str = "anatomy", k: int = 4,
                lying_metrics: bool = False) -> dict[str, Any]:
    """One samples line in lm-eval's format for an item with ``k`` options."""
    perms = [list(p) for p in itertools.permutations(range(k))][: len(scores)]
    doc = {
        "id": f"q{doc_id}", "subject": subject, "question": f"Question {doc_id}?",
        "options": [f"option {chr(97 + i)}" for i in range(k)], "context": f"\nQuestion {doc_id}?:\n",
        "template": "reference", "perms": perms, "n_distinct": len(perms), "complete": True, "delta": -0.2,
    }
    resps = [[[repr(float(s)), "False"]] for s in scores]
    flag = 1.0 if lying_metrics else float(scores[0] >= max(scores))
    return {
        "doc_id": doc_id, "doc": doc, "target": "0", "resps": resps, "filtered_resps": [r[0] for r in resps],
        "filter": "none", "leak_a": flag, "leak_a_chance": 1 / len(scores), "leak_b": 0.0,
    }


def write_run(folder: Path, lines: list[dict[str, Any]], *, task: str = "leak_mmlu",
              model: str = "/m/fake-model", results: bool = True, stamp: str = STAMP) -> Path:
    """A model folder as ``lm_eval --output_path ... --log_samples`` leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / f"samples_{task}_{stamp}.jsonl"
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    if results:
        body = {"results": {task: {"alias": task, "leak_a,none": 0.0}}, "model_name": model}
        (folder / f"results_{stamp}.json").write_text(json.dumps(body), encoding="utf-8")
    return samples


def random_lines(n_items: int, *, seed: int, planted: bool = False, subjects: tuple[str, ...] = ("anatomy",)
                 ) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_items):
        scores = rng.normal(-50, 1, size=24)
        if planted:
            scores[0] = scores.max() + 3.0
        lines.append(sample_line(i, scores.tolist(), subject=subjects[i % len(subjects)]))
    return lines


@pytest.fixture
def two_models(tmp_path: Path) -> Path:
    """An output folder with a clean and a leaky model on one task, two subjects each."""
    out = tmp_path / "runs"
    write_run(out / "clean", random_lines(12, seed=1, subjects=("anatomy", "virology")), model="/m/clean")
    write_run(out / "leaky", random_lines(12, seed=2, planted=True, subjects=("anatomy", "virology")),
              model="/m/leaky")
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- reading


def test_scores_come_from_filtered_resps_not_the_logged_metrics(tmp_path: Path) -> None:
    scores = [-10.0, -9.0] + [-11.0] * 22
    path = write_run(tmp_path, [sample_line(0, scores, lying_metrics=True)])
    items, problems = reader.read_samples(path)
    assert problems == [] and items[0].scores.tolist() == scores
    scored = analysis.analyse(runs.Run("m", "leak_mmlu", path, None, tuple(items), {}))
    assert analysis.summarise(scored, analysis.Settings(null_draws=0)).leak_a == 0.0  # the line claimed 1.0


def test_resps_are_used_when_filtered_resps_are_absent(tmp_path: Path) -> None:
    line = sample_line(0, [-1.0, -2.0, -3.0, -4.0] * 6)
    del line["filtered_resps"]
    items, _ = reader.read_samples(write_run(tmp_path, [line]))
    assert items[0].scores[:4].tolist() == [-1.0, -2.0, -3.0, -4.0]


def test_truncated_file_names_file_and_line_and_keeps_what_was_read(tmp_path: Path) -> None:
    path = write_run(tmp_path, random_lines(3, seed=0))
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 40], encoding="utf-8")  # cut inside the last line, like a killed run
    with pytest.raises(reader.SamplesFileError, match=rf"{path.name}:3: not valid JSON.*cut off") as caught:
        reader.read_samples(path)
    assert [i.item_id for i in caught.value.items_read] == ["q0", "q1"]
    items, problems = reader.read_samples(path, on_bad_line="collect")
    assert len(items) == 2 and [(p.path, p.line) for p in problems] == [(path, 3)]


def test_a_bad_line_in_the_middle_keeps_the_lines_after_it(tmp_path: Path) -> None:
    lines = random_lines(3, seed=0)
    del lines[1]["doc"]["perms"]
    items, problems = reader.read_samples(write_run(tmp_path, lines), on_bad_line="collect")
    assert [i.item_id for i in items] == ["q0", "q2"]
    assert problems[0].line == 2 and "perms" in problems[0].problem


def test_scores_that_do_not_fit_the_orderings_are_a_bad_line(tmp_path: Path) -> None:
    line = sample_line(0, [-1.0] * 24)
    line["filtered_resps"] = line["filtered_resps"][:5]
    with pytest.raises(reader.SamplesFileError, match=r":1: 5 scores for 24 orderings"):
        reader.read_samples(write_run(tmp_path, [line]))


def test_cli_with_a_bad_line_writes_the_report_and_exits_1(
    two_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = next((two_models / "leaky").glob("samples_*.jsonl"))
    with samples.open("a", encoding="utf-8") as handle:
        handle.write('{"doc_id": 12, "doc": {"id": "q12", "perms": [[0, 1')
    assert cli.main([str(two_models), "--out", str(tmp_path / "rep"), "--no-reference-rule", *FAST]) == 1
    err = capsys.readouterr().err
    assert f"{samples}:13: not valid JSON" in err and "--skip-bad-lines" in err and "Traceback" not in err
    rows = {r["model"]: r for r in read_csv(tmp_path / "rep" / "leaderboard.csv")}
    assert rows["leaky"]["n_items"] == "12" and rows["leaky"]["bad_lines"] == "1"
    assert rows["clean"]["n_items"] == "12"
    assert f"{samples}:13" in (tmp_path / "rep" / "leaderboard.md").read_text(encoding="utf-8")
    argv = [str(two_models), "--out", str(tmp_path / "rep2"), "--skip-bad-lines", "--no-reference-rule",
            *FAST]
    assert cli.main(argv) == 0


def test_folder_without_samples_says_rerun_with_log_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs" / "model"
    samples = write_run(folder, random_lines(2, seed=0))
    samples.unlink()
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "leak_mmlu" in err and "--log_samples" in err and "Traceback" not in err
    assert not (tmp_path / "rep").exists()


def test_folder_without_lm_eval_output_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty"), "--out", str(tmp_path / "rep")]) == 2
    assert "no lm_eval output" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "missing"), "--out", str(tmp_path / "rep")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_samples_without_results_and_later_runs_supersede_earlier_ones(tmp_path: Path) -> None:
    write_run(tmp_path / "out" / "my-model", random_lines(2, seed=0), results=False)
    write_run(tmp_path / "out" / "my-model", random_lines(3, seed=1), results=False,
              stamp="2027-01-01T00-00-00.000001")
    found, notes = runs.load_runs([tmp_path / "out"])
    assert [(r.model, len(r.items)) for r in found] == [("my-model", 3)]
    assert "superseded" in notes[0]


def test_a_single_results_or_samples_file_brings_its_run(tmp_path: Path) -> None:
    samples = write_run(tmp_path / "m", random_lines(2, seed=0))
    results = next((tmp_path / "m").glob("results_*.json"))
    for given in (samples, results):
        (found,) = runs.find_runs([given])
        assert (found.samples, found.results) == (samples, results)


# --------------------------------------------------------------------------- recomputing


def test_items_with_order_bound_options_leave_scenario_a(tmp_path: Path) -> None:
    flagged = [-1.0] + [-5.0] * 23
    marked = sample_line(0, flagged)
    marked["doc"] |= {"exchangeable": False, "nonexchangeable_reasons": ["sorted numbers"]}
    old_format = sample_line(1, flagged)
    old_format["doc"]["options"][3] = "All of the above"  # no guard keys: the report applies the guard
    plain = sample_line(2, flagged)
    path = write_run(tmp_path, [marked, old_format, plain])
    run = runs.Run("m", "leak_mmlu", path, None, tuple(reader.read_samples(path)[0]), {})
    scored = analysis.analyse(run)
    left_out = analysis.summarise(scored, analysis.Settings(null_draws=0))
    assert (left_out.leak_a_n, left_out.n_nonexch, left_out.n_items) == (1, 2, 3)
    kept = analysis.summarise(scored, analysis.Settings(null_draws=0, keep_nonexchangeable=True))
    assert kept.leak_a_n == 3 and kept.leak_a == 1.0
    assert scored.items[1].item.guard_applied_here and "above" in scored.items[1].item.nonexch_reasons[0]


def test_planted_leak_is_found_and_clean_model_is_not(two_models: Path) -> None:
    loaded, _ = runs.load_runs([two_models])
    summaries = {r.model: analysis.summarise(analysis.analyse(r), analysis.Settings(null_draws=0)) for r in loaded}
    leaky, clean = summaries["leaky"], summaries["clean"]
    assert leaky.leak_a == 1.0 and leaky.leak_a_p < 1e-12 and leaky.orig_rank == 0.0
    assert leaky.leak_a_chance == pytest.approx(1 / 24) and leaky.leak_a_ci_lo > 0.7
    # 12 items, no control: the mirror null's smallest p-value is 1/12, above alpha, so the
    # calibrated detector cannot flag an item of so small a run (it needs 21 items or control items)
    assert leaky.leak_b_cal_null == "mirror" and leaky.leak_b_cal == 0.0
    assert clean.leak_a < 0.3 and clean.leak_a_p > 0.01 and clean.leak_b_cal < 0.3


def test_delta_threshold_moves_scenario_b_and_its_bars(two_models: Path) -> None:
    loaded, _ = runs.load_runs([two_models])
    analyses = [analysis.analyse(r) for r in loaded]
    figures = {}
    for delta in (-1.0, 1.0):  # decision_function lies in [-0.5, 0.5]: nothing, then everything flagged
        settings = analysis.Settings(delta=delta, null_draws=0)
        summaries = [analysis.summarise(a, settings) for a in analyses]
        assert {s.leak_b for s in summaries} == {0.0 if delta < 0 else 1.0}
        fig = plots.bar_figure(figure_data.bar_data(summaries, panel="benchmark", label="model"),
                               figure_data.bar_series(settings))
        figures[delta] = {p.get_gid(): p.get_width() for ax in fig.axes for p in ax.patches if p.get_gid()}
        plots.plt.close(fig)
    assert figures[-1.0]["b|MMLU|leaky"] == 0.0 and figures[1.0]["b|MMLU|leaky"] == 1.0
    assert figures[-1.0]["a|MMLU|leaky"] == figures[1.0]["a|MMLU|leaky"] == 1.0


def test_isolation_null_is_seeded_and_bounded() -> None:
    first = reference_rule.isolation_null_scores(24, draws=6, seed=3)
    assert np.array_equal(first, reference_rule.isolation_null_scores(24, draws=6, seed=3))
    settings = analysis.Settings(null_draws=6, seed=3)
    assert analysis.null_rate(24, 1.0, settings) == 1.0 and analysis.null_rate(24, -1.0, settings) == 0.0
    assert np.isnan(analysis.null_rate(24, -0.2, analysis.Settings(null_draws=0)))


def test_the_report_loads_no_model_library(two_models: Path, tmp_path: Path) -> None:
    argv = [str(two_models), "--out", str(tmp_path / "rep"), "--no-reference-rule", "--formats", "svg",
            "--cases", "0"]
    code = (
        "import sys\n"
        "from lm_eval_leakage.report import cli\n"
        f"assert cli.main({argv!r}) == 0\n"
        "heavy = [m for m in ('lm_eval', 'torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))"
    )
    env = os.environ | {"LM_EVAL_LEAKAGE_AUTOLOAD": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip().splitlines()[-1] == "heavy:"


# --------------------------------------------------------------------------- outputs


def test_cli_writes_every_table_and_figure(two_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    argv = [str(two_models), "--out", str(out), "--delta-sweep=-0.25,-0.2,-0.15", "--case", "q5",
            "--null-draws", "5", "--cases", "1"]
    assert cli.main(argv) == 0
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "subjects.md", "subjects.csv",
                 "items.csv", "top_items.md", "delta_sweep.csv", "delta_sweep.md", "figures/leaderboard.png",
                 "figures/leaderboard.svg", "figures/subjects_leak_mmlu.png",
                 "figures/subjects_leak_mmlu.svg",
                 "figures/cases/leaky__leak_mmlu__q5.png", "figures/cases/clean__leak_mmlu__q5.svg"):
        assert (out / name).is_file(), name
    subjects = read_csv(out / "subjects.csv")
    assert {(r["model"], r["subject"], r["n_items"]) for r in subjects} == {
        (m, s, "6") for m in ("clean", "leaky") for s in ("anatomy", "virology")}
    assert len(read_csv(out / "delta_sweep.csv")) == 6 and len(read_csv(out / "items.csv")) == 24
    top = (out / "top_items.md").read_text(encoding="utf-8")
    assert "Question 0?" in top and "A: option a; B: option b" in top
    assert cli.main([*argv[:3], "--subjects", "virology", *FAST]) == 0
    assert {r["n_items"] for r in read_csv(out / "leaderboard.csv")} == {"6"}


def test_html_page_is_self_contained_and_sortable(two_models: Path, tmp_path: Path) -> None:
    assert cli.main([str(two_models), "--out", str(tmp_path / "rep"), *FAST, "--formats", "svg"]) == 0
    page = (tmp_path / "rep" / "leaderboard.html").read_text(encoding="utf-8")
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert page.count('<table class="sortable">') == 3 and "<svg" in page and 'data-value="1.0"' in page
    node = shutil.which("node")
    if node:
        script = page[page.rindex("<script>") + len("<script>"): page.rindex("</script>")]
        (tmp_path / "sort.js").write_text(script, encoding="utf-8")
        subprocess.run([node, "--check", str(tmp_path / "sort.js")], check=True)


def test_case_figure_highlights_original_and_best() -> None:
    case = plots.CaseData(title="m / t / item", question="Q?", options=("a", "b", "c"),
                          perms=tuple(itertools.permutations(range(3))),
                          scores=(-2.0, -1.0, -3.0, -4.0, -5.0, -6.0))
    fig = plots.case_figure(case)
    colours = [tuple(round(c, 3) for c in p.get_facecolor()[:3]) for p in fig.axes[0].patches]
    to_rgb = plots.matplotlib.colors.to_rgb
    assert colours[0] == tuple(round(c, 3) for c in to_rgb(plots.COLOURS["a"]))
    assert colours[1] == tuple(round(c, 3) for c in to_rgb(plots.COLOURS["b"]))
    assert {colours[j] for j in range(2, 6)} == {tuple(round(c, 3) for c in to_rgb(plots.COLOURS["other"]))}
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "Q: Q?" in texts and "A: a" in texts and "C: c" in texts
    plots.plt.close(fig)


def test_a_font_file_can_be_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fonts, "_extra_fonts", [])
    fonts._font_setup.cache_clear()
    mono = fonts.font_manager.findfont(fonts.font_manager.FontProperties(family="DejaVu Sans Mono"))
    try:
        assert fonts.use_font_file(mono) == "DejaVu Sans Mono"
        assert fonts.text_font()[0] == "DejaVu Sans Mono"
    finally:
        fonts._extra_fonts.clear()
        fonts._font_setup.cache_clear()
    argv = [str(tmp_path), "--out", str(tmp_path / "rep"), "--font", str(tmp_path / "no.ttf")]
    assert cli.main(argv) == 2
    assert "no.ttf does not exist" in capsys.readouterr().err


def test_text_no_font_can_draw_is_replaced_and_said() -> None:
    text, replaced = fonts.drawable("鳃弓 gill")
    assert text.endswith(" gill")
    assert replaced == (not fonts.has_cjk_font())
    assert plots.wrap_text("鳃" * 30, 20) == ["鳃" * 10, "鳃" * 10, "鳃" * 10]


def test_paper_rule_null_is_simulated_once_per_number_of_orderings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []

    def fake(n_orderings: int, *, draws: int, seed: int) -> np.ndarray:
        calls.append((n_orderings, draws, seed))
        return np.linspace(-0.5, 0.5, draws)

    monkeypatch.setattr(analysis, "isolation_null_scores", fake)
    analysis._isolation_null.cache_clear()
    settings = analysis.Settings(null_draws=10, seed=11)
    rates = [analysis.null_rate(n, d, settings) for n in (24, 24, 120, 24) for d in (-0.2, 0.0)]
    assert calls == [(24, 10, 11), (120, 10, 11)]
    assert rates[:2] == [0.3, 0.5]  # draws below -0.2: 3 of 10; below 0: 5 of 10
    analysis._isolation_null.cache_clear()
