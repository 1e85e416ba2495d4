#!/bin/bash
# End-to-end images/s from JPEG files to a built index, ViT-B/32 (random weights), fp32 and bf16.
#   bench/embed_index_bench.sh [CLIPKIT] [N_IMAGES] [DECODE_THREADS]
# Makes N JPEG files (copies of the COCO-format test images, distinct paths), then times
# `clipkit index build --images` (decode + preprocess on worker threads, model, shards, FAISS,
# SQLite). Run under the bench lock: flock /tmp/clipkit-bench.lock bench/embed_index_bench.sh
set -euo pipefail
CLIPKIT=${1:-build/tools/clipkit/clipkit}
N=${2:-512}
DT=${3:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/clipkit-e2e.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
"$CLIPKIT" init --arch clip-vit-base-patch32 --out "$WORK/model" > /dev/null
mkdir -p "$WORK/images"
mapfile -t SRC < <(ls "$HERE"/tests/data/datasets/coco-tiny/{train2017,val2017}/*.jpg)
for ((i = 0; i < N; i++)); do
  cp "${SRC[$((i % ${#SRC[@]}))]}" "$WORK/images/$(printf %06d $i).jpg"
done
for prec in fp32 bf16; do
  rm -rf "$WORK/idx"
  t0=$(date +%s.%N)
  "$CLIPKIT" index build --model "$WORK/model" --images "$WORK/images" --index "$WORK/idx" \
    --precision $prec --batch-size 32 --decode-threads "$DT" > /dev/null 2> "$WORK/log"
  t1=$(date +%s.%N)
  embed_rate=$(sed -n 's/.*; \([0-9.]*\) images\/s this run/\1/p' "$WORK/log")
  python3 -c "import sys; n=$N; s=$t1-$t0; print('{\"precision\": \"$prec\", \"images\": %d, \"seconds\": %.2f, \"images_per_s_end_to_end\": %.1f, \"images_per_s_embedding\": %s, \"decode_threads\": $DT}' % (n, s, n/s, '$embed_rate'))"
done
