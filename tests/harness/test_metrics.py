"""``process_results`` and the registered aggregations, called as lm-eval calls them: no model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.data import CMB_EXAMPLE

from lm_eval_leakage.core import scenario_b as calibrated
from lm_eval_leakage.core import item_statistics, pipeline, scenario_a
from lm_eval_leakage.core.orderings import build_orderings
from lm_eval_leakage.core.pipeline import CALIBRATED_ALPHA, ItemRecord
from lm_eval_leakage.harness import docs as leak_docs
from lm_eval_leakage.harness.columns import COLUMNS, columns
from lm_eval_leakage.harness.metrics import AGGREGATIONS, process_results


def _doc(options: list[str], **extra: object) -> dict:
    perms = [list(p) for p in build_orderings(options).perms]
    return {"id": "x", "delta": -0.2, "perms": perms, "exchangeable": True} | extra


def _results(scores: np.ndarray) -> list[tuple[float, bool]]:
    return [(float(s), False) for s in scores]


def aggregate(rows: list[dict], name: str) -> float:
    return AGGREGATIONS[name]([row[name] for row in rows])


def test_every_column_is_registered_once_and_reported_by_process_results() -> None:
    from lm_eval.api.registry import get_aggregation

    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    assert all(get_aggregation(name) is AGGREGATIONS[name] for name in names)
    out = process_results(_doc(list("abc")), _results(np.array([0.0, -1.0, -2.0, -3.0, -4.0, -5.0])))
    assert set(out) == {c.name for c in columns(control=False)}
    assert len({id(v) for v in out.values()}) == 1  # one record, not one computation per column


def test_process_results_record_for_one_item() -> None:
    scores = np.linspace(-10.0, -20.0, 24)  # original first, strictly decreasing
    out = process_results(_doc(list("abcd"), reference_rule=False), _results(scores))
    record = ItemRecord.from_json(out["leak_a"])
    assert record.stats.original_first and record.stats.rank == 0.0 and record.n_orderings == 24
    assert record.stats.pvalue == pytest.approx(1 / 24)
    assert record.stats.zscore == pytest.approx(item_statistics.item_stats(scores).zscore)
    # The default statistic: correlation with the positions shared with the best ordering (which
    # counts twice); no Gaussian table, its null is made of other items.
    perms = np.asarray(_doc(list("abcd"))["perms"])
    best, worst = int(np.argmax(scores)), int(np.argmin(scores))
    template = (perms == perms[best]).sum(axis=1) + 4 * (np.arange(24) == best)
    mirror = (perms == perms[worst]).sum(axis=1) + 4 * (np.arange(24) == worst)
    assert record.b_model == "slot_agreement" and math.isnan(record.b_gaussian_pvalue)
    assert record.b_statistic == pytest.approx(np.corrcoef(scores, template)[0, 1])
    assert record.b_decoy == pytest.approx(np.corrcoef(-scores, mirror)[0, 1])
    assert math.isnan(record.isolation)  # the rule was off
    rows = [out]
    assert aggregate(rows, "leak_a") == 1.0 and aggregate(rows, "leak_a_chance") == pytest.approx(1 / 24)
    assert aggregate(rows, "orig_rank") == 0.0 and aggregate(rows, "n_excluded") == 0
    assert math.isnan(aggregate(rows, "leak_b"))


def test_nonexchangeable_items_leave_every_figure_whose_null_assumes_exchangeable_options() -> None:
    """A guarded item whose best ordering towers over the rest flags nothing but the paper's rule."""
    rng = np.random.default_rng(0)
    standout = rng.normal(size=24)
    standout[5] += 12.0  # e.g. sorted numbers: one ordering reads naturally
    guarded = _doc(list("abcd"), exchangeable=False)
    clean = [process_results(_doc(list("abcd"), reference_rule=False), _results(rng.normal(size=24)))
             for _ in range(39)]
    rows = [process_results(guarded, _results(standout))] + clean
    assert aggregate(rows, "n_nonexch") == 1
    assert ItemRecord.from_json(rows[0]["leak_b"]).flag_b()  # the paper's rule counts it, and flags it
    ran = [r for r in rows if not math.isnan(ItemRecord.from_json(r["leak_b"]).isolation)]
    assert aggregate(rows, "leak_b") == sum(ItemRecord.from_json(r["leak_b"]).flag_b() for r in ran) / len(ran)
    guarded_run = pipeline.summarise([ItemRecord.from_json(r["leak_a"]) for r in rows])
    assert math.isnan(guarded_run.b_pvalues[0]) and guarded_run.calibrated.n_valid == 39  # not counted
    only_guarded = rows[:1]
    assert math.isnan(aggregate(only_guarded, "leak_a")) and math.isnan(aggregate(only_guarded, "orig_rank"))
    assert math.isnan(aggregate(only_guarded, "leak_b_cal")) and math.isnan(aggregate(only_guarded, "leak_b_cal_p"))
    kept = [process_results(guarded | {"keep_nonexchangeable": True}, _results(standout))] + clean
    assert aggregate(kept[:1], "leak_a") in (0.0, 1.0) and aggregate(kept, "n_nonexch") == 1
    kept_run = pipeline.summarise([ItemRecord.from_json(r["leak_a"]) for r in kept])
    assert kept_run.calibrated.n_valid == 40 and kept_run.b_pvalues[0] < 0.05  # counted, and flagged


