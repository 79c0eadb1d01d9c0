"""Command line of the controlled-contamination validation (``scripts/validate_contamination.py``).

Examples:
    # the default configuration: 60 MMLU items, scenario a, detection-template format, epochs 1,2,3,5,10
    python scripts/validate_contamination.py --out results/validation_a_template
    # the other combinations are one flag away
    python scripts/validate_contamination.py --scenario b --format native --out results/validation_b_native
    # a low leak rate: 20 of 200 items leaked (docs/validation.md has the full command)
    python scripts/validate_contamination.py --n-items 200 --leaked-fraction 0.1 --out results/low_rate
    # a smoke run (8 items, one epoch)
    python scripts/validate_contamination.py --quick --out /tmp/validation_quick
    # recompute the tables and the ROC picture of a (partly) finished run, no model needed
    python scripts/validate_contamination.py --report-only --out results/validation_a_template
    # side-by-side tables of finished runs
    python scripts/validate_contamination.py --compare results/validation_a_template results/validation_b_template

See docs/validation.md and :mod:`lm_eval_leakage.validation.experiment`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from lm_eval_leakage.validation.config import QUICK_OVERRIDES, SCENARIOS, TRAIN_FORMATS, ValidationConfig


def _epochs(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The validation's argument parser."""
    parser = argparse.ArgumentParser(
        prog="validate_contamination",
        description="Fine-tune a model on a fraction (half by default) of N benchmark items and measure "
        "how well each leakage detector finds them (the paper's Tables 1 and 2, reproduced), and what "
        "lm-eval's dataset-level figures say about the whole sample.",
    )
    parser.add_argument("--out", help="output folder (required unless --compare)")
    defaults = ValidationConfig(out_dir="")
    _add_sample_options(parser, defaults)
    _add_run_options(parser, defaults)
    _add_mode_options(parser)
    return parser


def _add_sample_options(parser: argparse.ArgumentParser, defaults: ValidationConfig) -> None:
    """How many items are scored, and which fraction of them is leaked."""
    parser.add_argument(
        "--n-items", type=int, default=None,
        help=f"items scored, --leaked-fraction of them leaked (default {defaults.n_items})",
    )
    parser.add_argument(
        "--leaked-fraction",
        type=float,
        default=defaults.leaked_fraction,
        help="fraction of the items leaked, strictly between 0 and 1; the count is rounded to the "
        "nearest integer, a tie down, and must leave one leaked and one clean item "
        f"(default {defaults.leaked_fraction:g})",
    )


def _add_run_options(parser: argparse.ArgumentParser, defaults: ValidationConfig) -> None:
    parser.add_argument(
        "--epochs",
        type=_epochs,
        default=None,
        help=f"checkpoints to score (default {','.join(map(str, defaults.epochs))})",
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default=defaults.scenario,
        help="a: train the original order; b: one random ordering per item",
    )
    parser.add_argument(
        "--format",
        dest="train_format",
        choices=TRAIN_FORMATS,
        default=defaults.train_format,
        help="template: the detection template; native: question, 'A. ...' lines, 'Answer: X'",
    )
    parser.add_argument("--filler", type=int, default=0, help="further items trained on but not scored")
    parser.add_argument(
        "--model", default=None, help="local Hugging Face causal LM (default: offline SmolLM2-135M)"
    )
    parser.add_argument(
        "--data-files", default=None, help="local data in the benchmark's schema (default: offline MMLU)"
    )
    parser.add_argument("--benchmark", default=defaults.benchmark, help="benchmark key (default mmlu)")
    parser.add_argument("--task", default=None, help="lm-eval detection task (default leak_<benchmark>)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--lr", type=float, default=None, help=f"AdamW learning rate (default {defaults.learning_rate:g})"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"training sequences per step (default {defaults.train_batch_size})",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help=f"longest training text in tokens; longer items are not sampled (default {defaults.max_length})",
    )
    parser.add_argument(
        "--eval-batch-size", type=int, default=defaults.eval_batch_size, help="lm-eval batch size"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument(
        "--include-nonexchangeable",
        action="store_true",
        help="also sample items whose option order is fixed by content ('All of the above', ...)",
    )
    parser.add_argument(
        "--no-keep-checkpoints", action="store_true", help="delete each checkpoint once scored"
    )


def _add_mode_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="quick configuration: " + ", ".join(f"{k}={v}" for k, v in QUICK_OVERRIDES.items()),
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out (same options): skip scored checkpoints, "
        "continue training from the latest checkpoint",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only recompute the report from the scores already in --out",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="RUN_DIR",
        help="print side-by-side tables of finished runs (their validation.json) instead of running",
    )


def config_from_args(args: argparse.Namespace) -> ValidationConfig:
    """The run's configuration from parsed arguments (``--quick`` first, explicit values over it)."""
    base = dict(QUICK_OVERRIDES) if args.quick else {}
    explicit = {
        "n_items": args.n_items,
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "train_batch_size": args.batch_size,
        "max_length": args.max_length,
    }
    base.update({k: v for k, v in explicit.items() if v is not None})
    return ValidationConfig(
        out_dir=args.out,
        leaked_fraction=args.leaked_fraction,
        scenario=args.scenario,
        train_format=args.train_format,
        filler=args.filler,
        model_dir=args.model,
        data_files=args.data_files,
        benchmark=args.benchmark,
        task=args.task,
        seed=args.seed,
        eval_batch_size=args.eval_batch_size,
        device=args.device,
        exchangeable_only=not args.include_nonexchangeable,
        keep_checkpoints=not args.no_keep_checkpoints,
        **base,
    )


def main(argv: list[str] | None = None) -> int:
    """Run, resume, re-report or compare validation runs; returns the exit status."""
    from lm_eval_leakage.validation.experiment import run_validation
    from lm_eval_leakage.validation.report import write_report
    from lm_eval_leakage.validation.tables import comparison_markdown

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.compare:
        missing = [run for run in args.compare if not (Path(run) / "validation.json").is_file()]
        if missing:
            parser.error(f"no validation.json in {', '.join(missing)} (finish the run, or --report-only)")
        reports = [json.loads((Path(run) / "validation.json").read_text(encoding="utf-8")) for run in args.compare]
        print(comparison_markdown(reports), end="")
        return 0
    if not args.out:
        parser.error("--out is required (unless --compare)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.report_only:
        write_report(args.out)
    else:
        try:
            config = config_from_args(args)
        except ValueError as error:  # an impossible configuration: a usage error, not a crash
            parser.error(str(error))
        run_validation(config, resume=args.resume)
    print(f"wrote {os.path.join(args.out, 'validation.md')}, validation.json and roc.png")
    return 0


__all__ = ["build_parser", "config_from_args", "main"]
