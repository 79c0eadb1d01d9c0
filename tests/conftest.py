"""Shared fixtures: offline environment, a tiny random model, and data in each benchmark's schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. A: B: C: D: E: F:",
    "Which of the following is a muscle? ligament, cartilage, blood, tendon.",
    "下列有关鳃弓的描述，错误的是 由间充质增生形成 人胚第4周出现 以上都是",
    "0123456789 + - * / = ( ) . , ; ? !",
]


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised two-layer Llama with a byte-level BPE tokenizer, saved to ``folder``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TRAINING_TEXT, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"))


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
