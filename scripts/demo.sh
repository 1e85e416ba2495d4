#!/usr/bin/env bash
# The main job on the bundled default, end to end on this machine in about a minute:
#   1. make two small towers (random weights: no downloads here) and compose a dual encoder,
#   2. train its projections on the bundled COCO-format dataset (tests/data/datasets/coco-tiny),
#   3. evaluate retrieval before and after, and embed + compare the sample images and captions.
# With real towers: clipkit compose --vision openai/clip-vit-base-patch32 --text roberta-base (local folders).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tools/clipkit/clipkit
out=${CLIPKIT_DEMO_OUT:-out/demo}
data=tests/data/datasets/coco-tiny
rm -rf "$out" && mkdir -p "$out"
"$bin" init --arch clip-tiny --out "$out/vision" --seed 1
"$bin" init --arch roberta-tiny --out "$out/text" --seed 2
"$bin" compose --vision "$out/vision" --text "$out/text" --out "$out/dual" --projection-dim 64 --seed 3
echo "== before training"
"$bin" eval --model "$out/dual" --data "$data" --split val --batch-size 32
"$bin" train --model "$out/dual" --data "$data" --out "$out/trained" --freeze-vision --freeze-text \
  --epochs 10 --batch-size 32 --lr 2e-3 --warmup-steps 10
echo "== after training"
"$bin" eval --model "$out/trained" --data "$data" --split val --batch-size 32 --cache-dir "$out/trained/cache"
"$bin" embed --model "$out/trained" --images examples/sample/images/*.jpg --out "$out/images.npy"
"$bin" embed --model "$out/trained" --texts examples/sample/captions.txt --out "$out/captions.npy"
"$bin" compare --model "$out/trained" --images examples/sample/images/*.jpg --texts examples/sample/captions.txt
