#!/bin/bash
# The service under load on loopback: requests/s and latency percentiles for text search, with
# wrk (Debian package) for a bounded time. ViT-B/32 text tower (random weights), the coco-tiny index.
#   bench/serve_load.sh [CLIPKIT] [SECONDS] [CONNECTIONS]
# Run under the bench lock: flock /tmp/clipkit-bench.lock bench/serve_load.sh
set -euo pipefail
CLIPKIT=${1:-build/tools/clipkit/clipkit}
SECS=${2:-15}
CONNS=${3:-8}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/clipkit-load.XXXXXX)
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
"$CLIPKIT" init --arch clip-vit-base-patch32 --out "$WORK/model" > /dev/null
"$CLIPKIT" index build --model "$WORK/model" --coco "$HERE/tests/data/datasets/coco-tiny" --index "$WORK/idx" > /dev/null 2>&1
"$CLIPKIT" serve --index "$WORK/idx" --host 127.0.0.1 --port 0 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 300); do grep -q listening "$WORK/out" 2> /dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/out")
cat > "$WORK/search.lua" <<'LUA'
local queries = {"a red circle", "two shapes on a beige background", "a yellow star to the right of a square",
                 "a small blue triangle", "a purple diamond on a gradient", "a large orange square in the center"}
local i = 0
request = function()
  i = i + 1
  local body = '{"text": "' .. queries[(i % #queries) + 1] .. ' ' .. i .. '", "k": 10}'
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "seconds": %.1f, "requests_per_s": %.1f, "latency_ms_p50": %.2f, "latency_ms_p90": %.2f, "latency_ms_p99": %.2f}\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
LUA
wrk -t 2 -c "$CONNS" -d "${SECS}s" --timeout 10s -s "$WORK/search.lua" "${URL%/}" | tail -1
curl -s "${URL}metrics" | grep -E '^clipkit_model_(batches|rows)_total\{kind="text"\}' >&2
