#!/usr/bin/env bash
# The main job on the embedded offline default: SmolLM2-135M on a seeded sample of real MMLU items,
# through lm_eval's own CLI (model hf-prefix: hf's scores, each item's orderings fed once as a token trie),
# printing the standard table with the leakage columns.
# Environment: DEMO_ITEMS (default 40), DEMO_OUT (default results/demo), extra args go to lm_eval.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline_env.sh
ITEMS="${DEMO_ITEMS:-40}"
.venv/bin/lm_eval --model hf-prefix \
  --model_args "pretrained=$CACHE/smollm2-135m,dtype=float32" \
  --tasks leak_mmlu \
  --metadata "{\"data_files\": \"$CACHE/mmlu_test.jsonl\", \"sample_items\": $ITEMS}" \
  --device cpu --batch_size 2 \
  --output_path "${DEMO_OUT:-results/demo}" --log_samples "$@"
