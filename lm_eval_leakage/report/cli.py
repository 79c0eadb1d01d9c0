"""Leakage reports from lm-eval output folders, recomputed from the saved ordering scores.

``python -m lm_eval_leakage report RUN_DIR [RUN_DIR ...] --out DIR`` reads the ``results_*.json``
and ``samples_leak_*.jsonl`` files that ``lm_eval ... --log_samples`` wrote (any mix of models and
``leak_*`` tasks), recomputes every figure from each item's ordering scores (``filtered_resps``,
or ``resps``) and its ``doc["perms"]``, never from the logged metric values, and writes:

- ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.html``: models x benchmarks; scenario a
  (Algorithm 1) with its chance level, scenario b by the paper's IsolationForest rule (Algorithm 2)
  with a simulated null level, and scenario b by the calibrated test (``core.pipeline``, see
  ``docs/method.md``) with its level; 95% intervals and p-values. The HTML page is self-contained: its tables sort by clicking
  a header (a few lines of inline JavaScript) and the figure is inline SVG, so it needs no network;
- ``subjects.md``, ``subjects.csv``: the same figures per subject;
- ``items.csv``: every item's recomputed statistics (control items of a ``*_control`` task too;
  every other table and figure covers the observed items only);
- ``top_items.md``: the most suspicious items of each run with their question and options;
- ``figures/leaderboard.{png,svg}``, ``figures/subjects_<task>.{png,svg}`` and
  ``figures/cases/<model>__<task>__<item>.{png,svg}`` (see ``figures``);
- ``delta_sweep.md``, ``delta_sweep.csv`` with ``--delta-sweep``.

No model is loaded. Detectors re-run with other settings from the saved scores: ``--delta``
(Algorithm 2's threshold; the IsolationForest score of each item is computed once),
``--alpha`` and ``--b-null`` (calibrated test), ``--keep-nonexchangeable`` (the exchangeability
guard), ``--subjects``.

Bad input: a folder whose results name a ``leak_*`` task without its samples file, or with no
lm-eval output at all, stops the command with a message naming the folder (exit status 2, nothing
written). A samples line that cannot be read (not UTF-8, malformed or truncated JSON, missing
fields) is reported as ``FILE:LINE: problem`` and costs that line only (each line is decoded on its
own); everything else still goes into the report, whose tables count the bad lines of each run; the
exit status is then 1, or 0 with ``--skip-bad-lines``. Models are told apart by their full name and
arguments (``model_names``), so two paths ending in the same folder name stay two rows, each with a
unique short name; a model and task run twice is reported from the later run, and the earlier is
listed under "Superseded runs" in ``leaderboard.md``. ``--out`` must be new, empty or an earlier
report (recognised by its ``.lm_eval_leakage_report`` marker, whose listed files are deleted first;
see ``outdir``), else ``--force``. A ``--subjects`` entry no run has is an error listing the
subjects there are; a ``*_control`` run without control items, or with NaN observed-minus-control
figures, gets a note (stderr and ``leaderboard.md``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lm_eval_leakage.core import pipeline
from lm_eval_leakage.report.analysis import DEFAULT_NULL_DRAWS, RunAnalysis, Settings, analyse
from lm_eval_leakage.report.fonts import use_font_file
from lm_eval_leakage.report.notes import check_subjects, control_notes
from lm_eval_leakage.report.outdir import check_out, clear_earlier, write_marker
from lm_eval_leakage.report.reader import ReportError
from lm_eval_leakage.report.runs import Run, load_runs
from lm_eval_leakage.report.writer import write_report


def _parse_deltas(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


NUMBER_OPTIONS = ("--delta", "--delta-sweep", "--alpha")
"""Options whose value may start with a minus sign (``--delta-sweep -0.25,-0.2``)."""


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--delta-sweep -0.25,-0.2`` as ``--delta-sweep=-0.25,-0.2``: argparse takes a value that starts
    with ``-`` and is not a plain negative number for an option, and would refuse the form ``--help`` shows."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return joined + argv[i:]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if token in NUMBER_OPTIONS and re.match(r"-\.?\d", value):
            joined.append(f"{token}={value}")
            i += 2
            continue
        joined.append(token)
        i += 1
    return joined


def build_parser() -> argparse.ArgumentParser:
    """The ``report`` command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m lm_eval_leakage report",
        description="Leaderboard, figures and re-analysis of leak_* runs from lm_eval output folders "
        "(written with --log_samples); every figure is recomputed from the saved ordering scores, no model.",
        epilog="Exit status: 0 done; 1 report written but some samples lines were unreadable (listed as "
        "FILE:LINE; use --skip-bad-lines to accept); 2 nothing written (bad arguments, missing samples, "
        "no lm_eval output).",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="lm_eval --output_path folders, model sub-folders, or results/samples files")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder to write the report to: new, empty, or an earlier report (whose own files "
                        "are deleted first, as listed in its .lm_eval_leakage_report)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out that is not an earlier report (files of the same "
                        "names are replaced, the others kept)")
    parser.add_argument("--delta", type=float, default=None,
                        help="Algorithm 2 threshold for every item (default: each run's own, the paper's "
                        "-0.20 for four options and -0.25 for five or more)")
    parser.add_argument("--delta-sweep", type=_parse_deltas, default=[], metavar="D1,D2,...",
                        help="also tabulate scenario b at these thresholds (e.g. -0.25,-0.2,-0.17,-0.15)")
    parser.add_argument("--alpha", type=float, default=pipeline.CALIBRATED_ALPHA,
                        help="level of the calibrated scenario-b test (its flagged rate with no leakage)")
    parser.add_argument("--b-null", choices=["auto", "mirror"], default="auto",
                        help="null of the calibrated scenario-b test (auto, as the tasks do: the run's "
                        "control items when it has them, else the mirror null; mirror: always the mirror; "
                        "its statistic has no Gaussian table)")
    parser.add_argument("--keep-nonexchangeable", action=argparse.BooleanOptionalAction, default=None,
                        help="keep (or leave out) items whose option order is fixed by content in scenario a "
                        "(default: what each run did)")
    parser.add_argument("--no-reference-rule", action="store_true",
                        help="skip the paper's IsolationForest rule (about 0.1-0.2 s per item)")
    parser.add_argument("--subjects", default="", metavar="S1,S2,...",
                        help="restrict every table and figure to these subjects")
    parser.add_argument("--top", type=_count, default=10, help="items per run and scenario in top_items.md")
    parser.add_argument("--cases", type=_count, default=3, help="case plots per run (its top scenario-a items)")
    parser.add_argument("--case", action="append", default=[], metavar="ITEM_ID",
                        help="also draw the case plot of this item (repeatable)")
    parser.add_argument("--null-draws", type=_count, default=DEFAULT_NULL_DRAWS,
                        help="simulated clean items per number of orderings for the paper rule's null "
                        "level (0 to skip; about 0.1-0.2 s each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the null simulation")
    parser.add_argument("--formats", default="png,svg", help="figure formats, comma-separated")
    parser.add_argument("--font", type=Path, default=None,
                        help="font file for figure text (e.g. a CJK font for CMMLU, C-Eval, CMB)")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="exit 0 even when some samples lines were unreadable (they are still listed)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        delta=args.delta,
        alpha=args.alpha,
        b_null=args.b_null,
        keep_nonexchangeable=args.keep_nonexchangeable,
        reference_rule=not args.no_reference_rule,
        null_draws=args.null_draws if not args.no_reference_rule else 0,
        seed=args.seed,
        subjects=tuple(s.strip() for s in args.subjects.split(",") if s.strip()),
    )


