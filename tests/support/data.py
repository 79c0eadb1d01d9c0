"""Data shared by the tests: items in each benchmark's exact schema, and where the repository's data lies."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DATA = REPO / "tests" / "data"
CMB_EXAMPLE = DATA / "cmb_example.json"
"""1,000 real CMB items (Apache-2.0; see tests/data/NOTICE.md)."""


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


MMLU_RECORDS = [
    {"question": "Which tissue connects bone to bone?", "subject": "anatomy",
     "choices": ["ligament", "muscle", "blood", "cartilage"], "answer": 0},
    {"question": "What is 2 + 2?", "subject": "elementary_mathematics",
     "choices": ["3", "4", "5", "22"], "answer": 1},
    {"question": "Which gas do plants take in?", "subject": "high_school_biology",
     "choices": ["oxygen", "nitrogen", "carbon dioxide", "helium"], "answer": 2},
]

CMMLU_RECORDS = [  # haonan-li/cmmlu schema (subject comes from the config / file name)
    {"Question": "中国的首都是哪里？", "A": "上海", "B": "北京", "C": "广州", "D": "深圳", "Answer": "B"},
    {"Question": "水的化学式是什么？", "A": "H2O", "B": "CO2", "C": "O2", "D": "NaCl", "Answer": "A"},
]

CEVAL_RECORDS = [  # ceval/ceval-exam schema
    {"id": 0, "question": "下列哪一项是会计要素？", "A": "资产", "B": "天气", "C": "颜色", "D": "声音",
     "answer": "A", "explanation": ""},
    {"id": 1, "question": "1+1等于几？", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "B",
     "explanation": "简单加法"},
]

CMB_RECORDS = [  # FreedomIntelligence/CMB schema
    {"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": "口腔执业医师",
     "question": "下列有关鳃弓的描述，错误的是", "answer": "D", "question_type": "单项选择题",
     "option": {"A": "由间充质增生形成", "B": "人胚第4周出现", "C": "相邻鳃弓之间为鳃沟", "D": "共5对鳃弓",
                "E": "位于头部两侧"}},
    {"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": "临床执业医师",
     "question": "成人正常体温约为", "answer": "B", "question_type": "单项选择题",
     "option": {"A": "35度", "B": "37度", "C": "39度", "D": "41度"}},
]

CUSTOM_RECORDS = [
    {"id": "q1", "question": "Pick the prime.", "options": ["4", "6", "7"], "subject": "math"},
    {"id": "q2", "question": "Pick the colour.", "options": ["red", "dog", "cat", "sun", "tree"]},
]


def fake_records(n: int) -> list[dict]:
    """``n`` distinct MMLU-schema items (one subject) for the validation tests."""
    return [
        {
            "question": f"Question number {i} " + "word " * (i % 7),
            "subject": "anatomy",
            "choices": [f"alpha {i}", f"beta {i}", f"gamma {i}", f"delta {i}"],
            "answer": i % 4,
        }
        for i in range(n)
    ]
