// Multi-head scaled-dot-product attention core (the part between the QKV and output projections).
//   qkv [B, L, 3C] (q | k | v, each C = H*D, head h at columns h*D..h*D+D-1)  ->  out [B, L, C]
//   out_h = softmax(q_h k_h^T / sqrt(D) + mask) v_h
// Masks: `causal` (query i sees keys <= i) and `key_mask` [B, L] (0 = padding key, ignored).
// Masked keys get exactly zero weight (as HF's finfo.min additive mask does in fp32).
// Training-mode dropout on the probabilities (HF's attention_probs_dropout_prob / attention_dropout):
// the context is P_d V with P_d = P * keep / (1 - p); probability [b, h, i, j] is element
// ((b*H + h)*L + i)*L + j of the mask stream (drop.seed, drop.site), so the backward pass and a
// recomputed forward regenerate the same mask. p = 0: off.
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

// probs (optional) [B, H, L, L]: the softmax weights P (before dropout), saved for the backward
// pass. Dropout needs probs (training only).
void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs = nullptr, const Dropout& drop = {});

// From dout [B, L, C], qkv and the saved probs: dqkv [B, L, 3C] (overwritten). `drop` as in forward.
void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s,
                        const Dropout& drop = {});

// The bf16 training path: the six attention matmuls in bf16 with fp32 accumulation (oneDNN batched
// matmuls), softmax and its backward in fp32. qkv_b is bf16(qkv); the context comes out as bf16
// (it only feeds the output projection); probs (fp32 P, before dropout) and probs_b (bf16 P_d, the
// matmul operand of the context and of dV) [B, H, L, L] are saved for the backward pass, which
// overwrites dqkv [B, L, 3C].
void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b,
                            const Dropout& drop = {});
void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const AttentionShape& s, const Dropout& drop = {});

}  // namespace clipkit::backend::cpu
