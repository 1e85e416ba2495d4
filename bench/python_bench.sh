#!/usr/bin/env bash
# bench/python_bench.sh [--model DIR] [--threads 2] [--repeats 3] [--json OUT]: the Python package's
# overhead against `clipkit embed` and against the slow Python CLIP tokenizer (bench/python_bench.py),
# on the module of build/, holding the bench lock.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
source bench/bench_lock.sh
PYTHONPATH=$PWD/build/python${PYTHONPATH:+:$PYTHONPATH} bench_locked "${PYTHON:-/usr/bin/python3}" bench/python_bench.py "$@"
