#!/usr/bin/env bash
# Frozen-tower training at COCO 2017 scale: clipkit's parts (embedding pass + cached epochs) next to
# PyTorch doing the same training step the Hugging Face way (towers re-run every step), in one run.
# usage: bench/compare_frozen_train.sh [DUAL_MODEL_DIR] [--batch-size 32] [--precision fp32|bf16]
# Without a model dir it composes random ViT-B/32 + roberta-base towers under build-bench/.
# Takes the bench lock itself for each measurement (bench/bench_lock.sh): do not wrap it in flock.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CLIPKIT:-build/tools/clipkit/clipkit}
py=${PYTHON:-/usr/bin/python3}
model=""
batch=32
prec=fp32
while [ $# -gt 0 ]; do
  case "$1" in
    --batch-size) batch=$2; shift 2 ;;
    --precision) prec=$2; shift 2 ;;
    *) model=$1; shift ;;
  esac
done
if [ -z "$model" ]; then
  . bench/default_dual_model.sh
  model=$(default_dual_model "$bin")
fi
. bench/bench_lock.sh
lock=bench_locked
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ck=$($lock build/bench/frozen_train_bench --model "$model" --images tests/data/datasets/coco-tiny/train2017 \
       --batch-size "$batch" --precision "$prec" --sample-images 128 --sample-captions 512 --json)
pt_dyn=$($lock "$py" bench/peers/torch_frozen_train.py "$model" --batch-size "$batch" --pad dynamic --steps 2 --precision "$prec")
pt_128=$($lock "$py" bench/peers/torch_frozen_train.py "$model" --batch-size "$batch" --pad 128 --steps 2 --precision "$prec")
"$py" - "$ck" "$pt_dyn" "$pt_128" <<'PY'
import json, sys
ck, dyn, p128 = (json.loads(a) for a in sys.argv[1:4])
samples = 591753
print(f"{ck['architecture']}, {ck['precision']}, batch {ck['batch_size']}, {ck['threads']} threads")
print(f"clipkit  embedding pass: {ck['images_per_s']:.1f} images/s, {ck['captions_per_s']:.1f} captions/s -> {ck['embedding_pass_s']/60:.1f} min")
print(f"clipkit  cached epoch:   {ck['cached_step_ms']:.3f} ms/step -> {ck['cached_epoch_s']:.1f} s")
print(f"clipkit  3 epochs:       {ck['projected_total_s']/60:.1f} min")
for name, r in (("dynamic padding", dyn), ("padded to 128", p128)):
    t = 3 * samples / r["samples_per_s"]
    print(f"PyTorch  {name:16s} {r['samples_per_s']:.2f} samples/s -> 3 epochs {t/3600:.1f} h "
          f"({t / ck['projected_total_s']:.0f}x clipkit)")
PY
