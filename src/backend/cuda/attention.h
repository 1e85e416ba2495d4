// Multi-head attention core on the device, with the CPU backend's semantics and arguments
// (backend/cpu/attention.h):
//   qkv [B, L, 3C] (q | k | v, head h at columns h*D..h*D+D-1)  ->  out [B, L, C]
//   out_h = P_d v_h,  P = softmax(q_h k_h^T / sqrt(D) + mask),  P_d = P * keep / (1 - p)
// Masks: causal (query i sees keys <= i) and key_mask [B, L] (int32, 0 = padding): masked keys get
// exactly zero weight; a fully masked row gives zeros. Dropout on the probabilities uses the CPU's
// masks (element ((b*H + h)*L + i)*L + j of stream (seed, site)).
// The robust form, for any L (CLIP's 50..257 and RoBERTa's up to 514): q, k, v are copied into
// [B*H, L, D] per head, S = q k^T and the context are strided-batched cuBLASLt products, and one
// warp per row does the scale/mask/softmax (and its backward). probs [B, H, L, L] (fp32 P, before
// dropout) is saved for the backward pass when given; without it (inference) scratch holds S.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

// fp32: every product in fp32.
void attention_forward(const float* qkv, float* out, const backend::AttentionShape& s, bool causal,
                       const int32_t* key_mask, float* probs, const backend::Dropout& drop, Context& ctx);
// dqkv [B, L, 3C] (overwritten) from dout [B, L, C], qkv and the saved probs.
void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv,
                        const backend::AttentionShape& s, const backend::Dropout& drop, Context& ctx);

// bf16: the six products in bf16 with fp32 accumulation, softmax and its backward in fp32, as
// backend::cpu::attention_forward_bf16: qkv_b = bf16(qkv); out_b the bf16 context; probs (fp32 P) and
// probs_b (bf16 P_d, the operand of the context and of dV) saved when given (both or neither).
void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const backend::AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b,
                            const backend::Dropout& drop, Context& ctx);
void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const backend::AttentionShape& s, const backend::Dropout& drop,
                             Context& ctx);

}  // namespace clipkit::cuda
