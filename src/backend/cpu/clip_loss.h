// The CLIP contrastive loss, forward and backward together (it is cheap: a B x B matrix), in float64.
//   a = normalize(img) [B, P], b = normalize(txt) [B, P]
//   logits_per_text = exp(s) * b a^T                                     [B, B]
//   loss = (CE(logits_per_text, arange) + CE(logits_per_text^T, arange)) / 2   (mean over B)
// Inputs are the unnormalized projected embeddings; gradients come back for them and for s.
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

// dimg/dtxt [B, P] are overwritten (may be null to skip).
ClipLossResult clip_loss(const float* img, const float* txt, int64_t B, int64_t P, float logit_scale, float* dimg,
                         float* dtxt);

}  // namespace clipkit::backend::cpu
