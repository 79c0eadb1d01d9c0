#!/usr/bin/env bash
# Rebuild docs/report_example/: SmolLM2-135M on 40 sampled MMLU items and on 20 of the CMB example
# items (24 sampled orderings each), then the report command over both runs, then a screenshot of its
# leaderboard.html in headless chromium (leaderboard.png; scripts/screenshot_report.py).
# Environment: REPORT_RUNS (default results/report_example_runs), REPORT_OUT (default docs/report_example).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline_env.sh
RUNS="${REPORT_RUNS:-results/report_example_runs}"
OUT="${REPORT_OUT:-docs/report_example}"
CMB="${CMB_EXAMPLE:-$PWD/tests/data/cmb_example.json}"
run() {  # run TASK METADATA OUTPUT
  .venv/bin/lm_eval --model hf --model_args "pretrained=$CACHE/smollm2-135m,dtype=float32" \
    --tasks "$1" --metadata "$2" --device cpu --batch_size 24 --output_path "$3" --log_samples
}
run leak_mmlu "{\"data_files\": \"$CACHE/mmlu_test.jsonl\", \"sample_items\": 40}" "$RUNS/mmlu"
run leak_cmb "{\"data_files\": \"$CMB\", \"sample_items\": 20, \"max_orderings\": 24}" "$RUNS/cmb"
rm -rf "$OUT"
.venv/bin/python -m lm_eval_leakage report "$RUNS/mmlu" "$RUNS/cmb" --out "$OUT" --formats png
.venv/bin/python scripts/screenshot_report.py "$OUT/leaderboard.html"
