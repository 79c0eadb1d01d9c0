"""Adapters on small items in each benchmark's exact Hugging Face schema, and local-file loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.data import CEVAL_RECORDS, CMB_RECORDS, CMMLU_RECORDS, CUSTOM_RECORDS, MMLU_RECORDS, CMB_EXAMPLE, write_jsonl

from lm_eval_leakage.benchmarks.schemas import BENCHMARKS, InvalidItemError
from lm_eval_leakage.benchmarks.loading import DataFileError, read_local


def test_mmlu_record() -> None:
    item = BENCHMARKS["mmlu"].to_item(MMLU_RECORDS[0], 0)
    assert item.options == ("ligament", "muscle", "blood", "cartilage")
    assert item.subject == "anatomy" and item.id == "0"
    assert item.header == "The following are multiple choice questions (with answers) about anatomy.\n\n"


def test_cmmlu_and_ceval_records() -> None:
    cmmlu = BENCHMARKS["cmmlu"].to_item({**CMMLU_RECORDS[0], "subject": "agronomy"}, 3)
    assert cmmlu.question == "中国的首都是哪里？" and cmmlu.options == ("上海", "北京", "广州", "深圳")
    assert cmmlu.subject == "agronomy" and cmmlu.id == "3"
    ceval = BENCHMARKS["ceval"].to_item(CEVAL_RECORDS[1], 9)
    assert ceval.id == "1" and ceval.options == ("1", "2", "3", "4")


def test_cmb_records_five_and_four_options_and_columnar_nones() -> None:
    five = BENCHMARKS["cmb"].to_item(CMB_RECORDS[0], 0)
    assert len(five.options) == 5 and five.subject == "口腔执业医师"
    assert five.header.startswith("以下是中国医师考试中执业医师考试的一道单项选择题")
    padded = {**CMB_RECORDS[1], "option": {**CMB_RECORDS[1]["option"], "E": None, "F": None}}
    assert BENCHMARKS["cmb"].to_item(padded, 1).options == ("35度", "37度", "39度", "41度")


def test_real_cmb_example_file_five_and_six_options() -> None:
    records = read_local(CMB_EXAMPLE, BENCHMARKS["cmb"])
    items = [BENCHMARKS["cmb"].to_item(r, i) for i, r in enumerate(records)]
    counts = {k: sum(len(it.options) == k for it in items) for k in (5, 6)}
    assert len(items) == 1000 and counts == {5: 995, 6: 5}


def test_custom_record() -> None:
    item = BENCHMARKS["custom"].to_item(CUSTOM_RECORDS[0], 0)
    assert item.id == "q1" and item.subject == "math" and item.options == ("4", "6", "7")


@pytest.mark.parametrize(
    ("benchmark", "record", "field", "problem"),
    [
        ("mmlu", {"choices": ["a", "b"]}, "question", "missing"),
        ("mmlu", {"question": "  ", "choices": ["a", "b"]}, "question", "empty"),
        ("mmlu", {"question": "Q", "choices": ["a"]}, "choices[0]", "at least two"),
        ("mmlu", {"question": "Q", "choices": ["a", 3]}, "choices[1]", "expected text"),
        ("mmlu", {"question": "Q", "choices": "a,b"}, "choices", "expected a list"),
        ("cmmlu", {"Question": "Q", "A": "a", "B": "b", "C": "c"}, "D", "missing"),
        ("ceval", {"question": "Q", "A": "a", "B": None, "C": "c", "D": "d"}, "B", "expected text"),
        ("cmb", {"question": "Q", "option": {"A": "a", "C": "c"}}, "option", "no gap"),
        ("cmb", {"question": "Q", "option": ["a", "b"]}, "option", "object of letters"),
        ("custom", {"question": "Q", "choices": ["a", "b"]}, "options", "missing"),
        ("custom", {"question": None, "options": ["a", "b"]}, "question", "expected text"),
    ],
)
def test_invalid_records_name_dataset_item_and_field(benchmark: str, record: dict, field: str, problem: str) -> None:
    with pytest.raises(InvalidItemError) as info:
        BENCHMARKS[benchmark].to_item(record, 7)
    assert info.value.field == field and info.value.item_id == "7" and info.value.dataset == benchmark
    assert problem in str(info.value)


def test_local_csv_folder_takes_subject_from_file_name(tmp_path: Path) -> None:
    (tmp_path / "agronomy_test.csv").write_text(
        "Question,A,B,C,D,Answer\n中国的首都是哪里？,上海,北京,广州,1,B\n", encoding="utf-8"
    )
    records = read_local(tmp_path, BENCHMARKS["cmmlu"])
    assert records == [
        {"Question": "中国的首都是哪里？", "A": "上海", "B": "北京", "C": "广州", "D": "1", "Answer": "B",
         "subject": "agronomy"}
    ]
    assert records[0]["D"] == "1"  # numbers stay text


def test_local_files_json_list_glob_and_comma_list(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(MMLU_RECORDS[:2]), encoding="utf-8")
    write_jsonl(tmp_path / "b.jsonl", MMLU_RECORDS[2:])
    both = read_local(f"{tmp_path / 'a.json'},{tmp_path / 'b.jsonl'}", BENCHMARKS["mmlu"])
    assert [r["question"] for r in both] == [r["question"] for r in MMLU_RECORDS]
    assert len(read_local(str(tmp_path / "*.json*"), BENCHMARKS["mmlu"])) == 3


def test_broken_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(MMLU_RECORDS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad\.jsonl:2"):
        read_local(path, BENCHMARKS["mmlu"])


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_local(tmp_path / "nope.jsonl", BENCHMARKS["mmlu"])


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_text_that_is_not_utf8_is_named_by_file_and_line(tmp_path: Path, suffix: str) -> None:
    good = {".jsonl": b'{"question": "q", "choices": ["a", "b"]}\n',
            ".json": b'[{"question": "q",\n "choices": ["a", "b"]},\n',
            ".csv": b"question,choices\nq,a\n"}[suffix]
    bad = {".jsonl": b'{"question": "caf\xe9", "choices": ["a", "b"]}\n', ".json": b' {"question": "caf\xe9"}]\n',
           ".csv": b"caf\xe9,b\n"}[suffix]
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes(good + bad)
    line = {".jsonl": 2, ".json": 3, ".csv": 3}[suffix]
    with pytest.raises(DataFileError, match=rf"latin1\{suffix}:{line}: not UTF-8 text \(byte 0xe9\)"):
        read_local(path, BENCHMARKS["mmlu"])
