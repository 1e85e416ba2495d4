#!/bin/bash
# Usage: run_openai_test.sh CLIPKIT_BINARY TEST_DATA_DIR
# Starts `clipkit serve` (with an API key) over a tiny index and runs openai_test.mjs: the official
# OpenAI Node client (npm package openai, pinned in package-lock.json, installed here with npm ci)
# calling POST /v1/embeddings, compared with `clipkit embed` on the same texts and image.
set -euo pipefail
CLIPKIT=$1
DATA=$2
HERE=$(cd "$(dirname "$0")" && pwd)
command -v node > /dev/null || { echo "FAILED: node is missing (scripts/setup.sh installs it)" >&2; exit 1; }
if [[ ! -f "$HERE/node_modules/openai/package.json" ]]; then
  (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund --silent) >&2
fi
WORK=$(mktemp -d)
cleanup() {
  [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2> /dev/null && wait "$SERVER_PID" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
MODEL="$DATA/models/tiny-clip"
IMAGE="$DATA/images/chelsea.jpg"
TEXTS=("a red circle" "two shapes on a beige background" "a photo of a cat")
"$CLIPKIT" index build --model "$MODEL" --coco "$DATA/datasets/coco-tiny" --split val --index "$WORK/idx" \
  > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
args=()
for t in "${TEXTS[@]}"; do args+=(--text "$t"); done
"$CLIPKIT" embed --model "$MODEL" "${args[@]}" --out "$WORK/texts.npy" > /dev/null
"$CLIPKIT" embed --model "$MODEL" --images "$IMAGE" --out "$WORK/image.npy" > /dev/null
"$CLIPKIT" serve --index "$WORK/idx" --port 0 --api-key k3y > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do
  grep -q "listening on" "$WORK/serve.out" 2> /dev/null && break
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
[[ -n "$URL" ]] || { echo "server did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }
node "$HERE/openai_test.mjs" "${URL}v1" k3y "$WORK/texts.npy" "$WORK/image.npy" "$IMAGE" "${TEXTS[@]}"
