#!/usr/bin/env bash
# scripts/build.sh [release|asan|cuda] -- configures and builds into build/, build-asan/ or build-cuda/
# (cuda: the standalone GPU build of docs/gpu.md: the CUDA backend, its tests, and the CLI without the
# commands that need oneDNN/FAISS/FFmpeg/SQLite/cpp-httplib -- the layers it has are the release
# build's sources with the same flags; needs nvcc).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
targets=()
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLIPKIT_SANITIZE=ON) ;;
  cuda)    dir=build-cuda; flags=(-DCMAKE_BUILD_TYPE=Release -DCLIPKIT_STANDALONE_GPU=ON -DCLIPKIT_WERROR=ON)
           targets=(--target gpu_tests clipkit) ;;
  *) echo "usage: scripts/build.sh [release|asan|cuda]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
