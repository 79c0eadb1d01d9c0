"""The report never loses or mixes data silently: bad input cases, table-driven.

Each table is a JSON file under ``tests/data/bad_input/report/`` (one case per entry, ``why`` says
what it checks): samples lines that are not UTF-8 or not JSON (``samples_lines.json``), models whose
names collide (``model_names.json``), case-figure ids that collide (``case_ids.json``), control
tasks without control items (``control_tasks.json``), argument forms and counts
(``arguments.json``) and reused ``--out`` folders (``out_folders.json``).
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lm_eval_leakage.report import cli, reader, runs

TABLES = Path(__file__).resolve().parent.parent / "data" / "bad_input" / "report"

# The lm-eval layout of ``test_report`` (a run folder with its results and samples files).
STAMP = "2026-01-02T03-04-05.678901"


def sample_line(doc_id: int, scores: list[float], *, subject: str = "anatomy") -> dict[str, Any]:
    """One samples line in lm-eval's format for a four-option item."""
    perms = [list(p) for p in itertools.permutations(range(4))][: len(scores)]
    doc = {"id": f"q{doc_id}", "subject": subject, "question": f"Question {doc_id}?",
           "options": [f"option {chr(97 + i)}" for i in range(4)], "perms": perms, "n_distinct": len(perms),
           "complete": True, "delta": -0.2}
    resps = [[[repr(float(s)), "False"]] for s in scores]
    return {"doc_id": doc_id, "doc": doc, "target": "0", "resps": resps, "filtered_resps": [r[0] for r in resps],
            "filter": "none"}


def write_run(folder: Path, lines: list[dict[str, Any]], *, task: str = "leak_mmlu",
              model: str = "/m/fake-model", stamp: str = STAMP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / f"samples_{task}_{stamp}.jsonl"
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    body = {"results": {task: {"alias": task, "leak_a,none": 0.0}}, "model_name": model}
    (folder / f"results_{stamp}.json").write_text(json.dumps(body), encoding="utf-8")
    return samples


def random_lines(n_items: int, *, seed: int, subjects: tuple[str, ...] = ("anatomy",)) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [sample_line(i, rng.normal(-50, 1, size=24).tolist(), subject=subjects[i % len(subjects)])
            for i in range(n_items)]


FAST = ["--null-draws", "0", "--cases", "0", "--formats", "svg", "--top", "2", "--no-reference-rule"]


def cases(name: str) -> list[Any]:
    table = json.loads((TABLES / name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["why"]) for case in table]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- 1. bad bytes and lines


def edited_samples(folder: Path, case: dict[str, Any]) -> Path:
    """A 50-item samples file with the case's byte edits (and cut, if any)."""
    path = write_run(folder, random_lines(50, seed=4))
    lines = path.read_bytes().split(b"\n")
    for edit in case["edits"]:
        number = edit["line"] - 1
        lines[number] = lines[number].replace(edit["find"].encode(), bytes.fromhex(edit["hex"]), 1)
    data = b"\n".join(lines)
    if "cut_after" in case:
        marker = bytes.fromhex(case["cut_after"])
        data = data[: data.index(marker) + len(marker)]
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", cases("samples_lines.json"))
def test_a_bad_samples_line_costs_that_line_only(case: dict[str, Any], tmp_path: Path) -> None:
    path = edited_samples(tmp_path / "m", case)
    items, problems = reader.read_samples(path, on_bad_line="collect")
    assert len(items) == case["n_items"]
    assert [(p.line, p.problem.split(" (")[0][: len(text)]) for p, (_, text) in
            zip(problems, case["problems"], strict=True)] == [tuple(p) for p in case["problems"]]
    assert all(str(p).startswith(f"{path}:{p.line}: ") for p in problems)


def test_a_non_utf8_line_is_a_bad_line_of_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = json.loads((TABLES / "samples_lines.json").read_text(encoding="utf-8"))[0]
    path = edited_samples(tmp_path / "runs" / "m", case)
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), *FAST]) == 1
    assert f"{path}:4: not UTF-8" in capsys.readouterr().err
    (row,) = read_csv(tmp_path / "rep" / "leaderboard.csv")
    assert (row["n_items"], row["bad_lines"]) == ("49", "1")
    assert f"{path}:4: not UTF-8" in (tmp_path / "rep" / "leaderboard.md").read_text(encoding="utf-8")
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--skip-bad-lines", *FAST]) == 0


# --------------------------------------------------------------------------- 2. model names


def write_results_run(folder: Path, spec: dict[str, Any], stamp: str) -> None:
    args = spec.get("model_args")
    pretrained = (args.get("pretrained") if isinstance(args, dict)
                  else dict(p.split("=", 1) for p in args.split(","))["pretrained"]) if args else None
    write_run(folder, random_lines(4, seed=len(stamp)), model=spec.get("model_name") or pretrained, stamp=stamp)
    results = folder / f"results_{stamp}.json"
    if args is not None:
        body = json.loads(results.read_text(encoding="utf-8"))
        body["config"] = {"model": "hf", "model_args": args}
        results.write_text(json.dumps(body), encoding="utf-8")


