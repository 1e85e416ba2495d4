#include "core/flop_count.h"

#include <atomic>

namespace clipkit {
namespace {
std::atomic<int64_t> g_flops{0};
}  // namespace

void count_flops(int64_t flops) { g_flops.fetch_add(flops, std::memory_order_relaxed); }
int64_t flops_counted() { return g_flops.load(std::memory_order_relaxed); }
void reset_flop_count() { g_flops.store(0, std::memory_order_relaxed); }

}  // namespace clipkit