def test_unusable_scores_are_excluded_and_counted() -> None:
    rows = [process_results(_doc(["a", "b"]), [(float("-inf"), False), (-3.0, False)])]
    assert math.isnan(aggregate(rows, "leak_a")) and math.isnan(aggregate(rows, "leak_b_cal"))
    assert aggregate(rows, "n_excluded") == 1


def test_scenario_a_aggregations() -> None:
    rows = [
        process_results(_doc(list("abcd")), _results(np.linspace(-1, -5, 24))),  # flagged
        process_results(_doc(list("abcd")), _results(np.linspace(-5, -1, 24))),  # last
        process_results(_doc(["a", "b"]), [(float("nan"), False), (-3.0, False)]),  # excluded
    ]
    assert aggregate(rows, "leak_a") == 0.5
    assert aggregate(rows, "n_excluded") == 1
    expected = scenario_a.scenario_a([True, False], [24, 24])
    assert aggregate(rows, "leak_a_p") == pytest.approx(expected.pvalue)
    assert aggregate(rows, "leak_a_excess") == pytest.approx(0.5 - 1 / 24)
    assert aggregate(rows, "leak_a_excess_lo") == pytest.approx(expected.excess_ci[0])
    assert aggregate(rows, "leak_a_excess_hi") == pytest.approx(expected.excess_ci[1])
    assert aggregate(rows, "orig_rank_p") == pytest.approx(scenario_a.rank_test([0.0, 1.0], [24, 24]).pvalue)


def test_calibrated_aggregation_equals_the_batch_computation() -> None:
    rng = np.random.default_rng(5)
    doc = _doc(list("abcd"), reference_rule=False)  # the IsolationForest rule is slow and not tested here
    scores = rng.normal(size=(300, 24))
    scores[:30, 3] += 6.0  # planted: one ordering stands out in 10% of items
    rows = [process_results(doc, _results(s)) for s in scores]
    batch = calibrated.summarise_scenario_b(calibrated.scenario_b_pvalues(scores, np.asarray(doc["perms"])))
    assert batch.null == "mirror"
    assert aggregate(rows, "leak_b_cal") == pytest.approx(batch.flagged_fraction)
    assert aggregate(rows, "leak_b_cal_lo") == pytest.approx(batch.excess_low)
    assert aggregate(rows, "leak_b_cal_p") == pytest.approx(batch.pvalue)
    assert batch.excess_low > 0.0  # the planted items lift the flagged fraction above alpha
    assert math.isnan(aggregate(rows, "leak_b"))


def test_calibrated_aggregation_pools_by_number_of_orderings() -> None:
    """Four- and five-option items (CMB) enter the mirror null in separate pools."""
    rng = np.random.default_rng(6)
    docs = [_doc(list("abcd"), reference_rule=False), _doc(list("abcde"), reference_rule=False)]
    scores = [rng.normal(size=(220, 24)), rng.normal(size=(210, 120))]
    rows = [process_results(doc, _results(s)) for doc, part in zip(docs, scores) for s in part]
    parts = [calibrated.scenario_b_pvalues(part, np.asarray(doc["perms"])) for doc, part in zip(docs, scores)]
    assert all(p.null == "mirror" for p in parts)
    flagged = sum(int(np.sum(p.pvalue < CALIBRATED_ALPHA)) for p in parts)
    assert aggregate(rows, "leak_b_cal") == pytest.approx(flagged / 430)


def test_control_docs_and_observed_minus_control() -> None:
    docs = leak_docs.build_docs("cmb", data_files=str(CMB_EXAMPLE), sample_items=6, control=True)
    roles = [d["role"] for d in docs]
    assert roles.count("observed") == 6 and roles.count("control") == 6
    observed = {d["id"]: d for d in docs if d["role"] == "observed"}
    for doc in docs:
        if doc["role"] == "control":
            twin = observed[doc["id"].removesuffix("~control")]
            assert doc["question"] == twin["question"] and doc["options"] != twin["options"]

    rng = np.random.default_rng(0)
    rows, control_first = [], []
    for doc in docs:
        scores = rng.normal(size=len(doc["perms"]))
        if doc["role"] == "observed":
            scores[0] += 10.0  # every observed item's original ordering is on top
        else:
            control_first.append(bool(scores[0] >= scores.max()))
        rows.append(process_results(doc | {"reference_rule": False}, _results(scores)))
    assert set(rows[0]) == {c.name for c in columns(control=True)}
    assert aggregate(rows, "leak_a") == 1.0  # the observed items only
    diff = aggregate(rows, "leak_a_vs_control")
    assert diff == pytest.approx(1.0 - np.mean(control_first))
    assert diff > 0.5 and aggregate(rows, "leak_a_vs_control_lo") > 0.3
    assert aggregate(rows, "orig_rank_vs_control") < -0.3
    plain = [process_results(docs[0] | {"control": False, "reference_rule": False}, _results(rng.normal(size=120)))]
    assert set(plain[0]) == {c.name for c in columns(control=False)}


def test_a_run_is_summarised_once_for_all_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval_leakage.harness import metrics

    calls = []
    real = metrics.summarise
    monkeypatch.setattr(metrics, "summarise", lambda records: calls.append(len(records)) or real(records))
    rows = [process_results(_doc(list("abcd"), reference_rule=False), _results(np.linspace(-1, -5, 24)))
            for _ in range(3)]
    values = {c.name: aggregate(rows, c.name) for c in columns(control=False)}
    assert calls == [3] and values["leak_a"] == 1.0
    copies = [dict(r["leak_a"]) for r in rows]  # equal but not the same objects (as after a gather)
    assert AGGREGATIONS["leak_a"](copies) == 1.0 and calls == [3, 3]
