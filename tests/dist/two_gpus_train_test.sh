#!/usr/bin/env bash
# Multi-GPU data parallel (issue 16; dist/nccl_comm.h) equals one process: full fine-tuning of the
# tiny dual encoder for a few steps on one GPU, then under `mpirun -np 2` with --device cuda (one
# rank per GPU, NCCL collectives: the same global batch sliced by rank, gathered embeddings, summed
# gradients); the two final checkpoints agree tensor by tensor and the losses step by step.
#   two_gpus_train_test.sh CLIPKIT_BIN DATA_DIR     (exit 77 = skipped, saying why)
# Skips without mpirun, without 2 CUDA GPUs (nvidia-smi -L), or without the tiny fixtures.
set -euo pipefail
bin=$1
data=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-python3}
skip() { echo "skipped: $*"; exit 77; }
command -v mpirun >/dev/null || skip "mpirun not installed"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${gpus:-0}" -ge 2 ] || skip "needs 2 CUDA GPUs, found ${gpus:-0}"
model=$data/models/tiny-clip-roberta
coco=$data/datasets/coco-tiny
[ -d "$model" ] && [ -d "$coco" ] || skip "no fixtures under $data"
"$py" -c "import numpy" 2>/dev/null || skip "no numpy for $py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --model "$model" --data "$coco" --device cuda --max-steps 4 --batch-size 30 --lr 1e-4
        --weight-decay 0.1 --no-shuffle --no-eval --no-dropout)
"$bin" "${common[@]}" --out "$tmp/one" > "$tmp/one.log" 2>&1 || { cat "$tmp/one.log"; exit 1; }
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 "$bin" "${common[@]}" --out "$tmp/two" \
  > "$tmp/two.log" 2>&1 || { cat "$tmp/two.log"; exit 1; }
"$py" - "$repo/bench/peers" "$tmp" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from safetensors_np import read_safetensors
t = sys.argv[2]
one, two = read_safetensors(f"{t}/one/model.safetensors")[0], read_safetensors(f"{t}/two/model.safetensors")[0]
assert one.keys() == two.keys(), (sorted(one.keys() ^ two.keys()))[:5]
worst = max((float(np.abs(one[k].astype(np.float64) - two[k]).max()), k) for k in one)
print(f"max |1 GPU - 2 GPUs| over {len(one)} tensors: {worst[0]:.3g} ({worst[1]})")
assert worst[0] < 1e-4, worst  # fp32; the gradient sums run in another order
m1 = [json.loads(l) for l in open(f"{t}/one/metrics.jsonl") if l.strip()]
m2 = [json.loads(l) for l in open(f"{t}/two/metrics.jsonl") if l.strip()]
assert len(m1) == len(m2), (len(m1), len(m2))
for a, b in zip(m1, m2):
    if "loss" in a:
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
PY
echo "two_gpus_train_test: ok"
