#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...] -- builds the libFuzzer targets (clang, ASan+UBSan, into
# build-fuzz/) and runs each for SECONDS (default 30) from its seeds and crash regressions. Fails
# on any crash, leak-free timeout or out-of-memory; the input that did it is copied to
# fuzz/regressions/<target>/ (commit it with the fix: every build replays it as a test).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
# (warnings stay warnings here: the GCC builds hold the tree to -Werror; this one exists to fuzz)
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCLIPKIT_FUZZ=ON -DCLIPKIT_WERROR=OFF -DCLIPKIT_TESTS=OFF -DCLIPKIT_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_all
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(json safetensors npy model_config tokenizer image_jpeg image_png image_webp image_gif image_bmp datasets http)
fi
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_NUM_THREADS=1
failed=()
for t in "${targets[@]}"; do
  seeds=$t
  case $t in image_*) seeds=image ;; esac
  work=$(mktemp -d)
  mkdir -p "fuzz/regressions/$t"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="$PWD/fuzz/$t.dict")  # (libFuzzer runs in a temp folder)
  log=build-fuzz/fuzz_$t.log
  if (cd "$work" && "$OLDPWD/build-fuzz/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 \
        -max_len=65536 -print_final_stats=1 "$work" "$OLDPWD/fuzz/seeds/$seeds" "$OLDPWD/fuzz/regressions/$t") >"$log" 2>&1; then
    echo "fuzz_$t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') executions, no crash"
  else
    failed+=("$t")
    for f in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
      [ -e "$f" ] && cp "$f" "fuzz/regressions/$t/" && echo "fuzz_$t: found $(basename "$f") -> fuzz/regressions/$t/"
    done
    tail -n 40 "$log"
  fi
  rm -rf "$work"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
