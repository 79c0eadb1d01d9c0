"""The task documents: built from local files in each benchmark's schema, no model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.data import CMB_EXAMPLE, CMB_RECORDS, MMLU_RECORDS, write_jsonl

from lm_eval_leakage.core.items import InvalidItemError
from lm_eval_leakage.harness import docs as leak_docs


@pytest.fixture
def mmlu_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)


def test_build_docs_orderings_and_requests(mmlu_file: Path) -> None:
    docs = leak_docs.build_docs("mmlu", data_files=str(mmlu_file))
    assert len(docs) == 3
    doc = docs[0]
    assert doc["context"] == "\nWhich tissue connects bone to bone?:\n"
    assert len(doc["perms"]) == 24 and doc["perms"][0] == [0, 1, 2, 3] and doc["delta"] == -0.2
    choices = leak_docs.doc_to_choice(doc)
    assert choices[0] == "A:ligament\nB:muscle\nC:blood \nD:cartilage\n"
    assert len(set(choices)) == 24


def test_native_template_docs(mmlu_file: Path) -> None:
    doc = leak_docs.build_docs("mmlu", data_files=str(mmlu_file), template="native")[1]
    assert doc["context"].startswith("The following are multiple choice questions (with answers) about elementary")
    assert leak_docs.doc_to_choice(doc)[0] == "A. 3\nB. 4\nC. 5\nD. 22\n"


def test_env_var_points_at_local_files(mmlu_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_EVAL_LEAKAGE_MMLU_DATA", str(mmlu_file))
    assert len(leak_docs.build_docs("mmlu")) == 3


def test_cmb_six_options_sampled_and_five_complete() -> None:
    docs = leak_docs.build_docs("cmb", data_files=str(CMB_EXAMPLE))
    sizes = {len(d["options"]): len(d["perms"]) for d in docs}
    assert sizes == {5: 120, 6: 120}
    six = next(d for d in docs if len(d["options"]) == 6)
    assert not six["complete"] and six["n_distinct"] == 720 and six["delta"] == -0.25


def test_invalid_item_stops_with_dataset_item_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [MMLU_RECORDS[0], {"question": "Q", "choices": ["only"]}])
    with pytest.raises(InvalidItemError, match=r"leak_mmlu \[.*bad\.jsonl:2\]: item '1': field 'choices\[0\]'"):
        leak_docs.build_docs("mmlu", data_files=str(path))


def test_skip_invalid_counts_what_it_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [MMLU_RECORDS[0], {"question": "", "choices": ["a", "b"]}])
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        docs = leak_docs.build_docs("mmlu", data_files=str(path), skip_invalid="true")
    assert len(docs) == 1
    assert "skipped 1 invalid item(s) of 2" in caplog.text


def test_zero_valid_items_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "", "choices": ["a", "b"]}])
    with pytest.raises(ValueError, match="no valid item"):
        leak_docs.build_docs("mmlu", data_files=str(path), skip_invalid=True)


def test_custom_without_data_explains_both_ways() -> None:
    with pytest.raises(ValueError, match="LM_EVAL_LEAKAGE_CUSTOM_DATA"):
        leak_docs.build_docs("custom")


def test_sample_items_is_seeded(mmlu_file: Path) -> None:
    a = [d["id"] for d in leak_docs.build_docs("mmlu", data_files=str(mmlu_file), sample_items=2, sample_seed=3)]
    b = [d["id"] for d in leak_docs.build_docs("mmlu", data_files=str(mmlu_file), sample_items=2, sample_seed=3)]
    assert a == b and len(a) == 2


def test_model_arguments_in_metadata_are_ignored(mmlu_file: Path) -> None:
    docs = leak_docs.build_docs("mmlu", data_files=str(mmlu_file), pretrained="x", version=1.0, config_source="y")
    assert len(docs) == 3


def test_cmb_records_in_hub_schema_build(tmp_path: Path) -> None:
    path = tmp_path / "cmb.json"
    path.write_text(__import__("json").dumps(CMB_RECORDS, ensure_ascii=False), encoding="utf-8")
    docs = leak_docs.build_docs("cmb", data_files=str(path), template="native")
    assert [len(d["perms"]) for d in docs] == [120, 24]
    assert docs[0]["context"].startswith("以下是中国医师考试中执业医师考试的一道单项选择题")


def test_a_bad_record_in_the_second_file_is_named_by_file_and_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", MMLU_RECORDS)
    write_jsonl(tmp_path / "b.jsonl", [MMLU_RECORDS[0] | {"id": "b1"}, {"id": "b2", "question": "", "choices": ["x", "y"]}])
    with pytest.raises(InvalidItemError, match=r"b\.jsonl:2\]: item 'b2': field 'question': is empty"):
        leak_docs.build_docs("mmlu", data_files=str(tmp_path))


def test_duplicate_ids_stop_the_run_or_keep_the_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = [MMLU_RECORDS[0] | {"id": "q"}, MMLU_RECORDS[1] | {"id": "r"}, MMLU_RECORDS[2] | {"id": "q"}]
    path = write_jsonl(tmp_path / "dup.jsonl", records)
    with pytest.raises(InvalidItemError, match=r"dup\.jsonl:3\]: item 'q': field 'id': duplicate: .*dup\.jsonl:1"):
        leak_docs.build_docs("mmlu", data_files=str(path))
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        kept = leak_docs.build_docs("mmlu", data_files=str(path), skip_invalid=True)
    assert [d["question"] for d in kept] == [MMLU_RECORDS[0]["question"], MMLU_RECORDS[1]["question"]]
    assert "skipped 1 invalid item(s) of 3" in caplog.text


def test_hidden_folders_are_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_jsonl(tmp_path / "mmlu.jsonl", MMLU_RECORDS)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_jsonl(tmp_path / ".ipynb_checkpoints" / "mmlu-checkpoint.jsonl", MMLU_RECORDS)
    with caplog.at_level(logging.WARNING, logger="lm_eval_leakage"):
        docs = leak_docs.build_docs("mmlu", data_files=str(tmp_path))
    assert len(docs) == len(MMLU_RECORDS)
    assert "skipped 1 hidden file(s)" in caplog.text
