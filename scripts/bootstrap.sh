#!/usr/bin/env bash
# Set up ./.venv with everything the project needs; safe to re-run (does nothing when up to date).
# CPU PyTorch goes in first, pinned, so that nothing pulls a multi-GB CUDA build. As root with apt-get,
# Debian's chromium is installed too (tests/e2e/test_browser.py opens the report's page in it).
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
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
      || echo "bootstrap: apt-get could not install chromium; the browser test will skip" >&2
  else
    echo "bootstrap: no chromium (install it as root: apt-get install chromium); the browser test will skip" >&2
  fi
fi
