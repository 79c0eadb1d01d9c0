"""The lm-eval glue called directly with hand-built documents and results: no model."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from support.data import CMB_RECORDS, MMLU_RECORDS, CMB_EXAMPLE, write_jsonl

from lm_eval_leakage.harness import glue
from lm_eval_leakage.core import stats
from lm_eval_leakage.benchmarks.schemas import InvalidItemError


@pytest.fixture
def mmlu_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)


def test_build_docs_orderings_and_requests(mmlu_file: Path) -> None:
    docs = glue.build_docs("mmlu", data_files=str(mmlu_file))
    assert len(docs) == 3
    doc = docs[0]
    assert doc["context"] == "\nWhich tissue connects bone to bone?:\n"
    assert len(doc["perms"]) == 24 and doc["perms"][0] == [0, 1, 2, 3] and doc["delta"] == -0.2
    choices = glue.doc_to_choice(doc)
    assert choices[0] == "A:ligament\nB:muscle\nC:blood \nD:cartilage\n"
    assert len(set(choices)) == 24


def test_native_template_docs(mmlu_file: Path) -> None:
    doc = glue.build_docs("mmlu", data_files=str(mmlu_file), template="native")[1]
    assert doc["context"].startswith("The following are multiple choice questions (with answers) about elementary")
    assert glue.doc_to_choice(doc)[0] == "A. 3\nB. 4\nC. 5\nD. 22\n"


def test_env_var_points_at_local_files(mmlu_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_EVAL_LEAKAGE_MMLU_DATA", str(mmlu_file))
    assert len(glue.build_docs("mmlu")) == 3


def test_cmb_six_options_sampled_and_five_complete() -> None:
    docs = glue.build_docs("cmb", data_files=str(CMB_EXAMPLE))
    sizes = {len(d["options"]): len(d["perms"]) for d in docs}
    assert sizes == {5: 120, 6: 120}
    six = next(d for d in docs if len(d["options"]) == 6)
    assert not six["complete"] and six["n_distinct"] == 720 and six["delta"] == -0.25


def test_invalid_item_stops_with_dataset_item_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [MMLU_RECORDS[0], {"question": "Q", "choices": ["only"]}])
    with pytest.raises(InvalidItemError, match=r"leak_mmlu \[.*bad\.jsonl\]: item '1': field 'choices\[0\]'"):
        glue.build_docs("mmlu", data_files=str(path))


def test_skip_invalid_counts_what_it_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [MMLU_RECORDS[0], {"question": "", "choices": ["a", "b"]}])
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        docs = glue.build_docs("mmlu", data_files=str(path), skip_invalid="true")
    assert len(docs) == 1
    assert "skipped 1 invalid item(s) of 2" in caplog.text


def test_zero_valid_items_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "", "choices": ["a", "b"]}])
    with pytest.raises(ValueError, match="no valid item"):
        glue.build_docs("mmlu", data_files=str(path), skip_invalid=True)


def test_custom_without_data_explains_both_ways() -> None:
    with pytest.raises(ValueError, match="LM_EVAL_LEAKAGE_CUSTOM_DATA"):
        glue.build_docs("custom")


def test_sample_items_is_seeded(mmlu_file: Path) -> None:
    a = [d["id"] for d in glue.build_docs("mmlu", data_files=str(mmlu_file), sample_items=2, sample_seed=3)]
    b = [d["id"] for d in glue.build_docs("mmlu", data_files=str(mmlu_file), sample_items=2, sample_seed=3)]
    assert a == b and len(a) == 2


def test_model_arguments_in_metadata_are_ignored(mmlu_file: Path) -> None:
    docs = glue.build_docs("mmlu", data_files=str(mmlu_file), pretrained="x", version=1.0, config_source="y")
    assert len(docs) == 3


def _doc(options: list[str], **extra: object) -> dict:
    from lm_eval_leakage.core.orderings import build_orderings

    perms = [list(p) for p in build_orderings(options).perms]
    return {"id": "x", "delta": -0.2, "perms": perms, "exchangeable": True} | extra


def _results(scores: np.ndarray) -> list[tuple[float, bool]]:
    return [(float(s), False) for s in scores]


def test_process_results_values_for_one_item() -> None:
    scores = np.linspace(-10.0, -20.0, 24)  # original first, strictly decreasing
    out = glue.process_results(_doc(list("abcd")), _results(scores))
    assert out["leak_a"] == 1.0 and out["leak_a_chance"] == pytest.approx(1 / 24)
    assert out["leak_a_p"] == [1.0, 24] and out["orig_rank"] == 0.0
    assert out["orig_p"] == pytest.approx(1 / 24)
    assert out["orig_z"] == pytest.approx(stats.item_stats(scores).zscore)
    assert out["n_excluded"] == 0 and out["n_nonexch"] == 0
    statistic, decoy, model, gaussian_p, n_orderings = out["leak_b_cal"]
    # The default statistic, the studentised maximum (max - mean) / sd, with no position model;
    # the number of orderings picks the item's pool for the mirror null.
    assert model == "intercept" and 0.0 < gaussian_p <= 1.0 and n_orderings == 24
    assert statistic == pytest.approx((scores.max() - scores.mean()) / scores.std(ddof=1))
    assert decoy == pytest.approx((scores.mean() - scores.min()) / scores.std(ddof=1))
    assert out["leak_b_cal_excess"] == out["leak_b_cal"]


def test_nonexchangeable_items_leave_scenario_a_only() -> None:
    scores = np.random.default_rng(0).normal(size=24)
    doc = _doc(list("abcd"), exchangeable=False)
    out = glue.process_results(doc, _results(scores))
    assert out["leak_a"] is None and out["orig_rank"] is None and out["n_nonexch"] == 1
    assert out["leak_b"] in (0.0, 1.0) and out["leak_b_cal"] is not None
    kept = glue.process_results(doc | {"keep_nonexchangeable": True}, _results(scores))
    assert kept["leak_a"] in (0.0, 1.0) and kept["n_nonexch"] == 1


def test_unusable_scores_are_excluded_and_counted() -> None:
    bad = glue.process_results(_doc(["a", "b"]), [(float("-inf"), False), (-3.0, False)])
    assert bad["leak_a"] is None and bad["leak_b_cal"] is None and bad["n_excluded"] == 1


def test_scenario_a_aggregations() -> None:
    rows = [
        glue.process_results(_doc(list("abcd")), _results(np.linspace(-1, -5, 24))),  # flagged
        glue.process_results(_doc(list("abcd")), _results(np.linspace(-5, -1, 24))),  # last
        glue.process_results(_doc(["a", "b"]), [(float("nan"), False), (-3.0, False)]),  # excluded
    ]
    assert glue.leakage_mean([r["leak_a"] for r in rows]) == 0.5
    assert glue.leakage_count([r["n_excluded"] for r in rows]) == 1
    expected = stats.scenario_a([True, False], [24, 24])
    assert glue.leakage_flag_pvalue([r["leak_a_p"] for r in rows]) == pytest.approx(expected.pvalue)
    assert glue.leakage_a_excess([r["leak_a_excess"] for r in rows]) == pytest.approx(0.5 - 1 / 24)
    assert glue.leakage_a_excess_lo([r["leak_a_excess_lo"] for r in rows]) == pytest.approx(expected.excess_ci[0])
    assert glue.leakage_a_excess_hi([r["leak_a_excess_hi"] for r in rows]) == pytest.approx(expected.excess_ci[1])
    assert glue.leakage_rank_pvalue([r["orig_rank_p"] for r in rows]) == pytest.approx(
        stats.rank_test([0.0, 1.0], [24, 24]).pvalue
    )
    assert math.isnan(glue.leakage_mean([None, None]))
    assert math.isnan(glue.leakage_flag_pvalue([None]))


def test_calibrated_aggregation_equals_the_batch_computation() -> None:
    from lm_eval_leakage.core import calibrated

    rng = np.random.default_rng(5)
    doc = _doc(list("abcd"), reference_rule=False)  # the IsolationForest rule is slow and not tested here
    scores = rng.normal(size=(300, 24))
    scores[:30, 3] += 6.0  # planted: one ordering stands out in 10% of items
    rows = [glue.process_results(doc, _results(s)) for s in scores]
    batch = calibrated.summarise_scenario_b(calibrated.scenario_b_pvalues(scores, np.asarray(doc["perms"])))
    assert batch.null == "mirror"
    assert glue.leakage_b_cal([r["leak_b_cal"] for r in rows]) == pytest.approx(batch.flagged_fraction)
    assert glue.leakage_b_cal_lo([r["leak_b_cal_lo"] for r in rows]) == pytest.approx(batch.excess_low)
    assert glue.leakage_b_cal_p([r["leak_b_cal_p"] for r in rows]) == pytest.approx(batch.pvalue)
    assert batch.flagged_fraction > 0.1
    assert all(r["leak_b"] is None for r in rows)


def test_calibrated_aggregation_pools_by_number_of_orderings() -> None:
    """Four- and five-option items (CMB) enter the mirror null in separate pools."""
    from lm_eval_leakage.core import calibrated

    rng = np.random.default_rng(6)
    docs = [_doc(list("abcd"), reference_rule=False), _doc(list("abcde"), reference_rule=False)]
    scores = [rng.normal(size=(220, 24)), rng.normal(size=(210, 120))]
    rows = [glue.process_results(doc, _results(s)) for doc, part in zip(docs, scores) for s in part]
    parts = [calibrated.scenario_b_pvalues(part, np.asarray(doc["perms"])) for doc, part in zip(docs, scores)]
    assert all(p.null == "mirror" for p in parts)
    flagged = sum(int(np.sum(p.pvalue < glue.CALIBRATED_ALPHA)) for p in parts)
    assert glue.leakage_b_cal([r["leak_b_cal"] for r in rows]) == pytest.approx(flagged / 430)


def test_cmb_records_in_hub_schema_build(tmp_path: Path) -> None:
    path = tmp_path / "cmb.json"
    path.write_text(__import__("json").dumps(CMB_RECORDS, ensure_ascii=False), encoding="utf-8")
    docs = glue.build_docs("cmb", data_files=str(path), template="native")
    assert [len(d["perms"]) for d in docs] == [120, 24]
    assert docs[0]["context"].startswith("以下是中国医师考试中执业医师考试的一道单项选择题")


def test_control_docs_and_observed_minus_control() -> None:
    from lm_eval.api.registry import get_aggregation

    docs = glue.build_docs("cmb", data_files=str(CMB_EXAMPLE), sample_items=6, control=True)
    roles = [d["role"] for d in docs]
    assert roles.count("observed") == 6 and roles.count("control") == 6
    observed = {d["id"]: d for d in docs if d["role"] == "observed"}
    for doc in docs:
        if doc["role"] == "control":
            twin = observed[doc["id"].removesuffix("~control")]
            assert doc["question"] == twin["question"] and doc["options"] != twin["options"]

    rng = np.random.default_rng(0)
    rows = []
    for doc in docs:
        scores = rng.normal(size=len(doc["perms"]))
        if doc["role"] == "observed":
            scores[0] += 10.0  # every observed item's original ordering is on top
        rows.append(glue.process_results(doc | {"reference_rule": False}, _results(scores)))
    control_rows = [r for r, d in zip(rows, docs) if d["role"] == "control"]
    assert all(r["leak_a"] is None and r["n_excluded"] == 0 for r in control_rows)
    diff = get_aggregation("leakage_leak_a_vs_control")([r["leak_a_vs_control"] for r in rows])
    lo = get_aggregation("leakage_leak_a_vs_control_lo")([r["leak_a_vs_control_lo"] for r in rows])
    records = [r["leak_a_vs_control"] for r in rows if r["leak_a_vs_control"] is not None]
    observed_flags = [f for f, is_control in records if not is_control]
    control_flags = [f for f, is_control in records if is_control]
    assert observed_flags and all(f == 1.0 for f in observed_flags)
    assert diff == pytest.approx(np.mean(observed_flags) - np.mean(control_flags))
    assert diff > 0.5 and lo > 0.3
    rank = get_aggregation("leakage_orig_rank_vs_control")([r["orig_rank_vs_control"] for r in rows])
    assert rank < -0.3
    plain = glue.process_results(docs[0] | {"control": False, "reference_rule": False}, _results(rng.normal(size=120)))
    assert "leak_a_vs_control" not in plain
