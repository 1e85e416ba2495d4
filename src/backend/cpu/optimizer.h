// The optimizer's kernels: torch.optim.AdamW's update (with the gradient-clipping coefficient folded
// into the same pass) and the gradient norm clip_grad_norm_ computes, see backend.h.
#pragma once
#include <vector>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

void adamw(const std::vector<OptimizerSlot>& slots, const AdamWStep& s);
double grad_norm(const std::vector<Tensor>& grads);

}  // namespace clipkit::backend::cpu
