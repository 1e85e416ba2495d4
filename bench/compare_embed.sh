#!/usr/bin/env bash
# clipkit embedding throughput against its peers, on the same checkpoint, in the same run.
#
#   bench/compare_embed.sh MODEL_DIR [--threads 2] [--repeats 1] [--no-text] [--peers-only]
#
# --repeats R runs every measurement R times, in R rounds that each visit every engine (so a burst
# of load hits all of them alike), and reports the medians.
#
# Runs, each under the bench lock (bench/bench_lock.sh; do not wrap this script in flock):
#   clipkit bench embed --json   fp32, bf16 and int8 batch 32 (images + texts), fp32 batch 1 (images)
#   PyTorch (torch_clip.py)      fp32 eager and bf16 autocast, batch 32 (+ fp32 batch 1)
#   ONNX Runtime (onnxruntime-node, model exported by torch.onnx.export from the same weights)
#                                fp32 batch 32 and batch 1; int8 batch 32 on a dynamically quantized copy
#                                of the same export (quantize_onnx.py: DynamicQuantizeLinear +
#                                MatMulInteger, int8 weights per output column; needs python3-onnx)
# then prints one table (img/s, txt/s, GFLOP/s, fraction of clipkit's measured matmul peak) and the
# ratios clipkit / peer with the targets. Every engine gets the same thread count (--threads).
# The peers need bench/peers/setup.sh once (Debian python3-torch + OpenBLAS, npm onnxruntime-node).
#
# Environment: CLIPKIT (default build/tools/clipkit/clipkit), PYTHON (default /usr/bin/python3,
# the interpreter Debian's torch is installed for), CLIPKIT_BENCH_CACHE (ONNX exports; default
# build-bench/onnx in the repo), CLIPKIT_BENCH_RESULTS (keep the raw JSON results there).
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
peers="$here/peers"
threads=2 repeats=1 text=1 clipkit_runs=1 model=""
while (($#)); do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
    --no-text) text=0; shift ;;
    --peers-only) clipkit_runs=0; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "compare_embed: unknown option $1" >&2; usage ;;
    *) [[ -z $model ]] || { echo "compare_embed: more than one MODEL_DIR" >&2; usage; }; model=$1; shift ;;
  esac
done
[[ -n $model ]] || usage
[[ -f $model/config.json && -f $model/model.safetensors ]] ||
  { echo "compare_embed: $model: want an HF CLIPModel folder (config.json + model.safetensors)" >&2; exit 1; }
model=$(cd "$model" && pwd)
python=${PYTHON:-/usr/bin/python3}
clipkit=${CLIPKIT:-$repo/build/tools/clipkit/clipkit}
. "$(dirname "$0")/bench_lock.sh"

