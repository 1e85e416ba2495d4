// Shared transformer blocks. Every tower is a short builder over these.
// Activations are row-major fp32 [B*L, C]; matmuls run in the model's precision.
#pragma once
#include <cstdint>
#include <vector>

#include "model/weights.h"
#include "ops/activation.h"
#include "ops/linear.h"

namespace clipkit::model {

struct LayerNorm {
  std::vector<float> weight, bias;
  float eps = 1e-5f;
  void load(const WeightReader& w, int64_t C, float eps);
  void forward(const float* x, float* y, int64_t M) const;  // may alias
  int64_t C() const { return static_cast<int64_t>(weight.size()); }
};

// Self-attention with fused QKV: q/k/v projections are concatenated at load into one [3C, C] matmul.
struct SelfAttention {
  ops::Linear qkv, out;
  int64_t heads = 0, head_dim = 0;
  // names: {q, k, v, out} weight prefixes, e.g. {"q_proj.", "k_proj.", "v_proj.", "out_proj."}
  void load(const WeightReader& w, const char* const names[4], int64_t C, int64_t heads, ops::Precision p);
  // x [B*L, C] -> y [B*L, C] (y += ... when accumulate; y may alias x then)
  void forward(const float* x, float* y, int64_t B, int64_t L, bool causal, const int32_t* key_mask,
               bool accumulate = false) const;
};

struct Mlp {
  ops::Linear fc1, fc2;
  ops::Act act = ops::Act::QuickGelu;
  void load(const WeightReader& w, const char* fc1_name, const char* fc2_name, int64_t C, int64_t I, ops::Act a,
            ops::Precision p);
  void forward(const float* x, float* y, int64_t M, bool accumulate = false) const;  // x [M, C] -> y [M, C]
};

// A transformer encoder layer.
//   pre-LN (CLIP):     x = x + attn(ln1(x));  x = x + mlp(ln2(x))
//   post-LN (RoBERTa): x = ln1(x + attn(x));  x = ln2(x + mlp(x))
struct EncoderLayer {
  bool pre_ln = true;
  LayerNorm ln1, ln2;
  SelfAttention attn;
  Mlp mlp;
  void forward(float* x, int64_t B, int64_t L, bool causal, const int32_t* key_mask) const;  // in place
};

// The parameter count of a set of blocks, for `clipkit info`.
int64_t param_count(const ops::Linear& l);
int64_t param_count(const LayerNorm& l);
int64_t param_count(const EncoderLayer& l);

}  // namespace clipkit::model
