// The inference attention core on AVX-512 in one pass per (batch, head): the head's K^T packed
// once, then for four query rows at a time S = Q K^T, the masked softmax and O = P V, with the
// scores in L1: no [B, H, L, L] tensor in memory, no library call per 50 x 50 product (ViT-B/32),
// and q, k, v read in place from qkv. Same arithmetic as attention.cpp's oneDNN path: S * 1/sqrt(D),
// masked keys at exactly zero weight, exp_approx, P = e / sum, fp32 throughout; only the order of
// the sums differs.
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

// This CPU runs AVX-512F, the head width D is a multiple of 16 (CLIP's 64), and
// CLIPKIT_CPU_ATTENTION is not "onednn" (which keeps attention.cpp's path, for comparisons; another
// value is ignored here, and the CLI warns about it: note_precision in tools/clipkit/flags.cpp).
bool attention_fused_supported(const AttentionShape& s);

// qkv [B, L, 3C] -> out [B, L, C], as attention_forward without probs (inference).
void attention_forward_fused(const float* qkv, float* out, const AttentionShape& s, bool causal,
                             const int32_t* key_mask);

}  // namespace clipkit::backend::cpu
