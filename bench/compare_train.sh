#!/usr/bin/env bash
# Full fine-tuning throughput (both towers trainable): clipkit's `clipkit bench train` next to the
# PyTorch peer (bench/peers/torch_train_bench.py: same architecture, same batch, same synthetic
# inputs; eager fp32 and bf16 autocast), captions padded to 128 and dynamically padded, in one run.
# usage: bench/compare_train.sh [DUAL_MODEL_DIR] [--batch-size 32] [--steps 2] [--warmup 1] [--threads N]
#                                [--precision fp32,bf16] [--padding 128,dynamic]
# PyTorch's eager bf16 speed rises over its first steps: --warmup 3 --steps 6 compares warmed-up runs.
# Without a model dir it composes random ViT-B/32 + roberta-base towers under build-bench/.
# Takes the bench lock itself for each measurement (bench/bench_lock.sh): do not wrap it in flock.
# Env: CLIPKIT (CLI: its `bench train`), PYTHON (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CLIPKIT:-build/tools/clipkit/clipkit}
py=${PYTHON:-/usr/bin/python3}
model=""
batch=32
steps=2
warmup=1
precisions=fp32,bf16
paddings=128,dynamic
threads=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --precision) precisions=$2; shift 2 ;;
    --padding) paddings=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
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
ck=$($lock "$bin" bench train --model "$model" --batch-size "$batch" --steps "$steps" --warmup "$warmup" --threads "$threads" \
        --precision "$precisions" --padding "$paddings" --json)
pt=()
for prec in ${precisions//,/ }; do
  for pad in ${paddings//,/ }; do
    pt+=("$($lock "$py" bench/peers/torch_train_bench.py "$model" --batch-size "$batch" --steps "$steps" --warmup "$warmup" \
              --pad "$pad" --precision "$prec" --threads "$threads")")
  done
done
"$py" - "$ck" "${pt[@]}" <<'PY'
import json, sys
ck = json.loads(sys.argv[1])
pt = {(r["precision"], r["padding"]): r for r in map(json.loads, sys.argv[2:])}
print(f"full fine-tuning, {ck[0]['model']}, batch {ck[0]['batch_size']}, {ck[0]['threads']} threads, "
      f"dropout {'on' if ck[0]['dropout'] else 'off'}, median of {ck[0]['steps']} steps after {ck[0]['warmup']} warm-up")
print("model GFLOP/s: nominal forward FLOPs x 3 (padding included, as PyTorch computes) per second; performed: the")
print("matmul FLOPs clipkit ran (padding and unused rows skipped) per second, and their % of the matmul peak")
print(f"{'precision':9s} {'padding':8s} {'L':>4s} {'clipkit/s':>10s} {'PyTorch/s':>10s} {'speed-up':>8s} "
      f"{'model GF/s':>10s} {'performed':>9s} {'% peak':>7s}")
for r in ck:
    p = pt.get((r["precision"], r["padding"]))
    ps = p["samples_per_s"] if p else float("nan")
    print(f"{r['precision']:9s} {r['padding']:8s} {r['seq_len']:4d} {r['samples_per_s']:10.2f} {ps:10.2f} "
          f"{r['samples_per_s'] / ps:7.2f}x {r['gflops']:10.1f} {r['performed_gflops']:9.1f} "
          f"{100 * r['roofline_fraction']:6.1f}%")
print(json.dumps({"clipkit": ck, "pytorch": list(pt.values())}))
PY
