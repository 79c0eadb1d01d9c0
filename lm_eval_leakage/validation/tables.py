"""The Markdown tables of a validation run (``validation.md``) and of several runs side by side."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lm_eval_leakage.core.pipeline import CALIBRATED_ALPHA
from lm_eval_leakage.validation.config import leaked_count
from lm_eval_leakage.validation.detectors import FPR_TARGET, UNTOUCHED, with_current_names

Report = Mapping[str, Any]


def fmt(value: Any) -> str:
    """Three decimals, ``.123`` below 1, ``n/a`` for a missing or non-finite figure."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}".replace("0.", ".", 1) if 0 <= value < 1 else f"{value:.3f}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_signed(value: Any) -> str:
    """A difference: sign, three decimals, ``+.093`` below 1 in size, ``n/a`` when missing."""
    if _missing(value):
        return "n/a"
    text = f"{value:+.3f}"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text


def fmt_p(value: Any) -> str:
    """A p-value: three decimals, ``9.2e-08`` below 0.001 (so that a tiny one is not shown as ``.000``)."""
    if _missing(value):
        return "n/a"
    return f"{value:.1e}" if value < 0.001 else fmt(value)


def _interval(figures: Mapping[str, Any], name: str, low: str, high: str) -> str:
    """``+.093 [+.053, +.148]``: a signed figure with its interval."""
    return f"{fmt_signed(figures.get(name))} [{fmt_signed(figures.get(low))}, {fmt_signed(figures.get(high))}]"


def _epoch_keys(report: Report) -> list[str]:
    return sorted(report["epochs"], key=int)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _heading(report: Report) -> list[str]:
    cfg = report.get("config", {})
    task = cfg.get("task") or f"leak_{cfg.get('benchmark', '?')}"
    n_items = cfg.get("n_items", 0)
    fraction = cfg.get("leaked_fraction", 0.5)  # runs written before the option leaked half
    setup = (
        f"{n_items} items ({leaked_count(n_items, fraction)} leaked, fraction {fraction:g}), "
        f"{cfg.get('filler', 0)} filler, "
        f"model `{report.get('model_dir', '?')}`, task `{task}`, lr {cfg.get('learning_rate', '?')}, "
        f"batch {cfg.get('train_batch_size', '?')}, max length {cfg.get('max_length', '?')} tokens, "
        f"seed {cfg.get('seed', '?')}."
    )
    return [
        f"# Controlled-contamination validation: scenario {cfg.get('scenario', '?')}, "
        + f"{cfg.get('train_format', '?')} training format",
        "",
        setup,
        "Positives are the leaked items; epoch 0 is the untouched model.",
    ]


