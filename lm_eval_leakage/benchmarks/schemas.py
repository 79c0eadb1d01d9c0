"""Benchmark adapters: each benchmark's own record schema mapped to one :class:`Item`.

One adapter per benchmark knows its Hugging Face field names (the README's task table), its hub
location and its native prompt header; ``to_item`` validates a record and raises
:class:`InvalidItemError` naming the dataset, the item and the field when it does not fit.

Pure module: standard library only (the hub and file loading lives in ``loading``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval_leakage.core.items import InvalidItemError, Item
from lm_eval_leakage.core.templates import LETTERS


def _require(record: Mapping[str, Any], field: str, dataset: str, item_id: str) -> Any:
    if field not in record:
        present = ", ".join(sorted(map(str, record))) or "none"
        raise InvalidItemError(
            dataset, item_id, field, f"missing (the record has fields: {present}); is this the {dataset} schema?"
        )
    return record[field]


def _text(value: Any, field: str, dataset: str, item_id: str, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise InvalidItemError(dataset, item_id, field, f"expected text, got {type(value).__name__} {value!r}")
    if not allow_empty and not value.strip():
        raise InvalidItemError(dataset, item_id, field, "is empty")
    return value


def _options(values: list[Any], fields: list[str], dataset: str, item_id: str) -> tuple[str, ...]:
    if len(values) < 2:
        raise InvalidItemError(
            dataset, item_id, "/".join(fields) or "options", f"needs at least two options, got {len(values)}"
        )
    if len(values) > len(LETTERS):
        raise InvalidItemError(dataset, item_id, "options", f"at most {len(LETTERS)} options, got {len(values)}")
    # An option may be empty text (real benchmarks have a few); it must still be text.
    return tuple(_text(v, f, dataset, item_id, allow_empty=True) for v, f in zip(values, fields, strict=True))


def _record_id(record: Mapping[str, Any], index: int) -> str:
    value = record.get("id")
    return str(value) if value not in (None, "") else str(index)


@dataclass(frozen=True)
class Benchmark:
    """How to read one benchmark.

    Attributes:
        name: Short name used in task names (``leak_<name>``) and messages.
        hub_path: Hugging Face dataset id.
        configs: Hub configs to load and concatenate (their name becomes the subject), or
            ``None`` for a single load.
        split: Split scanned by default.
        parse: Maps ``(record, index)`` to an :class:`Item`, raising :class:`InvalidItemError`.
        hub_file: For benchmarks whose loading script no longer runs: the JSON file to read
            from the dataset repository directly.
    """

    name: str
    hub_path: str
    configs: tuple[str, ...] | None
    split: str
    parse: Callable[[Mapping[str, Any], int], Item]
    hub_file: str | None = None

    def to_item(self, record: Mapping[str, Any], index: int) -> Item:
        if not isinstance(record, Mapping):
            raise InvalidItemError(self.name, str(index), "<record>", f"expected an object, got {type(record).__name__}")
        return self.parse(record, index)


# --------------------------------------------------------------------------- MMLU


def _parse_mmlu(record: Mapping[str, Any], index: int) -> Item:
    item_id = _record_id(record, index)
    question = _text(_require(record, "question", "mmlu", item_id), "question", "mmlu", item_id, allow_empty=False)
    choices = _require(record, "choices", "mmlu", item_id)
    if not isinstance(choices, (list, tuple)):
        raise InvalidItemError("mmlu", item_id, "choices", f"expected a list, got {type(choices).__name__}")
    subject = str(record.get("subject") or "")
    options = _options(list(choices), [f"choices[{i}]" for i in range(len(choices))], "mmlu", item_id)
    topic = subject.replace("_", " ")
    header = f"The following are multiple choice questions (with answers) about {topic}.\n\n" if topic else ""
    return Item(item_id, subject, question, options, header)


# --------------------------------------------------------------------------- CMMLU and C-Eval


def _lettered(dataset: str, question_field: str, header: str) -> Callable[[Mapping[str, Any], int], Item]:
    """Parser for schemas with one field per option letter, ``A``..``D`` (CMMLU, C-Eval)."""

    def parse(record: Mapping[str, Any], index: int) -> Item:
        item_id = _record_id(record, index)
        question = _text(
            _require(record, question_field, dataset, item_id), question_field, dataset, item_id, allow_empty=False
        )
        fields = list(LETTERS[:4])
        values = [_require(record, f, dataset, item_id) for f in fields]
        return Item(item_id, str(record.get("subject") or ""), question, _options(values, fields, dataset, item_id), header)

    return parse


CMMLU_SUBJECTS = tuple(
    """agronomy anatomy ancient_chinese arts astronomy business_ethics chinese_civil_service_exam
    chinese_driving_rule chinese_food_culture chinese_foreign_policy chinese_history chinese_literature
    chinese_teacher_qualification clinical_knowledge college_actuarial_science college_education
    college_engineering_hydrology college_law college_mathematics college_medical_statistics
    college_medicine computer_science computer_security conceptual_physics
    construction_project_management economics education electrical_engineering elementary_chinese
    elementary_commonsense elementary_information_and_technology elementary_mathematics ethnology
    food_science genetics global_facts high_school_biology high_school_chemistry high_school_geography
    high_school_mathematics high_school_physics high_school_politics human_sexuality international_law
    journalism jurisprudence legal_and_moral_basis logical machine_learning management marketing
    marxist_theory modern_chinese nutrition philosophy professional_accounting professional_law
    professional_medicine professional_psychology public_relations security_study sociology
    sports_science traditional_chinese_medicine virology world_history world_religions""".split()
)

CEVAL_SUBJECTS = tuple(
    """accountant advanced_mathematics art_studies basic_medicine business_administration
    chinese_language_and_literature civil_servant clinical_medicine college_chemistry college_economics
    college_physics college_programming computer_architecture computer_network discrete_mathematics
    education_science electrical_engineer environmental_impact_assessment_engineer fire_engineer
    high_school_biology high_school_chemistry high_school_chinese high_school_geography
    high_school_history high_school_mathematics high_school_physics high_school_politics
    ideological_and_moral_cultivation law legal_professional logic mao_zedong_thought marxism
    metrology_engineer middle_school_biology middle_school_chemistry middle_school_geography
    middle_school_history middle_school_mathematics middle_school_physics middle_school_politics
    modern_chinese_history operating_system physician plant_protection probability_and_statistics
    professional_tour_guide sports_science tax_accountant teacher_qualification urban_and_rural_planner
    veterinary_medicine""".split()
)

# --------------------------------------------------------------------------- CMB


def _parse_cmb(record: Mapping[str, Any], index: int) -> Item:
    item_id = _record_id(record, index)
    question = _text(_require(record, "question", "cmb", item_id), "question", "cmb", item_id, allow_empty=False)
    option = _require(record, "option", "cmb", item_id)
    if not isinstance(option, Mapping):
        raise InvalidItemError("cmb", item_id, "option", f"expected an object of letters, got {type(option).__name__}")
    # Loading the JSON into a columnar table fills letters an item lacks (E, F) with None.
    letters = sorted(k for k, v in option.items() if v is not None)
    expected = list(LETTERS[: len(letters)])
    if letters != expected:
        raise InvalidItemError("cmb", item_id, "option", f"letters must run A, B, C, ... with no gap, got {letters}")
    values = [option[k] for k in letters]
    subject = str(record.get("exam_subject") or record.get("exam_class") or "")
    parts = [str(record.get(k) or "") for k in ("exam_type", "exam_class", "question_type")]
    header = (
        f"以下是中国{parts[0]}中{parts[1]}考试的一道{parts[2]}，请选出正确答案。\n\n"
        if all(parts)
        else "以下是一道医学考试选择题，请选出正确答案。\n\n"
    )
    return Item(item_id, subject, question, _options(values, [f"option.{k}" for k in letters], "cmb", item_id), header)


# --------------------------------------------------------------------------- custom


def _parse_custom(record: Mapping[str, Any], index: int) -> Item:
    item_id = _record_id(record, index)
    question = _text(_require(record, "question", "custom", item_id), "question", "custom", item_id, allow_empty=False)
    options = _require(record, "options", "custom", item_id)
    if not isinstance(options, (list, tuple)):
        raise InvalidItemError("custom", item_id, "options", f"expected a list of texts, got {type(options).__name__}")
    return Item(
        item_id,
        str(record.get("subject") or ""),
        question,
        _options(list(options), [f"options[{i}]" for i in range(len(options))], "custom", item_id),
    )


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("mmlu", "cais/mmlu", ("all",), "test", _parse_mmlu),
        Benchmark(
            "cmmlu",
            "haonan-li/cmmlu",
            CMMLU_SUBJECTS,
            "test",
            _lettered("cmmlu", "Question", "以下是单项选择题，请直接给出正确答案的选项。\n\n"),
        ),
        Benchmark(
            "ceval",
            "ceval/ceval-exam",
            CEVAL_SUBJECTS,
            "test",
            _lettered("ceval", "question", "以下是中国考试的单项选择题，请选出其中的正确答案。\n\n"),
        ),
        Benchmark(
            "cmb",
            "FreedomIntelligence/CMB",
            None,
            "test",
            _parse_cmb,
            hub_file="CMB-Exam/CMB-test/CMB-test-choice-question-merge.json",
        ),
        Benchmark("custom", "", None, "test", _parse_custom),
    )
}
