// Multi-head scaled-dot-product attention core (the part between the QKV and output projections).
//   qkv [B, L, 3C] (q | k | v, each C = H*D, head h at columns h*D..h*D+D-1)  ->  out [B, L, C]
//   out_h = softmax(q_h k_h^T / sqrt(D) + mask) v_h
// Masks: `causal` (query i sees keys <= i) and `key_mask` [B, L] (0 = padding key, ignored).
// Masked keys get exactly zero weight (as HF's finfo.min additive mask does in fp32).
#pragma once
#include <cstdint>

namespace clipkit::ops {

struct AttentionShape {
  int64_t B, L, H, D;
  int64_t C() const { return H * D; }
};

// probs (optional) [B, H, L, L]: the softmax weights, saved for the backward pass.
void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs = nullptr);

// From dout [B, L, C], qkv and the saved probs: dqkv [B, L, 3C] (overwritten).
void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s);

}  // namespace clipkit::ops
