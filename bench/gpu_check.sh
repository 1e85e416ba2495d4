#!/usr/bin/env bash
# bench/gpu_check.sh -- issue 16's check on a bare GPU machine (docs/gpu.md says how to run it with
# the device tool): configures and builds the standalone GPU build with every core, runs the GPU
# tests, times HF transformers (bench/gpu/hf_side.py) and clipkit (bench/gpu/clipkit_side.py,
# every clipkit row) on the same card, prints one table and writes JSON. Made to
# finish in under 8 minutes on an H200 with 16 cores: the torch.compile row gets what is left of a
# 7.5-minute budget (at most CLIPKIT_GPU_COMPILE_TIMEOUT seconds) and is skipped, saying so, below 60 s.
#
#   bench/gpu_check.sh [OUT_DIR]      (default: $OUT when set -- the device tool's --, else build-gpu/check)
#
# OUT_DIR gets 5 files: table.txt (the table), gpu_check.json (every row, the test counts, the parts'
# raw JSON), build.log, tests.log, hf.log. Models, JPEGs and parity dumps go to CLIPKIT_GPU_WORK
# (default /tmp/clipkit-gpu). Needs: CMake, Ninja, a C++ compiler, the CUDA toolkit (nvcc), .gpudeps/
# (bench/gpu/gather_deps.sh, made on a Debian machine), python3 with torch, transformers and Pillow.
# CLIPKIT_GPU_SKIP_BUILD=1 reuses build-gpu/; CLIPKIT_GPU_HF_ARGS adds arguments to hf_side.py ("--smoke
# --cpu": the whole flow at toy sizes, as checked on a machine without a GPU), CLIPKIT_GPU_CK_ARGS to
# clipkit_side.py ("--device cpu --smoke" with it). Exit status: 0 when the build and every GPU test passed
# and the HF side ran; else 1 (the table is printed either way).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-build-gpu/check}}
work=${CLIPKIT_GPU_WORK:-/tmp/clipkit-gpu}
py=${PYTHON:-python3}
read -r -a hf_args <<< "${CLIPKIT_GPU_HF_ARGS:-}"
compile_limit=${CLIPKIT_GPU_COMPILE_TIMEOUT:-240}
mkdir -p "$out" "$work/parts"
start=$SECONDS
status=0
phase() { echo "== gpu_check: $1 (at $((SECONDS - start)) s)"; }

phase "configure + build: standalone GPU build, $(nproc) jobs"
t=$SECONDS
build_ok=1
if [ "${CLIPKIT_GPU_SKIP_BUILD:-0}" != 1 ]; then
  { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLIPKIT_STANDALONE_GPU=ON &&
    cmake --build build-gpu -j "$(nproc)"; } > "$out/build.log" 2>&1 || build_ok=0
fi
build_s=$((SECONDS - t))
[ -f "$out/build.log" ] && grep -E "^-- clipkit|error:|FAILED" "$out/build.log" | head -20
[ $build_ok = 1 ] || { echo "gpu_check: the build failed (build.log)"; status=1; }

phase "GPU tests"
rm -f "$work/parts/gpu_tests.json"
if [ $build_ok = 1 ]; then
  build-gpu/tests/gpu_tests --gtest_output=json:"$work/parts/gpu_tests.json" > "$out/tests.log" 2>&1 || status=1
  grep -E "tests ran|^\[  PASSED  \]|^\[  SKIPPED \] [0-9]+ test|^\[  FAILED  \]" "$out/tests.log" | head -30
  # multi-GPU data parallel = one process (skips, exit 77, on a one-GPU machine or without mpirun)
  rc=0
  tests/dist/two_gpus_train_test.sh build-gpu/tools/clipkit/clipkit tests/data >> "$out/tests.log" 2>&1 || rc=$?
  case $rc in 0) echo "gpu_check: two GPUs = one: ok" ;; 77) echo "gpu_check: two GPUs = one: $(tail -1 "$out/tests.log")" ;;
              *) echo "gpu_check: two GPUs = one: FAILED (tests.log)"; status=1 ;; esac
fi

phase "HF side: models, embedding, JPEG files, latency, training steps, parity dumps"
rm -f "$work/parts/hf.json" "$work/parts/hf_compile.json"
"$py" bench/gpu/hf_side.py "${hf_args[@]}" --out "$work/parts/hf.json" --work "$work" > "$out/hf.log" 2>&1 || status=1
grep "^hf_side: " "$out/hf.log" | grep -v "section .* took" | cut -c1-150

budget=$((450 - (SECONDS - start)))
[ "$budget" -gt "$compile_limit" ] && budget=$compile_limit
if [ "$budget" -ge 60 ]; then
  phase "HF side: torch.compile max-autotune (at most $budget s)"
  timeout "$budget" "$py" bench/gpu/hf_side.py "${hf_args[@]}" --sections compile --out "$work/parts/hf_compile.json" \
    --work "$work" >> "$out/hf.log" 2>&1 || echo "gpu_check: the torch.compile row did not finish within $budget s"
else
  echo "gpu_check: no time left for the torch.compile row ($budget s of the budget)"
fi

phase "clipkit side"
"$py" bench/gpu/clipkit_side.py --bin build-gpu/tools/clipkit/clipkit --work "$work" --out "$work/parts/clipkit.json" \
  ${CLIPKIT_GPU_CK_ARGS:-}

phase "report"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
"$py" bench/gpu/report.py --out "$out/gpu_check.json" --hf "$work/parts/hf.json" --hf "$work/parts/hf_compile.json" \
  --clipkit "$work/parts/clipkit.json" --tests "$work/parts/gpu_tests.json" --raw-dir "$work/parts" \
  --info "commit=$commit" --info "build_ok=$build_ok" --info "build_seconds=$build_s" \
  --info "total_seconds=$((SECONDS - start))" | tee "$out/table.txt"
echo "gpu_check: done in $((SECONDS - start)) s, status $status"
exit $status
