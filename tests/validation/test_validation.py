"""Controlled-contamination validation (issue 4).

Fast tests cover the pure parts (item sampling, training texts, metrics) with hand-built data; the
slow test runs the quick configuration end to end on the real offline model (SmolLM2-135M, real
MMLU items): fine-tune on 4 items, score 8 through lm-eval, and check that training moved the
leaked items' original ordering up and the clean items' not.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS
from lm_eval_leakage.core.templates import render
from lm_eval_leakage.validation.experiment import (
    ValidationConfig,
    answer_indices,
    detection_metrics,
    detector_outputs,
    detectors,
    quick_config,
    sample_items,
    shown_ordering,
    training_text,
)

ITEM = BENCHMARKS["mmlu"].to_item(
    {
        "id": "q0",
        "question": "Which tissue connects bone to bone?",
        "subject": "anatomy",
        "choices": ["muscle", "ligament", "blood", "cartilage"],
        "answer": 1,
    },
    0,
)


def fake_records(n: int) -> list[dict]:
    return [
        {
            "question": f"Question number {i} " + "word " * (i % 7),
            "subject": "anatomy",
            "choices": [f"alpha {i}", f"beta {i}", f"gamma {i}", f"delta {i}"],
            "answer": i % 4,
        }
        for i in range(n)
    ]


def words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- texts and orderings


def test_template_text_is_exactly_what_the_task_scores() -> None:
    context, block = render(ITEM.question, ITEM.options, template="reference")
    assert training_text(ITEM, (0, 1, 2, 3), train_format="template") == context + block
    shown = (2, 0, 3, 1)
    context, block = render(ITEM.question, [ITEM.options[i] for i in shown], template="reference")
    assert training_text(ITEM, shown, train_format="template") == context + block


def test_native_text_letters_the_correct_option_where_it_is_shown() -> None:
    text = training_text(ITEM, (0, 1, 2, 3), train_format="native", answers=(1,))
    assert text == (
        "Which tissue connects bone to bone?\nA. muscle\nB. ligament\nC. blood\nD. cartilage\nAnswer: B"
    )
    moved = training_text(ITEM, (1, 0, 2, 3), train_format="native", answers=(1,))
    assert moved.splitlines()[1] == "A. ligament" and moved.endswith("Answer: A")
    assert training_text(ITEM, (3, 2, 1, 0), train_format="native", answers=(0, 3)).endswith("Answer: AD")
    with pytest.raises(ValueError, match="needs the answer"):
        training_text(ITEM, (0, 1, 2, 3), train_format="native")


@pytest.mark.parametrize(
    ("benchmark", "record", "expected"),
    [
        ("mmlu", {"answer": 2}, (2,)),
        ("cmmlu", {"Answer": "B"}, (1,)),
        ("ceval", {"answer": "D"}, (3,)),
        ("cmb", {"answer": "ACE"}, (0, 2, 4)),
    ],
)
def test_answer_indices_per_schema(benchmark: str, record: dict, expected: tuple[int, ...]) -> None:
    assert answer_indices(record, benchmark) == expected


def test_answer_indices_missing_raises() -> None:
    with pytest.raises(ValueError, match="no answer"):
        answer_indices({"id": "x"}, "mmlu")


def test_shown_ordering_per_scenario() -> None:
    assert shown_ordering(ITEM, scenario="a", seed=0) == (0, 1, 2, 3)
    b = shown_ordering(ITEM, scenario="b", seed=0)
    assert sorted(b) == [0, 1, 2, 3] and b != (0, 1, 2, 3)
    assert shown_ordering(ITEM, scenario="b", seed=0) == b  # seeded
    draws = {shown_ordering(ITEM, scenario="b", seed=s) for s in range(40)}
    assert len(draws) > 10  # spread over the 23 non-identity orderings


# --------------------------------------------------------------------------- sampling


def test_sample_items_split_is_seeded_disjoint_and_shared_across_runs() -> None:
    records = fake_records(200)
    config = ValidationConfig(out_dir="unused", n_items=10, filler=4, max_length=30, seed=3)
    sampled = sample_items(records, config, words)
    roles = [s.role for s in sampled]
    assert roles == ["leaked"] * 5 + ["clean"] * 5 + ["filler"] * 4
    assert len({s.item.id for s in sampled}) == 14
    assert all(words(s.text) <= 30 for s in sampled if s.role != "clean")
    assert all(s.text == "" and s.shown == () for s in sampled if s.role == "clean")
    assert all(s.shown == (0, 1, 2, 3) for s in sampled if s.role != "clean")
    # The four scenario/format runs of one seed share the same items and the same split.
    for scenario in ("a", "b"):
        for train_format in ("template", "native"):
            other = sample_items(
                records,
                ValidationConfig(
                    out_dir="unused",
                    n_items=10,
                    filler=4,
                    max_length=30,
                    seed=3,
                    scenario=scenario,
                    train_format=train_format,
                ),
                words,
            )
            assert [(s.item.id, s.role) for s in other] == [(s.item.id, s.role) for s in sampled]
    assert [
        s.item.id
        for s in sample_items(
            records, ValidationConfig(out_dir="unused", n_items=10, max_length=30, seed=4), words
        )
    ] != [s.item.id for s in sampled[:10]]


def test_sample_items_skips_duplicate_options_long_and_nonexchangeable_items() -> None:
    records = fake_records(30)
    records[0]["choices"] = ["same", "same", "x", "y"]
    records[1]["choices"] = ["1", "2", "3", "All of the above"]
    records[2]["question"] = "long " * 50
    config = ValidationConfig(out_dir="unused", n_items=27, max_length=30, seed=0)
    ids = {s.item.id for s in sample_items(records, config, words)}
    assert not ids & {"mmlu-0", "mmlu-1", "mmlu-2"}
    with pytest.raises(ValueError, match="eligible"):
        sample_items(records, ValidationConfig(out_dir="unused", n_items=28, max_length=30), words)


# --------------------------------------------------------------------------- metrics


def test_detection_metrics_known_confusion_matrix() -> None:
    labels = np.array([True, True, False, False])
    m = detection_metrics(labels, np.array([True, False, True, False]), np.array([4.0, 3.0, 2.0, 1.0]))
    assert (m.accuracy, m.precision, m.recall, m.f1, m.fpr_clean) == (0.5, 0.5, 0.5, 0.5, 0.5)
    assert m.roc_auc == 1.0 and m.tpr_at_fpr == 1.0
    nothing = detection_metrics(labels, np.zeros(4, bool), np.array([1.0, 2.0, 3.0, 4.0]))
    assert math.isnan(nothing.precision) and math.isnan(nothing.f1) and nothing.recall == 0.0
    assert nothing.roc_auc == 0.0 and nothing.tpr_at_fpr == 0.0
    # +inf scores (p-values at their floor) keep their order; ties count half in the AUC.
    tied = detection_metrics(labels, np.ones(4, bool), np.array([np.inf, 1.0, 1.0, 0.0]))
    assert tied.roc_auc == pytest.approx(0.875)


def test_detector_outputs_find_a_planted_original_ordering() -> None:
    from lm_eval_leakage.core.orderings import build_orderings

    perms = np.array(build_orderings(["a", "b", "c", "d"]).perms)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 24))
    scores[:20, 0] += 8.0  # the first 20 items "leaked" in their original order
    out = detector_outputs(scores, np.broadcast_to(perms, (40, 24, 4)))
    assert set(out) == {d.name for d in detectors()}
    labels = np.arange(40) < 20
    for name in ("alg1", "perm_p", "orig_z", "calib_b"):
        m = detection_metrics(labels, out[name]["flag"], out[name]["score"])
        assert m.recall == 1.0 and m.roc_auc > 0.9, name
    assert out["orig_z"]["flag"][20:].mean() <= 0.2


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_quick_configuration_end_to_end(tmp_path: Path) -> None:
    from lm_eval_leakage.validation.experiment import run_validation

    report = run_validation(quick_config(tmp_path, keep_checkpoints=False))

    for name in ("items.jsonl", "split.json", "run.json", "validation.json", "validation.md", "roc.png"):
        assert (tmp_path / name).is_file(), name
    assert set(report["epochs"]) == {"0", "1"}
    for epoch in report["epochs"].values():
        assert set(epoch["detectors"]) == {d.name for d in detectors()}
        for m in epoch["detectors"].values():
            assert m["n_leaked"] + m["n_clean"] <= 8
    assert "lm_eval --model hf" in report["lm_eval_commands"]["1"]
    assert not (tmp_path / "checkpoints" / "epoch_1").exists()
    scores = json.loads((tmp_path / "scores" / "epoch_1.json").read_text())["items"]
    assert len(scores) == 8 and all(len(it["scores"]) == 24 for it in scores)

    # What the leaked items were trained on is what the detection task scored.
    split = json.loads((tmp_path / "split.json").read_text())
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    leaked = [it for it in items if split["roles"][it["id"]] == "leaked"]
    context, block = render(leaked[0]["question"], leaked[0]["choices"], template="reference")
    assert context + block in split["training_texts"]

    # The real assertion: one epoch moved the leaked items' original ordering up, not the clean ones'.
    before, after = report["epochs"]["0"]["sanity"], report["epochs"]["1"]["sanity"]
    gain_leaked = after["leaked_mean_z"] - before["leaked_mean_z"]
    gain_clean = after["clean_mean_z"] - before["clean_mean_z"]
    assert after["leaked_mean_z"] > after["clean_mean_z"] + 0.5, (before, after)
    assert gain_leaked > gain_clean + 0.5, (before, after)
    assert after["leaked_mean_rank"] < after["clean_mean_rank"], (before, after)
    assert report["epochs"]["1"]["detectors"]["orig_z"]["roc_auc"] >= 0.75


@pytest.mark.slow
def test_tiny_model_run_resumes_where_it_stopped(tiny_model: Path, tmp_path: Path) -> None:
    """Plumbing on a tiny random model: checkpoints hold the optimiser, and --resume skips work."""
    from support.data import write_jsonl

    from lm_eval_leakage.validation.experiment import run_validation

    data = write_jsonl(tmp_path / "mmlu.jsonl", fake_records(12))
    out = tmp_path / "run"
    common = {"model_dir": str(tiny_model), "data_files": str(data), "n_items": 4, "max_length": 400}
    first = run_validation(quick_config(out, epochs=(1,), **common))
    assert set(first["epochs"]) == {"0", "1"}
    assert (out / "checkpoints" / "epoch_1" / "optimizer.pt").is_file()
    stamp = (out / "scores" / "epoch_1.json").stat().st_mtime_ns

    with pytest.raises(ValueError, match="different configuration"):
        run_validation(quick_config(out, epochs=(1, 2), learning_rate=1e-4, **common), resume=True)

    # Same configuration, resumed: nothing is scored or trained again.
    again = run_validation(quick_config(out, epochs=(1,), **common), resume=True)
    assert (out / "scores" / "epoch_1.json").stat().st_mtime_ns == stamp
    assert again["sessions"] == 2 and again["epochs"].keys() == first["epochs"].keys()


def test_comparison_tables_line_up_runs_and_epochs() -> None:
    from lm_eval_leakage.validation.experiment import comparison_markdown

    rng = np.random.default_rng(3)
    labels = np.arange(40) < 20
    perms = np.broadcast_to(np.array(list(itertools.permutations(range(4)))), (40, 24, 4))

    def report(scenario: str, epochs: dict[str, float]) -> dict:
        out = {"config": {"scenario": scenario, "train_format": "native"}, "epochs": {}}
        for epoch, bump in epochs.items():
            scores = rng.normal(size=(40, 24))
            scores[:20, 0] += bump
            outputs = detector_outputs(scores, perms)
            metrics = {
                name: detection_metrics(labels, o["flag"], o["score"]).__dict__ for name, o in outputs.items()
            }
            out["epochs"][epoch] = {"detectors": metrics}
        return out

    first, second = report("a", {"0": 0.0, "3": 10.0}), report("b", {"0": 0.0, "3": 10.0, "5": 10.0})
    text = comparison_markdown([first, second])
    rows = [line for line in text.splitlines() if line.startswith("| a / native | perm_p |")]
    assert len(rows) == 2  # one AUC row, one false-positive row
    auc = rows[0].strip("| ").split(" | ")
    expected = [first["epochs"][e]["detectors"]["perm_p"]["roc_auc"] for e in ("0", "3")]
    assert [float(cell) for cell in auc[2:]] == pytest.approx(expected, abs=5e-4)
    assert expected[1] > 0.9  # the bumped epoch separates the halves
    assert "ep 5" not in text  # only the epochs every run scored
    assert text.count("| b / native | calib_b |") == 3
    with pytest.raises(ValueError, match="no runs"):
        comparison_markdown([])
    with pytest.raises(ValueError, match="share no"):
        comparison_markdown([first, {"config": {}, "epochs": {"7": {}}}])
