#!/usr/bin/env bash
# The main job end to end on this machine, from nothing (no downloads): about 20 s on 2 idle cores:
#   1. generate the captioned-shapes data set (clipkit data shapes: 2,000 training and 200 held-out
#      images of coloured shapes at named positions, with captions),
#   2. train a small CLIP from scratch on it, every weight (clipkit init + clipkit train),
#   3. index the 200 held-out images with their captions (clipkit index build),
#   4. search them by text -- the top hits print with their captions, so you can see they match --
#      and classify unseen images zero-shot (clipkit classify --eval: accuracy over 18 classes),
#   5. say how to open the web page on that index (clipkit serve).
# Environment: CLIPKIT_BIN (default build/tools/clipkit/clipkit), CLIPKIT_DEMO_OUT (default out/demo),
# THREADS (default 0 = all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CLIPKIT_BIN:-build/tools/clipkit/clipkit}
out=${CLIPKIT_DEMO_OUT:-out/demo}
threads=${THREADS:-0}
start=$(date +%s)
rm -rf "$out" && mkdir -p "$out"

echo "== 1. data: captioned shapes (COCO layout)"
"$bin" data shapes --out "$out/shapes" --train 2000 --val 200 --seed 1
echo "== 2. train a CLIP from scratch (clip-tiny, both towers, every weight)"
"$bin" init --arch clip-tiny --out "$out/init" --seed 0 >/dev/null
"$bin" train --model "$out/init" --data "$out/shapes" --out "$out/model" \
  --epochs 10 --batch-size 64 --lr 1e-3 --warmup-steps 50 --lr-scheduler cosine --weight-decay 0.1 \
  --no-dropout --no-eval --seed 0 --threads "$threads" 2>&1 | grep -v '^\[' || true
[ -f "$out/model/model.safetensors" ] || { echo "demo: training wrote no model" >&2; exit 1; }
echo "== 3. index the 200 held-out images (with their captions)"
"$bin" index build --model "$out/model" --coco "$out/shapes" --split val --index "$out/index" \
  --threads "$threads" 2>/dev/null | sed -n '1,2p'
echo "== 4. text search over the held-out images: the top 3 hits and their captions"
for query in "a red circle on the left" "a blue square at the top" "a green triangle on the right"; do
  echo "-- \"$query\""
  "$bin" search --index "$out/index" --text "$query" -k 3 --threads "$threads" |
    sed -E 's/^ *([0-9]+) +([0-9.-]+) +[0-9]+ +[^ ]+  /   \1. score \2  /'
done
echo "== zero-shot classification of unseen images (18 colour+shape classes, chance 0.056)"
"$bin" classify --model "$out/model" --eval "$out/shapes/zeroshot/object" --template "a {}" --threads "$threads" \
  2>/dev/null | head -1
echo "== 5. the web page on this index:"
echo "   $bin serve --index $out/index --port 8080"
echo "   then open http://127.0.0.1:8080/?q=a+yellow+circle+at+the+bottom"
echo "== total $(( $(date +%s) - start )) s"
