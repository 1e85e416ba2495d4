#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test in a release build, checks
# the installed package (scripts/check_install.sh: an out-of-tree application against `cmake
# --install`, pkg-config, the .deb), then runs the tests again under ASan+UBSan.
# `scripts/test.sh --fast` skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
(cd build && ctest --output-on-failure -j1)
scripts/check_install.sh build
if [ "${1:-}" != "--fast" ]; then
  scripts/build.sh asan
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  (cd build-asan && CLIPKIT_SANITIZED=1 ctest --output-on-failure -j1 -LE slow)
fi
