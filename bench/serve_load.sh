#!/bin/bash
# The service under load on loopback (issue 20): text search requests/s and latency percentiles with
# wrk (Debian package) at CONNECTIONS connections for SECONDS, against the text tower's own batch-32
# throughput measured in the same run (`clipkit bench embed`); then the same load against a server
# whose queue holds only QUEUE inputs, timing the 503s it answers (curl probes while wrk runs).
# ViT-B/32 (random weights), the coco-tiny index. Every query is distinct (no text-cache hits).
#   bench/serve_load.sh [CLIPKIT] [SECONDS] [CONNECTIONS] [QUEUE] [PRECISION]
# PRECISION (fp32, bf16, ...) is the server's --precision and the text tower's in `bench embed`.
# Run quiet: /work/tools/quiet bench/serve_load.sh (or flock /tmp/clipkit-bench.lock ...)
set -euo pipefail
CLIPKIT=${1:-build/tools/clipkit/clipkit}
SECS=${2:-15}
CONNS=${3:-32}
QUEUE=${4:-4}
PREC=${5:-fp32}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/clipkit-load.XXXXXX)
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2> /dev/null && wait "$PID" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
"$CLIPKIT" init --arch clip-vit-base-patch32 --out "$WORK/model" > /dev/null
"$CLIPKIT" index build --model "$WORK/model" --coco "$HERE/tests/data/datasets/coco-tiny" --index "$WORK/idx" > /dev/null 2>&1
TOWER=$("$CLIPKIT" bench embed --model "$WORK/model" --precision "$PREC" --no-images --batch-size 32 --iters 8 --json |
        python3 -c 'import json,sys; j = json.load(sys.stdin); print(j["texts_per_s"], j["text_tokens"])')

# every connection comes from 127.0.0.1: allow them all from one address (and the probes beside them)
serve() {  # serve [ARGS...]: starts the server, sets PID and URL
  "$CLIPKIT" serve --index "$WORK/idx" --precision "$PREC" --host 127.0.0.1 --port 0 --max-connections-per-client $((CONNS + 4)) "$@" > "$WORK/out" 2> "$WORK/err" &
  PID=$!
  for _ in $(seq 300); do grep -q listening "$WORK/out" 2> /dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$WORK/out")
}
stop() { kill "$PID" && wait "$PID" 2> /dev/null || true; PID=; }
metric() { curl -s "${URL}metrics" | awk -v m="$1" '$1 == m {print $2}'; }

cat > "$WORK/search.lua" <<'LUA'
local queries = {"a red circle", "two shapes on a beige background", "a yellow star to the right of a square",
                 "a small blue triangle", "a purple diamond on a gradient", "a large orange square in the center"}
local i = 0
local threads = 0
setup = function(thread)  -- a number per wrk thread, so that no two threads send the same text
  threads = threads + 1
  thread:set("id", threads)
end
request = function()
  i = i + 1
  local body = '{"text": "' .. queries[(i % #queries) + 1] .. ' ' .. id .. '-' .. i .. '", "k": 10}'
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "non_2xx": %d, "seconds": %.1f, "requests_per_s": %.1f, "latency_ms_p50": %.2f, "latency_ms_p90": %.2f, "latency_ms_p99": %.2f}\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
LUA

# 1. throughput and latency with the default limits
serve
LOAD=$(wrk -t 2 -c "$CONNS" -d "${SECS}s" --timeout 10s -s "$WORK/search.lua" "${URL%/}" | tail -1)
BATCHES=$(metric 'clipkit_model_batches_total{kind="text"}')
ROWS=$(metric 'clipkit_model_rows_total{kind="text"}')
stop

# 2. over the queue limit: wrk keeps the queue full, curl probes time the answers
serve --max-queue "$QUEUE"
wrk -t 2 -c "$CONNS" -d "$((SECS / 2 + 2))s" --timeout 10s -s "$WORK/search.lua" "${URL%/}" > "$WORK/over" &
WRK=$!
sleep 1
for i in $(seq 200); do
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
    -d "{\"text\": \"probe $i\", \"k\": 10}" "${URL}v1/search" >> "$WORK/probes"
  sleep 0.02
done
wait "$WRK"
REJECTED=$(metric clipkit_model_queue_rejections_total)
stop

python3 - "$LOAD" "$TOWER" "$BATCHES" "$ROWS" "$WORK/probes" "$REJECTED" "$CONNS" "$QUEUE" "$PREC" <<'PY'
import json, sys
load, (tower, tower_tokens) = json.loads(sys.argv[1]), map(float, sys.argv[2].split())
batches, rows = int(sys.argv[3]), int(sys.argv[4])
probes = [l.split() for l in open(sys.argv[5]) if l.strip()]
r503 = sorted(float(t) * 1e3 for c, t in probes if c == "503")
r200 = sorted(float(t) * 1e3 for c, t in probes if c == "200")
pct = lambda v, p: v[min(len(v) - 1, int(p * len(v)))] if v else None
out = {"connections": int(sys.argv[7]), "precision": sys.argv[9], **load, "text_tower_batch32_texts_per_s": round(tower, 1), "text_tower_tokens": int(tower_tokens),
       "throughput_vs_tower": round(load["requests_per_s"] / tower, 3), "mean_model_batch": round(rows / max(1, batches), 1),
       "over_limit": {"max_queue": int(sys.argv[8]), "probes": len(probes), "probes_503": len(r503),
                      "ms_503_p50": pct(r503, 0.5), "ms_503_p99": pct(r503, 0.99), "ms_503_max": r503[-1] if r503 else None,
                      "probes_200": len(r200), "rejections_total": int(sys.argv[6])}}
print(json.dumps(out))
PY