def _read(args: argparse.Namespace, subjects: tuple[str, ...]) -> tuple[list[Run], list[str], list[str]] | None:
    """The runs to report, their bad lines and the notes on them (both printed), or ``None`` after
    printing why there is nothing to report."""
    try:
        if args.font is not None:
            use_font_file(args.font)
        runs, notes = load_runs(args.runs)
        problems = [str(p) for run in runs for p in run.bad_lines]  # runs with no good line too
        runs = [r for r in runs if r.items or not r.bad_lines]
        notes += check_subjects(runs, subjects)
    except (ReportError, FileNotFoundError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return None
    for note in notes:
        print(f"report: note: {note}", file=sys.stderr)
    for problem in problems:
        print(f"report: bad line: {problem}", file=sys.stderr)
    if not any(r.items for r in runs):
        print("report: error: no item could be read from any samples file", file=sys.stderr)
        return None
    return runs, problems, [n for n in notes if "superseded" not in n]


def _note_guard_applied(analysis: RunAnalysis) -> None:
    """Say when the report, not the run, left items with order-bound options out of scenario a."""
    run = analysis.run
    newly_left_out = sum(r.item.guard_applied_here and not r.item.exchangeable for r in analysis.items)
    if newly_left_out and run.logged:
        print(f"report: note: {run.model} / {run.task}: the samples predate the exchangeability guard; the "
              f"report leaves {newly_left_out} item(s) with order-bound options out of scenario a, which "
              "lm_eval counted (--keep-nonexchangeable counts them)", file=sys.stderr)


def _earlier_report(out: Path, force: bool) -> list[Path] | None:
    """The earlier report's files in ``--out`` (to delete), or ``None`` after printing why ``--out`` is refused."""
    try:
        return check_out(out, force=force)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the ``report`` command; see :func:`build_parser` and the module docstring."""
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    if not 0.0 < args.alpha < 1.0:
        parser.error(f"--alpha must lie in (0, 1), got {args.alpha}")
    settings = _settings(args)
    earlier = _earlier_report(args.out, args.force)
    read = None if earlier is None else _read(args, settings.subjects)
    if earlier is None or read is None:
        return 2
    runs, problems, notes = read
    analyses = [analyse(run, settings) for run in runs]
    for analysis in analyses:
        _note_guard_applied(analysis)
    for note in control_notes(analyses, settings):
        print(f"report: note: {note}", file=sys.stderr)
        notes.append(note)
    if earlier:
        print(f"report: note: replacing the earlier report in {args.out} ({clear_earlier(args.out, earlier)} "
              "files deleted)", file=sys.stderr)
    output = write_report(
        analyses, args.out, settings, top=args.top, case_count=args.cases, case_ids=args.case,
        deltas=args.delta_sweep, formats=[f.strip() for f in args.formats.split(",") if f.strip()],
        problems=problems, notes=notes,
    )
    write_marker(args.out, output.files)
    if output.font_note:
        print(f"report: note: {output.font_note}", file=sys.stderr)
    n_items = sum(len(a.items) for a in analyses)
    print(f"report: {len(runs)} run(s), {n_items} items; wrote {len(output.files)} files to {args.out} "
          f"(open {args.out / 'leaderboard.html'})")
    if problems and not args.skip_bad_lines:
        print(f"report: {len(problems)} unreadable samples line(s): the report covers the rest "
              "(rerun with --skip-bad-lines to accept)", file=sys.stderr)
        return 1
    return 0
