#!/bin/bash
# End-to-end images/s from JPEG files to a built index, ViT-B/32 (random weights), against the
# model-only rate of the same model measured in the same run (`clipkit bench embed`, pixels given).
#   bench/embed_index_bench.sh [CLIPKIT] [N_IMAGES] [DECODE_THREADS]   (default: clipkit's own, -1 = auto)
# Environment: PRECISIONS (default "fp32 bf16"; int8 too where the CPU has VNNI); ROUNDS (default 1).
# Makes N JPEG files (copies of the COCO-format test images, distinct paths), then times
# `clipkit index build --images` (start-up, decode + preprocess on worker threads, model, shards,
# FAISS, SQLite) as a process, between two model-only measurements (a VM's speed drifts by more
# than the gap measured). "vs_model_only" is the end-to-end rate over the mean of the two
# model-only rates. With ROUNDS > 1, one line per round, then per precision the median ratio.
# Run under the bench lock: flock /tmp/clipkit-bench.lock bench/embed_index_bench.sh
set -euo pipefail
CLIPKIT=${1:-build/tools/clipkit/clipkit}
N=${2:-512}
DT=${3:--1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/clipkit-e2e.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
"$CLIPKIT" init --arch clip-vit-base-patch32 --out "$WORK/model" > /dev/null
mkdir -p "$WORK/images"
mapfile -t SRC < <(ls "$HERE"/tests/data/datasets/coco-tiny/{train2017,val2017}/*.jpg)
for ((i = 0; i < N; i++)); do
  cp "${SRC[$((i % ${#SRC[@]}))]}" "$WORK/images/$(printf %06d $i).jpg"
done
model_only() {
  "$CLIPKIT" bench embed --model "$WORK/model" --precision "$1" --no-text --batch-size 32 --iters 8 --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])'
}
: > "$WORK/ratios"
for ((round = 1; round <= ${ROUNDS:-1}; round++)); do
for prec in ${PRECISIONS:-fp32 bf16}; do
  before=$(model_only "$prec")
  rm -rf "$WORK/idx"
  t0=$(date +%s.%N)
  "$CLIPKIT" index build --model "$WORK/model" --images "$WORK/images" --index "$WORK/idx" \
    --precision "$prec" --batch-size 32 --decode-threads "$DT" > /dev/null 2> "$WORK/log"
  t1=$(date +%s.%N)
  after=$(model_only "$prec")
  embed_rate=$(sed -n 's/.*; \([0-9.]*\) images\/s this run/\1/p' "$WORK/log")
  python3 -c "n=$N; s=$t1-$t0; b=$before; a=$after; m=(a+b)/2; print('{\"precision\": \"$prec\", \"round\": $round, \"images\": %d, \"seconds\": %.2f, \"images_per_s_end_to_end\": %.1f, \"images_per_s_embedding\": %s, \"images_per_s_model_only\": %.1f, \"model_only_before_after\": [%.1f, %.1f], \"vs_model_only\": %.3f, \"decode_threads\": $DT, \"load\": %s}' % (n, s, n/s, '$embed_rate', m, b, a, n/s/m, open('/proc/loadavg').read().split()[0]))" | tee -a "$WORK/ratios"
done
done
if (( ${ROUNDS:-1} > 1 )); then
  python3 - "$WORK/ratios" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for prec in dict.fromkeys(r["precision"] for r in rows):
    r = [x["vs_model_only"] for x in rows if x["precision"] == prec]
    print(json.dumps({"precision": prec, "rounds": len(r), "vs_model_only": r, "median_vs_model_only": round(statistics.median(r), 3)}))
PY
fi
