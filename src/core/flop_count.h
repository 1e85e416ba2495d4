// A process-wide count of the matmul FLOPs the ops performed (2·M·N·K per product, the attention
// products included), for benchmarks that report the work actually done next to a model's nominal
// FLOPs: training skips padded tokens and unused rows, so the two differ. The op profiler
// (core/profile.h) attributes the count to its scopes.
#pragma once
#include <cstdint>

namespace clipkit {

void count_flops(int64_t flops);
int64_t flops_counted();
void reset_flop_count();

}  // namespace clipkit
