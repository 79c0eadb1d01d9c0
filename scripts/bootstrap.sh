#!/usr/bin/env bash
# Set up ./.venv with everything the project needs; safe to re-run (does nothing when up to date).
# CPU PyTorch goes in first, pinned, so that nothing pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
fi
stamp=.venv/.lm_eval_leakage.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VPY" -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
