#!/bin/bash
# Usage: run_browser_test.sh CLIPKIT_BINARY TEST_DATA_DIR
# Builds a tiny index, starts `clipkit serve` on a free loopback port, and drives the page in
# headless Chromium: load, text search, results with thumbnails, details + "more like this", ?q= and
# ?image= URLs, "load more", split and folder filters, upload.
set -euo pipefail
CLIPKIT=$1
DATA=$2
HERE=$(cd "$(dirname "$0")" && pwd)

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z "$CHROMIUM" ]]; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 || true
    CHROMIUM=$(command -v chromium || true)
  fi
fi
if [[ -z "$CHROMIUM" ]]; then
  echo "SKIPPED: chromium is not installed and could not be installed (apt-get install chromium)" >&2
  exit 77
fi
if ! command -v node >/dev/null; then
  echo "FAILED: node is missing (apt-get install nodejs npm)" >&2
  exit 1
fi
if [[ ! -d "$HERE/node_modules/playwright-core" ]]; then
  (cd "$HERE" && npm install --no-audit --no-fund --silent) >&2
fi

WORK=$(mktemp -d)
cleanup() {
  [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
"$CLIPKIT" index build --model "$DATA/models/tiny-clip" --coco "$DATA/datasets/coco-tiny" \
  --index "$WORK/idx" > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
"$CLIPKIT" serve --index "$WORK/idx" --port 0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
[[ -n "$URL" ]] || { echo "server did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }
CHROMIUM="$CHROMIUM" node "$HERE/web_page.test.js" "$URL" "$DATA/images/chelsea.jpg"
