// One threading model for everything: OpenMP (the runtime oneDNN uses here), so our own ops and
// oneDNN's share one pool and never oversubscribe the cores. (This header keeps OpenMP's own out
// of its includers.)
#pragma once
#include <cstdint>

namespace clipkit {

// Sets the number of compute threads (0 = all cores). Call once at start-up.
void set_num_threads(int n);
int num_threads();
int num_cores();  // processors this process may run on (OpenMP's count)
int thread_index();  // of the calling thread within the current parallel region (0 outside one)

// parallel_for(n, fn): fn(begin, end) over a static split of [0, n) across the compute threads.
template <typename Fn>
void parallel_for(int64_t n, Fn&& fn, int64_t min_chunk = 1) {
  if (n <= 0) return;
  int nt = num_threads();
  int64_t chunks = n / (min_chunk > 0 ? min_chunk : 1);
  if (chunks < nt) nt = static_cast<int>(chunks < 1 ? 1 : chunks);
  if (nt <= 1) { fn(int64_t{0}, n); return; }
#pragma omp parallel num_threads(nt)
  {
    int t = thread_index();
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

}  // namespace clipkit
