// Multi-tensor AdamW and the gradient norm on the device, with the CPU backend's semantics
// (backend::Backend::adamw / grad_norm, src/backend/cpu/optimizer.cpp): torch.optim.AdamW with the
// clip coefficient folded into the update. Every tensor is cut into chunks of kChunk elements, and
// one launch updates them all (the chunk table goes to the Context's scratch arena).
//   adamw: the same IEEE float operations in the same order as the CPU's (no contraction,
//     correctly rounded division and square root): bit-identical weights and moments.
//   grad_norm: sqrt(sum g^2) in double, each chunk's partial sum in a fixed order and the partials
//     summed in chunk order: deterministic (the CPU's sum differs by rounding only).
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

constexpr int64_t kAdamWChunk = 1 << 16;

// One update of every slot (device tensors w, g, m, v, F32, as many elements each) at step s.
void adamw(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s, Context& ctx);
// The same with the clip coefficient min(1, max_norm / (total + 1e-6)) (1 when max_norm <= 0)
// computed on the device from *total_norm (grad_norm's output) in place of s.grad_scale: no round
// trip to the host.
void adamw_clipped(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s,
                   const double* total_norm, double max_norm, Context& ctx);
// *total (device) = sqrt(sum of every gradient squared)
void grad_norm(const std::vector<backend::Tensor>& grads, double* total, Context& ctx);

// The chunk table: (tensor index, first element, element count) per chunk, in order.
struct AdamWChunk {
  int32_t param = 0;
  int64_t begin = 0, count = 0;
};
std::vector<AdamWChunk> adamw_chunks(const std::vector<int64_t>& sizes, int64_t chunk);

}  // namespace clipkit::cuda
