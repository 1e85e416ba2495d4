#!/usr/bin/env bash
# The main job on the bundled default: make a small CLIP model, embed the sample images and
# captions, and print their similarity table.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tools/clipkit/clipkit
out=${CLIPKIT_DEMO_OUT:-out/demo}
mkdir -p "$out"
"$bin" init --arch clip-tiny --out "$out/model" --seed 1
"$bin" info "$out/model"
"$bin" embed --model "$out/model" --images examples/sample/images/*.jpg --out "$out/images.npy"
"$bin" embed --model "$out/model" --texts examples/sample/captions.txt --out "$out/captions.npy"
"$bin" compare --model "$out/model" --images examples/sample/images/*.jpg --texts examples/sample/captions.txt
