// Training-mode transformer blocks: forward passes that save what the backward pass needs, and
// the backward passes beside them, over fp32 master weights registered by their HF names.
// Matmuls (projections and attention) run in fp32 or bf16; layer norms, softmax, activations and
// all accumulation stay fp32. The bf16 path converts each matmul operand to bf16 once per step and
// keeps the copies the backward pass reuses (LayerCache's *_b buffers, TLinear::wb).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/weights.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/precision.h"

namespace clipkit::train {

// A gradient buffer that its owner writes in full in one backward call (the dense layers):
// zero_grad marks a Written buffer Stale instead of clearing it, and the next backward overwrites
// it (no clearing pass, no read of the old values); TrainableClip::settle_grads clears what no
// backward reached. A second backward in the same step (state Written) accumulates.
enum class GradState : uint8_t { Zero, Written, Stale };

// One trainable tensor (or a slice of one, for the fused QKV weights): its HF state-dict key,
// shape, master weights and gradient. `depth` orders tensors bottom-up for "freeze the first K
// layers": -1 embeddings, 0..L-1 encoder layers, L and above the tower's top. `state` is set for
// gradients with a deferred zero_grad (shared by the slices of one buffer), null for the others.
struct TensorEntry {
  std::string name;
  Shape shape;
  float* w = nullptr;
  float* g = nullptr;
  int64_t n = 0;
  int depth = 0;
  GradState* state = nullptr;
};
using Registry = std::vector<TensorEntry>;

// Per-step training settings shared by every block.
struct StepContext {
  ops::Precision precision = ops::Precision::F32;
  float hidden_dropout = 0;     // RoBERTa hidden_dropout_prob (0 = off)
  float attention_dropout = 0;  // the tower's attention_probs_dropout_prob / attention_dropout (0 = off)
  uint64_t seed = 0;          // dropout masks are a hash of (seed, site, element): thread-independent
  bool training = true;       // false: no dropout, nothing saved beyond what forward needs
};

// A bf16 copy of a matmul operand, kept from the forward pass for the backward pass.
using Bf16Buf = std::vector<uint16_t>;

// y = x W^T + b over fp32 masters W [N, K], b [N] (optional).
// bf16 precision with an `xb` buffer takes the bf16 path: the forward converts W once into `wb`
// (reused by the backward for dx) and x into *xb (reused for dW); a null x means the producer
// already wrote bf16(x) into *xb. Without xb, bf16 converts both operands on every matmul.
struct TLinear {
  int64_t N = 0, K = 0;
  std::vector<float> w, b, gw, gb;
  GradState grad_state = GradState::Zero;  // of gw and gb together
  mutable Bf16Buf wb;
  void init(std::vector<float> W, std::vector<float> B, int64_t N, int64_t K);
  void forward(const float* x, int64_t M, float* y, const StepContext& c, Bf16Buf* xb = nullptr) const;
  // bf16 precision only: y written as bf16 into *yb (for an output that only feeds bf16 matmuls).
  void forward_bf16_out(const float* x, int64_t M, Bf16Buf* yb, const StepContext& c, Bf16Buf* xb) const;
  // dx overwritten (or accumulated); weight gradients skipped when !grads. xb as passed to forward.
  void backward(const float* x, const float* dy, int64_t M, float* dx, bool acc_dx, bool grads, const StepContext& c,
                const Bf16Buf* xb = nullptr);
  void reg(Registry& r, const std::string& wname, const std::string& bname, int depth);

