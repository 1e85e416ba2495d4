#include "model/blocks.h"

#include <cstring>

#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/layernorm.h"

namespace clipkit::model {

void LayerNorm::load(const WeightReader& w, int64_t C, float e) {
  weight = w.get("weight", {C});
  bias = w.get("bias", {C});
  eps = e;
}

void LayerNorm::forward(const float* x, float* y, int64_t M) const {
  ops::layernorm_forward(x, weight.data(), bias.data(), y, M, C(), eps);
}

void SelfAttention::load(const WeightReader& w, const char* const names[4], int64_t C, int64_t h, ops::Precision p) {
  heads = h;
  head_dim = C / h;
  std::vector<float> W(static_cast<size_t>(3 * C * C)), b(static_cast<size_t>(3 * C));
  for (int i = 0; i < 3; ++i) {
    auto wi = w.get(std::string(names[i]) + "weight", {C, C});
    auto bi = w.get(std::string(names[i]) + "bias", {C});
    std::memcpy(W.data() + i * C * C, wi.data(), sizeof(float) * C * C);
    std::memcpy(b.data() + i * C, bi.data(), sizeof(float) * C);
  }
  qkv.init(W.data(), b.data(), 3 * C, C, p);
  auto wo = w.get(std::string(names[3]) + "weight", {C, C});
  auto bo = w.get(std::string(names[3]) + "bias", {C});
  out.init(wo.data(), bo.data(), C, C, p);
}

void SelfAttention::forward(const float* x, float* y, int64_t B, int64_t L, bool causal, const int32_t* key_mask) const {
  const int64_t C = heads * head_dim, M = B * L;
  std::vector<float> qkv_buf(static_cast<size_t>(M * 3 * C)), ctx(static_cast<size_t>(M * C));
  qkv.forward(x, M, qkv_buf.data());
  ops::attention_forward(qkv_buf.data(), ctx.data(), {B, L, heads, head_dim}, causal, key_mask);
  out.forward(ctx.data(), M, y);
}

void Mlp::load(const WeightReader& w, const char* f1, const char* f2, int64_t C, int64_t I, ops::Act a, ops::Precision p) {
  act = a;
  auto w1 = w.get(std::string(f1) + "weight", {I, C});
  auto b1 = w.get(std::string(f1) + "bias", {I});
  auto w2 = w.get(std::string(f2) + "weight", {C, I});
  auto b2 = w.get(std::string(f2) + "bias", {C});
  fc1.init(w1.data(), b1.data(), I, C, p);
  fc2.init(w2.data(), b2.data(), C, I, p);
}

void Mlp::forward(const float* x, float* y, int64_t M) const {
  const int64_t I = fc1.out_features();
  std::vector<float> h(static_cast<size_t>(M * I));
  fc1.forward(x, M, h.data());
  ops::act_forward(h.data(), h.data(), M * I, act);
  fc2.forward(h.data(), M, y);
}

static void add_inplace(float* x, const float* y, int64_t n) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] += y[i];
  }, 1 << 14);
}

void EncoderLayer::forward(float* x, int64_t B, int64_t L, bool causal, const int32_t* key_mask) const {
  const int64_t M = B * L, C = ln1.C();
  std::vector<float> t(static_cast<size_t>(M * C)), u(static_cast<size_t>(M * C));
  if (pre_ln) {
    ln1.forward(x, t.data(), M);
    attn.forward(t.data(), u.data(), B, L, causal, key_mask);
    add_inplace(x, u.data(), M * C);
    ln2.forward(x, t.data(), M);
    mlp.forward(t.data(), u.data(), M);
    add_inplace(x, u.data(), M * C);
  } else {
    attn.forward(x, u.data(), B, L, causal, key_mask);
    add_inplace(x, u.data(), M * C);
    ln1.forward(x, x, M);
    mlp.forward(x, u.data(), M);
    add_inplace(x, u.data(), M * C);
    ln2.forward(x, x, M);
  }
}

int64_t param_count(const ops::Linear& l) {
  return l.in_features() * l.out_features() + (l.bias() ? l.out_features() : 0);
}
int64_t param_count(const LayerNorm& l) { return 2 * l.C(); }
int64_t param_count(const EncoderLayer& l) {
  return param_count(l.ln1) + param_count(l.ln2) + param_count(l.attn.qkv) + param_count(l.attn.out) +
         param_count(l.mlp.fc1) + param_count(l.mlp.fc2);
}

}  // namespace clipkit::model
