#!/usr/bin/env python
"""Controlled-contamination validation: leak half of N items into a model, then detect.

Examples:
    # the default configuration: 60 MMLU items, scenario a, detection-template format, epochs 1,2,3,5,10
    python scripts/validate_contamination.py --out results/validation_a_template
    # the other combinations are one flag away
    python scripts/validate_contamination.py --scenario b --format native --out results/validation_b_native
    # a smoke run (8 items, one epoch)
    python scripts/validate_contamination.py --quick --out /tmp/validation_quick
    # recompute the tables and the ROC picture of a (partly) finished run, no model needed
    python scripts/validate_contamination.py --report-only --out results/validation_a_template
    # side-by-side tables of finished runs
    python scripts/validate_contamination.py --compare results/validation_a_template results/validation_b_template

See docs/validation.md; the command line is ``lm_eval_leakage.validation.cli``.
"""

from __future__ import annotations

import sys

from lm_eval_leakage.validation.cli import build_parser, config_from_args, main

__all__ = ["build_parser", "config_from_args", "main"]

if __name__ == "__main__":
    sys.exit(main())
