// The CPU kernels' scratch buffers: each slot grows to the largest size asked and is kept, so
// steady-state passes allocate nothing (and don't page-fault fresh memory). One workspace per
// thread (thread_local), so concurrent callers never share buffers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace clipkit::backend::cpu {

// Every user of the workspace, one slot each.
enum WorkspaceSlot : int {
  kLinearInputBf16,   // packed_linear: bf16(x) per call
  kLinearInputInt8, kLinearRowScales, kLinearRowZeros, kLinearAccInt8,  // packed_linear int8: x quantized, its scales and zero points, x Wq^T
  kAttentionScores,   // attention: [B, H, L, L] scores of the inference kernel
  kGemmA, kGemmB,     // gemm and cpu_backend's training forward (A: x): operands rounded to bf16 (round_operand)
  kDyBf16, kDyWide,   // plain_linear: bf16(dy), as bits or (products run widened) rounded fp32 values
  kColumnPartials,    // plain_linear: bias-gradient partial sums
  kDoutBf16, kDprobs, kDscoresBf16,  // attention backward: bf16(dO), dP (fp32 and bf16), bf16 dS
  kDscores, kProbsDropped,           // attention fp32 training: dS, and P_d when dropout is on
  kLinearProduct,     // cpu_backend: a product added into its destination afterwards
  kNormDx, kNormDgamma, kNormDbeta,  // cpu_backend: layer-norm gradients nobody asked for
  kMatmulSrcF32, kMatmulWeightsF32, kMatmulDstF32,  // matmul_bf16, packed_linear: bf16 operands widened (no bf16 kernels)
  kAttnQkvF32, kAttnScoresF32, kAttnCtxF32,  // attention bf16 without bf16 kernels: qkv, P_d or dS, O or dO widened
  kAttnFused,         // attention_fused: one head's q, k, v rows and K^T packed, a tile's scores
  kSlotCount
};

class Workspace {
 public:
  // An uninitialized buffer of at least n floats / n bf16 values (valid until the slot is asked again).
  float* get(int slot, size_t n);
  uint16_t* get_bf16(int slot, int64_t n) {
    return reinterpret_cast<uint16_t*>(get(slot, static_cast<size_t>(n + 1) / 2));
  }
  int8_t* get_s8(int slot, int64_t n) { return reinterpret_cast<int8_t*>(get(slot, static_cast<size_t>(n + 3) / 4)); }
  static Workspace& local();

 private:
  struct Buf {
    std::unique_ptr<float[]> p;
    size_t n = 0;
  };
  std::vector<Buf> bufs_;
};

}  // namespace clipkit::backend::cpu
