# Sourced by the comparison scripts, which take the bench lock themselves for each measurement:
# bench_locked CMD... runs CMD holding /tmp/clipkit-bench.lock, so no two benchmarks overlap.
# It waits at most CLIPKIT_BENCH_LOCK_WAIT seconds (default 1800) and then fails with a message
# instead of hanging: the usual cause is wrapping one of these scripts in `flock` too (a second
# flock on the same file from a child process waits for its own parent forever).
bench_locked() {
  local wait=${CLIPKIT_BENCH_LOCK_WAIT:-1800} rc=0
  flock -E 75 -w "$wait" /tmp/clipkit-bench.lock "$@" || rc=$?
  if [ "$rc" -eq 75 ]; then
    echo "bench: waited ${wait} s for /tmp/clipkit-bench.lock; another benchmark holds it, or this script was" \
         "started under flock (it takes the lock itself: run it without flock)" >&2
  fi
  return "$rc"
}