 private:
  void to_bf16_operands(const float* x, int64_t M, Bf16Buf* xb) const;
};

struct TLayerNorm {
  std::vector<float> w, b, gw, gb;
  float eps = 1e-5f;
  int64_t C() const { return static_cast<int64_t>(w.size()); }
  void load(const model::WeightReader& r, int64_t C, float eps);
  void forward(const float* x, float* y, int64_t M, float* mean, float* rstd) const;
  // dx overwritten (or added to when acc); gamma/beta gradients only when grads.
  void backward(const float* dy, const float* x, const float* mean, const float* rstd, int64_t M, float* dx, bool acc,
                bool grads);
  void reg(Registry& r, const std::string& prefix, int depth);
};

// Inverted dropout: x *= keep / (1 - p), mask from a counter hash of (seed, site, index)
// (ops/dropout_mask.h). Layer sites: site * 4 + 0 / 1 hidden dropout after the attention / MLP,
// site * 4 + 2 the attention probabilities.
void dropout_apply(float* x, int64_t n, float p, uint64_t seed, uint64_t site);

// The rows of the padded [M = B*L, C] activations that a layer computes. Attention always runs in
// the padded layout; every other op (layer norms, projections, MLP, dropout, residuals) runs on these
// rows only. `in`: the padded row of each of the layer's input rows (null: all M, in order); `out`:
// which input rows the output keeps after attention (indices into the input rows; null: all).
// Text towers drop padding (`in` = the real tokens: padding never reaches a pooled row, so this is
// exact); a tower's last layer keeps only its pooled rows (`out`: CLS, EOS or <s> of each sequence).
struct LayerRows {
  const int64_t* in = nullptr;
  int64_t n_in = 0;
  const int64_t* out = nullptr;
  int64_t n_out = 0;
  int64_t rows_in(int64_t M) const { return in ? n_in : M; }
  int64_t rows_out(int64_t M) const { return out ? n_out : rows_in(M); }
  int64_t local(int64_t i) const { return out ? out[i] : i; }  // output row -> input row
  int64_t padded(int64_t i) const { return in ? in[local(i)] : local(i); }  // output row -> padded row
  // dst [R_in, W] = the input rows of src [M, W]
  template <typename T>
  void gather_in(const T* src, int64_t M, int64_t W, T* dst) const {
    if (!in) return static_cast<void>(std::memcpy(dst, src, sizeof(T) * M * W));
    for (int64_t l = 0; l < n_in; ++l) std::memcpy(dst + l * W, src + in[l] * W, sizeof(T) * W);
  }
  // dst [M, W] = src [R_in, W] on the input rows, 0 on the others
  template <typename T>
  void scatter_in(const T* src, int64_t M, int64_t W, T* dst) const {
    if (!in) return static_cast<void>(std::memcpy(dst, src, sizeof(T) * M * W));
    std::memset(dst, 0, sizeof(T) * M * W);
    for (int64_t l = 0; l < n_in; ++l) std::memcpy(dst + in[l] * W, src + l * W, sizeof(T) * W);
  }
};

// What one encoder layer keeps for its backward pass.
struct LayerCache {
  std::vector<float> a_in, qkv, probs, ctx, r1, ln1_mean, ln1_rstd, m_in, h_pre, h_act, r2, ln2_mean, ln2_rstd;
  // bf16 precision: the matmul inputs in bf16 (qkv, ctx and h_act are then only kept in bf16)
  Bf16Buf x_b, a_in_b, qkv_b, probs_b, ctx_b, m_in_b, h_act_b;
  // a layer computing only some rows (LayerRows): their attention contexts (the output projection's input)
  std::vector<float> ctx_rows;
  Bf16Buf ctx_rows_b;
};

// A transformer encoder layer (see model/blocks.h): pre-LN (CLIP) or post-LN (RoBERTa).
struct TEncoderLayer {
  bool pre_ln = true;
  int64_t heads = 0, C = 0, I = 0;
  ops::Act act = ops::Act::QuickGelu;
  TLayerNorm ln1, ln2;
  TLinear qkv, out, fc1, fc2;
  uint64_t site = 0;  // dropout site id (unique per layer)

  // names: {q, k, v, out} prefixes, {fc1, fc2} prefixes, {ln1, ln2} prefixes (relative to `w`)
  void load(const model::WeightReader& w, const char* const attn[4], const char* const mlp[2], const char* const lns[2],
            int64_t C, int64_t heads, int64_t I, ops::Act a, float eps, bool pre_ln);
  void reg(Registry& r, const std::string& prefix, const char* const attn[4], const char* const mlp[2],
           const char* const lns[2], int depth);
  // x [R_in, C] -> y [R_out, C] over the rows of `rows` (all B*L by default); everything the
  // backward needs goes into `c`. Dropout uses the masks of the full padded tensor, so the rows
  // computed equal the same rows of the full layer's result.
  void forward(const float* x, float* y, int64_t B, int64_t L, bool causal, const int32_t* mask, LayerCache& c,
               const StepContext& sc, uint64_t step_seed, const LayerRows& rows = {}) const;
  // dy [R_out, C] -> dx [R_in, C] (overwritten; may be null when nothing below needs it). x is the
  // layer input.
  void backward(const float* x, const float* dy, float* dx, int64_t B, int64_t L, LayerCache& c, bool grads,
                const StepContext& sc, uint64_t step_seed, const LayerRows& rows = {});

 private:
  ops::AttentionDropout attention_dropout(const StepContext& sc, uint64_t step_seed) const;
  void project_qkv(const float* x, int64_t M, const LayerRows& rows, LayerCache& c, const StepContext& sc,
                   Bf16Buf* xb) const;
  void attention(LayerCache& c, const ops::AttentionShape& as, bool causal, const int32_t* mask,
                 const StepContext& sc, const ops::AttentionDropout& drop, const LayerRows& rows) const;
  float* attention_backward(LayerCache& c, const float* dr1, const ops::AttentionShape& as, bool grads,
                            const StepContext& sc, const ops::AttentionDropout& drop, const LayerRows& rows);
  void mlp_out(LayerCache& c, int64_t M, float* y, const StepContext& sc) const;
  void mlp_out_backward(LayerCache& c, const float* dy, int64_t M, float* dh, bool grads, const StepContext& sc);
};

}  // namespace clipkit::train