if [[ -n ${CLIPKIT_BENCH_RESULTS:-} ]]; then
  results=$CLIPKIT_BENCH_RESULTS; mkdir -p "$results"; rm -f "$results"/*.json "$results"/*.err
else
  results=$(mktemp -d /tmp/clipkit-compare.XXXXXX); trap 'rm -rf "$results"' EXIT
fi
notes=()
note() { notes+=("$*"); echo "compare_embed: $*" >&2; }

# measure LABEL COMMAND...: one result of round $round in $results/LABEL.$round.json (stderr in .err).
measure() {
  local label=$1 out="$results/$1.$round"; shift
  echo "  $label (round $round/$repeats)" >&2
  if ! bench_locked "$@" >"$out.out" 2>"$out.err"; then
    note "$label (round $round) failed: $(tail -n 3 "$out.err" | tr '\n' ' ')"
    rm -f "$out.out"
    return 1
  fi
  grep '^{' "$out.out" | tail -n 1 >"$out.json"  # only the JSON line (tools may log before it)
  rm -f "$out.out"
}

echo "compare_embed: $model, $threads threads, $repeats round(s); load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# --- what can run ------------------------------------------------------------------------------
have_clipkit=0
if ((clipkit_runs)); then
  if [[ ! -x $clipkit ]]; then
    note "no clipkit binary at $clipkit (build it: cmake --build build --target clipkit, or set CLIPKIT); running the peers only"
  elif ! "$clipkit" bench embed --help 2>/dev/null | grep -q -- '--json'; then
    note "$clipkit has no 'bench embed --json' (older build?); running the peers only"
  else
    have_clipkit=1
  fi
fi
have_torch=0 have_ort=0
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
  note "$python cannot import torch/numpy: run bench/peers/setup.sh (Debian python3-torch); skipping PyTorch and ONNX Runtime"
else
  have_torch=1
  if [[ ! -d $peers/node_modules/onnxruntime-node ]]; then
    note "no $peers/node_modules/onnxruntime-node: run bench/peers/setup.sh; skipping ONNX Runtime"
  else
    have_ort=1
  fi
fi

# ONNX exports first (not timed), cached by checkpoint identity and exporter version: a ViT-B/32
# export takes about a minute.
if ((have_ort)); then
  key=$(stat -c '%n %s %Y' "$model/model.safetensors" "$model/config.json" "$peers/torch_clip.py" \
    "$peers/export_onnx.py" | sha1sum | cut -c1-16)
  cache=${CLIPKIT_BENCH_CACHE:-$repo/build-bench/onnx}/$key
  mkdir -p "$cache"
  image_size=$("$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); from clip_config import load_config; print(load_config(sys.argv[2])["vision"]["image_size"])' "$peers" "$model")
  parts=(vision); ((text)) && parts+=(text)
  for part in "${parts[@]}"; do
    if [[ ! -s $cache/$part.onnx ]]; then
      echo "  exporting the $part tower to $cache/$part.onnx" >&2
      "$python" "$peers/export_onnx.py" "$model" "$cache/$part.onnx" --part "$part" --threads "$threads" >&2 ||
        note "ONNX export of the $part tower failed"
    fi
    # the int8 peer: remade when the quantizer changes
    if [[ -s $cache/$part.onnx && ! ( $cache/$part.int8.onnx -nt $peers/quantize_onnx.py ) ]]; then
      if ! "$python" -c 'import onnx' 2>/dev/null; then
        note "$python cannot import onnx (Debian python3-onnx): skipping ONNX Runtime int8"
      else
        "$python" "$peers/quantize_onnx.py" "$cache/$part.onnx" "$cache/$part.int8.onnx" >&2 ||
          note "int8 quantization of the $part export failed"
      fi
    fi
  done
fi

# --- measurements: every engine once per round, so the rounds see the same machine ------------
seq_len=20
text_flag=(); ((text)) || text_flag=(--no-text)
for ((round = 1; round <= repeats; round++)); do
  if ((have_clipkit)); then
    ck=("$clipkit" bench embed --model "$model" --threads "$threads" --json)
    measure clipkit-fp32-b32-both "${ck[@]}" --batch-size 32 --precision fp32 "${text_flag[@]}"
    measure clipkit-bf16-b32-both "${ck[@]}" --batch-size 32 --precision bf16 "${text_flag[@]}"
    measure clipkit-int8-b32-both "${ck[@]}" --batch-size 32 --precision int8 "${text_flag[@]}"
    measure clipkit-fp32-b1-vision "${ck[@]}" --batch-size 1 --precision fp32 --iters 10 --no-text
    # The peers' captions get clipkit's padded length, so every engine does the same text work.
    if ((round == 1)) && [[ -s $results/clipkit-fp32-b32-both.1.json ]]; then
      L=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("text_tokens", ""))' \
        "$results/clipkit-fp32-b32-both.1.json" 2>/dev/null)
      [[ $L =~ ^[0-9]+$ ]] && seq_len=$L
    fi
  fi
  if ((have_torch)); then
    tb=("$python" "$peers/torch_bench.py" "$model" --threads "$threads")
    measure torch-fp32-b32-vision "${tb[@]}" --batch-size 32 --precision fp32 --part vision
    measure torch-bf16-b32-vision "${tb[@]}" --batch-size 32 --precision bf16 --part vision
    measure torch-fp32-b1-vision "${tb[@]}" --batch-size 1 --precision fp32 --part vision --warmup 2 --iters 5
    if ((text)); then
      measure torch-fp32-b32-text "${tb[@]}" --batch-size 32 --precision fp32 --part text --seq-len "$seq_len"
      measure torch-bf16-b32-text "${tb[@]}" --batch-size 32 --precision bf16 --part text --seq-len "$seq_len"
    fi
  fi
  if ((have_ort)); then
    ob=(node "$peers/ort_bench.mjs" --threads "$threads")
    if [[ -s $cache/vision.onnx ]]; then
      measure ort-fp32-b32-vision "${ob[@]}" "$cache/vision.onnx" --part vision --batch-size 32 --image-size "$image_size"
      measure ort-fp32-b1-vision "${ob[@]}" "$cache/vision.onnx" --part vision --batch-size 1 --image-size "$image_size" \
        --warmup 3 --iters 10
    fi
    if [[ -s $cache/vision.int8.onnx ]]; then
      measure ort-int8-b32-vision "${ob[@]}" "$cache/vision.int8.onnx" --precision int8 --part vision --batch-size 32 \
        --image-size "$image_size"
    fi
    if ((text)) && [[ -s $cache/text.onnx ]]; then
      measure ort-fp32-b32-text "${ob[@]}" "$cache/text.onnx" --part text --batch-size 32 --seq-len "$seq_len"
    fi
    if ((text)) && [[ -s $cache/text.int8.onnx ]]; then
      measure ort-int8-b32-text "${ob[@]}" "$cache/text.int8.onnx" --precision int8 --part text --batch-size 32 \
        --seq-len "$seq_len"
    fi
  fi
done

# --- table -------------------------------------------------------------------------------------
echo "compare_embed: done; load average $(cut -d' ' -f1-3 /proc/loadavg) (above $threads means other work shared the cores)" >&2
if ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "compare_embed: $python lacks numpy; raw results:" >&2
  cat "$results"/*.json
  exit 1
fi
"$python" "$peers/report.py" "$results" "$model" --json "$results/summary.json"
rc=$?
for n in "${notes[@]}"; do echo "note: $n"; done
exit $rc
