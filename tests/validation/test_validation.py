"""Controlled-contamination validation: the fast, model-free parts.

Item sampling, training texts, detectors and metrics, the Markdown tables, and the parsing of
lm-eval's samples, with hand-built data. The runs on real models are in
``tests/e2e/test_validation_e2e.py``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from support.data import fake_records

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS
from lm_eval_leakage.core.templates import render
from lm_eval_leakage.validation.config import ValidationConfig
from lm_eval_leakage.validation.detectors import detection_metrics, detector_outputs, detectors
from lm_eval_leakage.validation.sampling import answer_indices, sample_items, shown_ordering, training_text
from lm_eval_leakage.validation.tables import comparison_markdown

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
    for name in ("leak_a", "orig_p", "orig_z", "leak_b_cal"):
        m = detection_metrics(labels, out[name]["flag"], out[name]["score"])
        # A lone spike on i.i.d. scores: the slot-agreement statistic misses a few (recall 0.85)
        assert m.recall >= (0.8 if name == "leak_b_cal" else 1.0) and m.roc_auc > 0.9, name
    assert out["orig_z"]["flag"][20:].mean() <= 0.2


def test_comparison_tables_line_up_runs_and_epochs() -> None:
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
    rows = [line for line in text.splitlines() if line.startswith("| a / native | orig_p |")]
    assert len(rows) == 2  # one AUC row, one false-positive row
    auc = rows[0].strip("| ").split(" | ")
    expected = [first["epochs"][e]["detectors"]["orig_p"]["roc_auc"] for e in ("0", "3")]
    assert [float(cell) for cell in auc[2:]] == pytest.approx(expected, abs=5e-4)
    assert expected[1] > 0.9  # the bumped epoch separates the halves
    assert "ep 5" not in text  # only the epochs every run scored
    assert text.count("| b / native | leak_b_cal |") == 3
    with pytest.raises(ValueError, match="no runs"):
        comparison_markdown([])
    with pytest.raises(ValueError, match="share no"):
        comparison_markdown([first, {"config": {}, "epochs": {"7": {}}}])


# Figures of the previous implementation of detector_outputs (which chained the per-item statistics,
# the IsolationForest score and the calibrated mirror-null p-values itself), computed on the input
# below before detector_outputs was routed through core.pipeline; the pipeline must give the same.
PREVIOUS_SCORES = {
    "orig_p": [-1 / 24, -1 / 24, -2 / 24, -23 / 24, -22 / 24, -9 / 24, -16 / 24],
    "orig_z": [2.7874585789853827, 2.6279193033017103, 1.7219343218579581, -0.911947972576388,
               -1.1657955391291963, 0.34416234797995565, -0.4184980632629392],
    "leak_b_d020": [0.2581922301855444, 0.23194511548677643, 0.12460906824371243, 0.18535742724549853,
                  0.2534371695465021, 0.13024720604943152, 0.15094550090520875],
}
PREVIOUS_FLAGS = {
    "leak_a": [1, 1, 0, 0, 0, 0, 0, 0],
    "orig_p": [1, 1, 0, 0, 0, 0, 0, 0],
    "orig_z": [1, 1, 1, 0, 0, 0, 0, 0],
    "leak_b_d020": [1, 1, 0, 0, 1, 0, 0, 0],
    "leak_b_d017": [1, 1, 0, 1, 1, 0, 0, 0],
    "leak_b_d015": [1, 1, 0, 1, 1, 0, 1, 0],
}


def test_detector_outputs_match_the_previous_implementation() -> None:
    perms = np.broadcast_to(np.array(list(itertools.permutations(range(4)))), (8, 24, 4))
    scores = np.round(np.random.default_rng(7).normal(size=(8, 24)), 2)
    scores[:3, 0] += 2.5
    scores[7, :] = -1.0  # all orderings equal: unusable, invalid for every detector
    out = detector_outputs(scores, perms)
    for name, flags in PREVIOUS_FLAGS.items():
        assert out[name]["flag"].astype(int).tolist() == flags, name
        assert out[name]["valid"].tolist() == [True] * 7 + [False], name
    assert out["leak_a"]["score"][:7].tolist() == [1.0, 1.0, 0, 0, 0, 0, 0]
    for name, values in PREVIOUS_SCORES.items():
        assert out[name]["score"][:7] == pytest.approx(values, rel=1e-12, abs=1e-15), name
    for delta_name in ("leak_b_d017", "leak_b_d015"):
        assert np.array_equal(out[delta_name]["score"][:7], out["leak_b_d020"]["score"][:7])
    # The calibrated detector (its statistic changed since): the slot-agreement correlation and
    # the mirror p-value (1 + #{other items' mirror >= it}) / 7, from their definitions.
    template = [(perms[0] == perms[0][j]).sum(axis=1) + 4 * (np.arange(24) == j) for j in range(24)]
    upper = np.array([np.corrcoef(s, template[np.argmax(s)])[0, 1] for s in scores[:7]])
    lower = np.array([np.corrcoef(-s, template[np.argmin(s)])[0, 1] for s in scores[:7]])
    assert out["leak_b_cal"]["score"][:7] == pytest.approx(upper, rel=1e-12)
    mirror = np.array([(1 + np.sum(np.delete(lower, i) >= upper[i])) / 7 for i in range(7)])
    assert out["leak_b_cal"]["valid"].tolist() == [True] * 7 + [False]
    for alpha in (0.05, 0.2, 0.35):
        flags = detector_outputs(scores, perms, alpha=alpha)["leak_b_cal"]["flag"]
        assert flags.tolist() == (mirror < alpha).tolist() + [False]


def test_detector_outputs_pool_the_mirror_null_per_number_of_orderings() -> None:
    """Items with 24 and 120 orderings in one run: each gets what a run of its own group gives."""
    rng = np.random.default_rng(5)
    four = np.broadcast_to(np.array(list(itertools.permutations(range(4)))), (6, 24, 4))
    five = np.broadcast_to(np.array(list(itertools.permutations(range(5)))), (5, 120, 5))
    s4, s5 = rng.normal(size=(6, 24)), rng.normal(size=(5, 120))
    mixed = detector_outputs([*s4, *s5], [*four, *five], alpha=0.5)
    alone = [detector_outputs(s4, four, alpha=0.5), detector_outputs(s5, five, alpha=0.5)]
    for name in mixed:
        for key in ("score", "flag", "valid"):
            joined = np.concatenate([alone[0][name][key], alone[1][name][key]])
            assert np.array_equal(mixed[name][key], joined, equal_nan=key == "score"), (name, key)


def test_score_with_lm_eval_reads_the_logged_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores and orderings per item from lm-eval's samples, whichever way the responses are nested."""
    import sys
    import types

    from lm_eval_leakage.validation.scoring import lm_eval_command, score_with_lm_eval

    perms = [[0, 1], [1, 0]]

    def doc(item_id: str) -> dict:
        return {"id": item_id, "question": "q", "options": ["x", "y"], "perms": perms}

    samples = [
        {"doc": doc("a"), "filtered_resps": [["-1.5", "False"], ["-2.0", "False"]]},
        {"doc": doc("b"), "filtered_resps": [-3.0, -0.5]},
        {"doc": doc("c"), "resps": [[["-4.25", "False"]], [["-1.0", "True"]]]},
    ]
    calls: list[dict] = []

    def simple_evaluate(**kwargs: object) -> dict:
        calls.append(kwargs)
        return {"samples": {"leak_mmlu": samples}, "results": {"leak_mmlu": {"leak_a": 0.5, "alias": "x"}}}

    monkeypatch.setitem(sys.modules, "lm_eval", types.SimpleNamespace(simple_evaluate=simple_evaluate))
    scores, orderings, aggregated = score_with_lm_eval(
        "model", Path("items.jsonl"), task="leak_mmlu", batch_size=24, device="cpu"
    )
    assert scores == {"a": [-1.5, -2.0], "b": [-3.0, -0.5], "c": [-4.25, -1.0]}
    assert orderings == {"a": perms, "b": perms, "c": perms}
    assert aggregated == {"leak_a": 0.5}
    assert calls[0]["log_samples"] is True and calls[0]["metadata"] == {"data_files": "items.jsonl"}
    assert "--log_samples" in lm_eval_command("model", Path("items.jsonl"), "leak_mmlu", 24, "cpu")
