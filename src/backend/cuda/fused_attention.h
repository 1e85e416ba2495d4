// Fused multi-head attention for inference (flash-style): one kernel, no probabilities in memory.
//   qkv_b [B, L, 3C] bf16 (q | k | v, head h at columns h*D..h*D+D-1)  ->  out_b [B, L, C] bf16
// One CTA of 4 warps per (batch, head, tile of 64 queries); K and V stream through shared memory in
// tiles of 64 keys; S = q k^T and the context are bf16 WMMA products with fp32 accumulation; the
// softmax is online in fp32 (running max and sum per query, the context rescaled per key tile).
// Masks as attention_forward's: causal (query i sees keys <= i) and key_mask [B, L] (int32, 0 =
// padding key): masked keys get exactly zero weight and a fully masked row gives zeros. No dropout
// (inference only); training keeps the batched-GEMM path of attention.h, whose saved probabilities
// the backward reads.
// Differences from attention_forward_bf16 (bf16 tolerance): the unnormalized weights exp(s - m)
// are rounded to bf16 (not the normalized P) and the context is divided by their sum at the end.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

// Whether fused_attention_forward takes this problem: head size D a multiple of 16 up to 128
// (CLIP and RoBERTa: 64; ViT-H: 80), any L >= 1 and B, qkv and out 16-byte aligned. Host-only.
bool fused_attention_fits(const backend::AttentionShape& s, const void* qkv_b, const void* out_b);
// Dynamic shared memory per CTA for head size D (0 when D is not taken).
size_t fused_attention_smem_bytes(int64_t D);

// Throws clipkit::Error when the problem does not fit (check fused_attention_fits first).
void fused_attention_forward(const uint16_t* qkv_b, uint16_t* out_b, const backend::AttentionShape& s, bool causal,
                             const int32_t* key_mask, Context& ctx);

}  // namespace clipkit::cuda
