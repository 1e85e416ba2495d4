// parallel_for splits [0, n) into disjoint chunks, one per thread, covering it exactly once; the
// thread index a chunk runs on is within the thread count.
#include "core/parallel.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <vector>

namespace clipkit {
namespace {

TEST(Parallel, ChunksCoverTheRangeOnceOnDistinctThreads) {
  const int threads = num_threads();
  set_num_threads(2);
  for (int64_t n : {0, 1, 7, 1000}) {
    std::vector<int> hits(static_cast<size_t>(n), 0);
    std::set<int> seen;
    std::mutex mu;
    parallel_for(n, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(seen.insert(thread_index()).second) << "two chunks on one thread";
      for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "n " << n << " i " << i;
    for (int t : seen) EXPECT_TRUE(t >= 0 && t < 2) << t;
  }
  EXPECT_EQ(thread_index(), 0);  // outside a parallel region
  set_num_threads(threads);
}

}  // namespace
}  // namespace clipkit
