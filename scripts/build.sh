#!/usr/bin/env bash
# scripts/build.sh [release|asan|cuda] -- configures and builds into build/, build-asan/ or build-cuda/
# (cuda: the standalone GPU build of docs/gpu.md -- the CUDA kernels and their tests; needs nvcc).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLIPKIT_SANITIZE=ON) ;;
  cuda)    dir=build-cuda; flags=(-DCMAKE_BUILD_TYPE=Release -DCLIPKIT_STANDALONE_GPU=ON -DCLIPKIT_WERROR=ON) ;;
  *) echo "usage: scripts/build.sh [release|asan|cuda]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
