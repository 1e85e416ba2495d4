#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test in a release build, checks
# the installed package (scripts/check_install.sh: an out-of-tree application against `cmake
# --install`, pkg-config, the .deb), compiles the CUDA build where the CUDA toolkit is and runs its
# tests (they skip without a GPU), then every test again under ASan+UBSan, then every fuzz target
# for CLIPKIT_FUZZ_SECONDS (default 30) each. `scripts/test.sh --fast` skips the sanitizer pass and
# the fuzzing. Two tests at a time (the soak runs alone: RUN_SERIAL): the two passes take ~10 and
# ~13 minutes one at a time on 2 cores, which kept CI within minutes of its 90. The builds are most
# of the time: release ~15 minutes on 2 cores, CUDA ~6, ASan+UBSan ~27 (at -O1), fuzz ~5.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
(cd build && ctest --output-on-failure -j2)
scripts/check_install.sh build
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  scripts/build.sh cuda
  (cd build-cuda && ctest --output-on-failure -j1)
else
  echo "test.sh: no CUDA toolkit (nvcc): the CUDA build is not compiled"
fi
if [ "${1:-}" != "--fast" ]; then
  scripts/build.sh asan
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  (cd build-asan && CLIPKIT_SANITIZED=1 ctest --output-on-failure -j2 -LE slow)
  scripts/fuzz.sh "${CLIPKIT_FUZZ_SECONDS:-30}"
fi