@pytest.mark.parametrize("case", cases("model_names.json"))
def test_models_are_told_apart_by_full_name_and_arguments(case: dict[str, Any], tmp_path: Path) -> None:
    for i, spec in enumerate(case["runs"]):
        write_results_run(tmp_path / "runs" / f"r{i}", spec, f"202{i}-01-02T03-04-05.678901")
    loaded, notes = runs.load_runs([tmp_path / "runs"])
    assert sorted(r.model for r in loaded) == case["models"]
    assert sum("superseded" in n for n in notes) == case["superseded"]
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), *FAST]) == 0
    assert sorted(r["model"] for r in read_csv(tmp_path / "rep" / "leaderboard.csv")) == case["models"]
    board = (tmp_path / "rep" / "leaderboard.md").read_text(encoding="utf-8")
    assert ("## Superseded runs" in board) == bool(case["superseded"])
    if case["superseded"]:
        assert str(next((tmp_path / "runs" / "r0").glob("samples_*.jsonl"))) in board


# --------------------------------------------------------------------------- 3. --out folders


@pytest.mark.parametrize("case", cases("out_folders.json"))
def test_out_folder_is_never_mixed_silently(case: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "runs" / "clean", random_lines(12, seed=1, subjects=("anatomy", "virology")))
    out = tmp_path / "place" / "rep"
    fast = ["--null-draws", "0", "--formats", "svg", "--top", "2", "--no-reference-rule"]
    if case.get("earlier") is not None:
        assert cli.main([str(tmp_path / "runs"), "--out", str(out), *fast, "--cases", "0", *case["earlier"]]) == 0
    if case.get("out_is_file"):
        out.parent.mkdir(parents=True)
        out.write_text("x", encoding="utf-8")
    for name, text in case.get("files", {}).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    for name, text in case.get("outside", {}).items():
        (out.parent / name).write_text(text, encoding="utf-8")
    if case.get("marker_extra"):
        with (out / ".lm_eval_leakage_report").open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in case["marker_extra"]))
    capsys.readouterr()
    cases_args = [] if "--cases" in case["args"] else ["--cases", "0"]
    assert cli.main([str(tmp_path / "runs"), "--out", str(out), *fast, *cases_args, *case["args"]]) == case["exit"]
    if "error" in case:
        assert case["error"] in capsys.readouterr().err
    for name in case.get("present", []):
        assert (out / name).exists(), name
    for name in case.get("absent", []):
        assert not (out / name).exists(), name
    for name in case.get("outside", {}):
        assert (out.parent / name).exists(), name
    if "case_figures" in case:  # the earlier report's three case figures are gone, the new one is there
        assert len(list((out / "figures" / "cases").glob("*.svg"))) == 1


# --------------------------------------------------------------------------- 4. arguments


@pytest.mark.parametrize("case", cases("arguments.json"))
def test_argument_forms_and_counts(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "runs" / "a", random_lines(6, seed=1, subjects=("anatomy", "virology")), model="/m/a")
    write_run(tmp_path / "runs" / "b", random_lines(6, seed=2, subjects=("anatomy",)), model="/m/b")
    fast = ["--null-draws", "0", "--cases", "0", "--formats", "svg", "--top", "2"]
    argv = [str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), *fast, *case["args"]]
    if case["exit"] == 2 and case["args"][0] != "--subjects":
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        assert stopped.value.code == 2
    else:
        assert cli.main(argv) == case["exit"]
    err = capsys.readouterr().err
    if "error" in case:
        assert case["error"] in err and "Traceback" not in err
        assert not (tmp_path / "rep").exists()
    if "note" in case:
        assert case["note"] in err
        assert case["note"] in (tmp_path / "rep" / "leaderboard.md").read_text(encoding="utf-8")
    if "sweep_rows" in case:
        assert len(read_csv(tmp_path / "rep" / "delta_sweep.csv")) == case["sweep_rows"]


# --------------------------------------------------------------------------- 5. case-figure names


@pytest.mark.parametrize("case", cases("case_ids.json"))
def test_case_figure_names_are_unique(case: dict[str, Any], tmp_path: Path) -> None:
    lines = random_lines(len(case["ids"]), seed=3)
    for line, item_id in zip(lines, case["ids"], strict=True):
        line["doc"]["id"] = item_id
    write_run(tmp_path / "runs" / "m", lines)
    case_args = [a for i in dict.fromkeys(case["ids"]) for a in ("--case", i)]
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), *FAST, *case_args]) == 0
    names = sorted(p.stem for p in (tmp_path / "rep" / "figures" / "cases").glob("*.svg"))
    assert len(names) == len(case["ids"])
    if "names" in case:
        assert names == [f"fake-model__leak_mmlu__{n}" for n in case["names"]]


# --------------------------------------------------------------------------- 6. control tasks


@pytest.mark.parametrize("case", cases("control_tasks.json"))
def test_control_task_without_usable_control_items_is_said(case: dict[str, Any], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    lines = random_lines(case["observed"] + case["control"], seed=5)
    for line in lines[case["observed"]:]:
        line["doc"]["role"] = "control"
    write_run(tmp_path / "runs" / "m", lines, task=case["task"])
    assert cli.main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), *FAST]) == 0
    err = capsys.readouterr().err
    board = (tmp_path / "rep" / "leaderboard.md").read_text(encoding="utf-8")
    if case["note"] is None:
        assert "control" not in err and "## Notes" not in board
    else:
        assert case["note"] in err and case["note"] in board
