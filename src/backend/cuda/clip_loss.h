// The CLIP contrastive loss on the device, forward and backward together, in double with the
// formula of backend::cpu::clip_loss (src/backend/cpu/clip_loss.h):
//   a = normalize(img) [B, P], b = normalize(txt) [B, P], L = exp(s) b a^T [B, B] (logits per text)
//   loss = (CE(L, arange) + CE(L^T, arange)) / 2, mean over B
// img / txt are the unnormalized projected embeddings; logit_scale points to s on the device (the
// trainable parameter). result (device, 2 doubles) gets {loss, dloss/ds}; dimg / dtxt [B, P] are
// overwritten (either may be null). Nothing synchronizes: read_clip_loss copies the result back.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

void clip_loss(const float* img, const float* txt, int64_t B, int64_t P, const float* logit_scale, float* dimg,
               float* dtxt, double* result, Context& ctx);

// Waits for the stream and returns {loss, dlogit_scale} from `result`.
backend::ClipLossResult read_clip_loss(const double* result, Context& ctx);

}  // namespace clipkit::cuda