def _sanity_table(report: Report) -> list[str]:
    lines = [
        "",
        "## Sanity: where the original ordering ranks among the item's orderings",
        "",
        (
            "| epoch | leaked: original first | clean: original first | leaked mean rank | clean mean rank "
            "| leaked mean z | clean mean z | leaked: trained ordering first |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in _epoch_keys(report):
        s = report["epochs"][e]["sanity"]
        lines.append(_row([
            e,
            f"{s['leaked_original_first']}/{s['leaked_n']}",
            f"{s['clean_original_first']}/{s['clean_n']}",
            fmt(s["leaked_mean_rank"]),
            fmt(s["clean_mean_rank"]),
            f"{s['leaked_mean_z']:.2f}",
            f"{s['clean_mean_z']:.2f}",
            f"{s.get('leaked_trained_ordering_first', 'n/a')}/{s['leaked_n']}",
        ]))
    return lines


def _dataset_tables(report: Report) -> list[str]:
    """lm-eval's dataset-level figures per epoch, then their change against the untouched model."""
    keys = [e for e in _epoch_keys(report) if "dataset" in report["epochs"][e]]
    if not keys:  # a report written before the dataset figures
        return []
    lines = [
        "",
        "## Dataset level: did this model see the benchmark?",
        "",
        "lm-eval's columns over all the scored items, leaked and clean alike (no labels used), as a "
        + "`leak_*` task reports them on this sample. Excess: over chance (`leak_a`) or over the level "
        + f"{CALIBRATED_ALPHA:g} (`leak_b_cal`), with its 95% interval.",
        "",
        "| epoch | items | leak_a | leak_a_p | leak_a excess [95% CI] | orig_rank | orig_rank_p "
        + "| leak_b_cal | leak_b_cal_p | leak_b_cal excess [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in keys:
        d = report["epochs"][e]["dataset"]
        lines.append(_row([
            e, str(d.get("n_items", "n/a")), fmt(d.get("leak_a")), fmt_p(d.get("leak_a_p")),
            _interval(d, "leak_a_excess", "leak_a_excess_lo", "leak_a_excess_hi"),
            fmt(d.get("orig_rank")), fmt_p(d.get("orig_rank_p")),
            fmt(d.get("leak_b_cal")), fmt_p(d.get("leak_b_cal_p")),
            _interval(d, "leak_b_cal_excess", "leak_b_cal_lo", "leak_b_cal_hi"),
        ]))
    verdicts = [(e, report["epochs"][e]["dataset"].get("verdict")) for e in keys]
    verdicts = [f"- epoch {e}: {text}" for e, text in verdicts if text]  # none in reports that predate it
    if verdicts:
        lines += ["", "The verdict a report states for these items (no control task: the floor is chance; "
                  + "`core.verdict`):", "", *verdicts]
    changes = [
        _row([e] + [
            _interval(report["epochs"][e]["dataset"], f"{name}{UNTOUCHED}", f"{name}{UNTOUCHED}_lo",
                      f"{name}{UNTOUCHED}_hi")
            for name in ("leak_a", "orig_rank", "leak_b_cal")
        ])
        for e in keys if e != "0"
    ]
    if not changes:
        return lines
    return lines + [
        "",
        "Change against the untouched model (epoch E minus epoch 0) with its 95% interval (Newcombe for "
        + "the fractions, Welch for the mean rank; they treat the two scorings of the same items as "
        + "independent samples, so they are conservative):",
        "",
        f"| epoch | leak_a{UNTOUCHED} | orig_rank{UNTOUCHED} | leak_b_cal{UNTOUCHED} |",
        "|---|---|---|---|",
        *changes,
    ]


def _table1(report: Report) -> list[str]:
    lines = [
        "",
        "## Table 1 layout: scenario-a detectors (accuracy, precision, recall, F1; AUC)",
        "",
        "| epoch | leak_a acc | P | R | F1 | orig_p acc | P | R | F1 | AUC | orig_z acc | P | R | F1 | AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in _epoch_keys(report):
        d = report["epochs"][e]["detectors"]
        cells = [e]
        for name, with_auc in (("leak_a", False), ("orig_p", True), ("orig_z", True)):
            m = d[name]
            cells += [fmt(m["accuracy"]), fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"])]
            if with_auc:
                cells.append(fmt(m["roc_auc"]))
        lines.append(_row(cells))
    return lines


def _table2(report: Report) -> list[str]:
    keys = _epoch_keys(report)
    epochs = report["epochs"]
    lines = [
        "",
        "## Table 2 layout: scenario-b detectors, accuracy / F1 per epoch",
        "",
        "| detector | " + " | ".join(f"ep {e}" for e in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for name in [d["name"] for d in report["detectors"] if d["scenario"] == "b"]:
        cells = [
            f"{fmt(epochs[e]['detectors'][name]['accuracy'])}/{fmt(epochs[e]['detectors'][name]['f1'])}"
            for e in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _every_detector(report: Report) -> list[str]:
    fpr_target = report.get("fpr_target", FPR_TARGET)
    lines = [
        "",
        "## Every detector: default threshold and threshold-free figures",
        "",
        f"TPR@5%FPR: the largest true-positive rate at a false-positive rate <= {fpr_target:g}; "
        + "FPR clean: flagged fraction of the clean items at the default threshold.",
        "",
        "| epoch | detector | acc | P | R | F1 | AUC | TPR@5%FPR | FPR clean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    figures = ("accuracy", "precision", "recall", "f1", "roc_auc", "tpr_at_fpr", "fpr_clean")
    for e in _epoch_keys(report):
        for name, m in report["epochs"][e]["detectors"].items():
            lines.append(f"| {e} | {name} | " + " | ".join(fmt(m[k]) for k in figures) + " |")
    lines += ["", "Detectors:", ""]
    lines += [
        f"- `{d['name']}` ({d['origin']}, scenario {d['scenario']}): flagged when {d['threshold']}."
        for d in {d["name"]: d for d in report["detectors"]}.values()
    ]
    return lines


def _runtime(report: Report) -> list[str]:
    timings = report.get("timings", {})
    if not timings:
        return []
    lines = [
        "",
        f"Runtime: {timings.get('total_seconds', float('nan')) / 60:.1f} min in all, "
        f"{timings.get('train_seconds', float('nan')) / 60:.1f} min of it training; "
        + ", ".join(
            f"epoch {k.rsplit('_', 1)[1]} scored in {v / 60:.1f} min"
            for k, v in timings.items()
            if k.startswith("score_epoch_")
        )
        + ".",
    ]
    cpu = report.get("cpu_timings", {})
    threads = (report.get("machine") or {}).get("torch_threads") or 1
    if cpu.get("total_seconds"):
        lines += [
            "",
            f"CPU time of the process: {cpu['total_seconds'] / 60:.1f} min over {threads} threads "
            + "(on a shared machine this and the wall time above overstate an idle machine's cost).",
        ]
    return lines


def _machine(report: Report) -> list[str]:
    machine = report.get("machine")
    if not machine:
        return []
    return [
        "",
        (
            f"Machine: {machine.get('cpu')}, {machine.get('cpu_count')} CPUs, torch threads "
            f"{machine.get('torch_threads')}, GPU {machine.get('gpu')}; load average at the end "
            f"{machine.get('load_average_at_end')}."
        ),
    ]


def markdown_report(report: Report) -> str:
    """The run's tables: sanity, dataset level, the paper's Tables 1 and 2 layouts, every detector."""
    sections = (_heading, _sanity_table, _dataset_tables, _table1, _table2, _every_detector, _runtime, _machine)
    report = with_current_names(report)
    return "\n".join(line for section in sections for line in section(report)) + "\n"


def run_label(report: Report) -> str:
    """``"a / template"``: the scenario and training format of a run, from its configuration.

    A run that leaked another fraction than half says so: ``"a / template / 0.1 leaked"``.
    """
    cfg = report.get("config", {})
    label = f"{cfg.get('scenario', '?')} / {cfg.get('train_format', '?')}"
    fraction = cfg.get("leaked_fraction", 0.5)
    return label if fraction == 0.5 else f"{label} / {fraction:g} leaked"


COMPARED_AUC: tuple[tuple[str, str], ...] = (
    ("leak_a", "leak_a"),
    ("orig_p", "orig_p"),
    ("orig_z", "orig_z"),
    ("leak_b_d020", "leak_b"),  # the three deltas share one score, hence one AUC
    ("leak_b_cal", "leak_b_cal"),
)
COMPARED_F1: tuple[str, ...] = ("leak_b_d020", "leak_b_d017", "leak_b_d015", "leak_b_cal")


def _comparison_rows(
    reports: Sequence[Report], keys: Sequence[str], names: Sequence[tuple[str, str]], figure: str
) -> list[str]:
    out = []
    for report in reports:
        for name, label in names:
            cells = [fmt(report["epochs"][e]["detectors"][name][figure]) for e in keys]
            out.append(f"| {run_label(report)} | {label} | " + " | ".join(cells) + " |")
    return out


COMPARED_DATASET: tuple[tuple[str, Any], ...] = (
    ("leak_a", fmt),
    ("leak_a_p", fmt_p),
    ("orig_rank", fmt),
    ("orig_rank_p", fmt_p),
    ("leak_b_cal", fmt),
    ("leak_b_cal_p", fmt_p),
)
"""Dataset-level columns compared across runs, with their cell format."""


def _dataset_rows(reports: Sequence[Report], keys: Sequence[str]) -> list[str]:
    """One row per run and dataset-level column; ``[]`` when no run has the figures."""
    if not any("dataset" in r["epochs"][e] for r in reports for e in keys):
        return []
    out = []
    for report in reports:
        for name, show in COMPARED_DATASET:
            cells = [show(report["epochs"][e].get("dataset", {}).get(name)) for e in keys]
            out.append(f"| {run_label(report)} | {name} | " + " | ".join(cells) + " |")
    return out


def comparison_markdown(reports: Sequence[Report]) -> str:
    """Side-by-side tables of several runs (e.g. the four scenario x format combinations).

    Tables over the epochs every run scored: ROC AUC of each detector; F1 of the paper's
    Algorithm 2 at its three deltas next to the calibrated scenario-b detector's; the flagged
    fraction of the clean items (false-positive rate) at each default threshold; and, when the
    runs have them, lm-eval's dataset-level figures over all the items (rates and p-values). Cells
    are "n/a" where a figure is undefined (e.g. F1 when nothing is flagged) or the run predates it.

    Args:
        reports: Outputs of ``write_report`` (or their ``validation.json``; one written before the
            detectors were renamed is read under the new names, see ``detectors.OLD_NAMES``).

    Raises:
        ValueError: If ``reports`` is empty or the runs share no epoch.
    """
    if not reports:
        raise ValueError("no runs to compare")
    reports = [with_current_names(r) for r in reports]
    shared = set.intersection(*(set(r["epochs"]) for r in reports))
    if not shared:
        raise ValueError("the runs share no scored epoch")
    keys = sorted(shared, key=int)
    header = ["| run | detector | " + " | ".join(f"ep {e}" for e in keys) + " |", "|---|---|" + "---|" * len(keys)]
    tables = (
        ("ROC AUC of leaked against clean items (0.5 = no separation):", COMPARED_AUC, "roc_auc"),
        ("F1 at the default threshold, the paper's Algorithm 2 against the calibrated detector:",
         [(n, n) for n in COMPARED_F1], "f1"),
        ("Flagged fraction of the clean items at the default threshold (false-positive rate):",
         [(n, n) for n in ("leak_a", "orig_p", "orig_z", *COMPARED_F1)], "fpr_clean"),
    )
    lines: list[str] = []
    for title, names, figure in tables:
        lines += ["", title, "", *header, *_comparison_rows(reports, keys, names, figure)]
    dataset = _dataset_rows(reports, keys)
    if dataset:
        title = "Dataset level, all items (leaked and clean) as lm-eval reports them: rates and p-values:"
        lines += ["", title, "", header[0].replace("| detector |", "| figure |"), header[1], *dataset]
    return "\n".join(lines[1:]) + "\n"


__all__ = [
    "COMPARED_AUC",
    "COMPARED_DATASET",
    "COMPARED_F1",
    "comparison_markdown",
    "fmt",
    "fmt_p",
    "fmt_signed",
    "markdown_report",
    "run_label",
]
