#include "model/blocks.h"

#include <cstring>

#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/layernorm.h"
#include "ops/workspace.h"

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

namespace {
// Workspace slots (ops::Workspace::local()): each buffer is reused across layers and calls.
enum Slot { kNormed = 0, kQkv, kCtx, kHidden };
}  // namespace

void SelfAttention::forward(const float* x, float* y, int64_t B, int64_t L, bool causal, const int32_t* key_mask,
                            bool accumulate) const {
  const int64_t C = heads * head_dim, M = B * L;
  auto& ws = ops::Workspace::local();
  float* qkv_buf = ws.get(kQkv, static_cast<size_t>(M * 3 * C));
  float* ctx = ws.get(kCtx, static_cast<size_t>(M * C));
  qkv.forward(x, M, qkv_buf);
  ops::attention_forward(qkv_buf, ctx, {B, L, heads, head_dim}, causal, key_mask);
  ops::Epilogue e;
  e.accumulate = accumulate;
  out.forward(ctx, M, y, e);
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

void Mlp::forward(const float* x, float* y, int64_t M, bool accumulate) const {
  const int64_t I = fc1.out_features();
  float* h = ops::Workspace::local().get(kHidden, static_cast<size_t>(M * I));
  ops::Epilogue e1;
  e1.activate = true;
  e1.act = act;
  fc1.forward(x, M, h, e1);  // bias + activation fused into the matmul
  ops::Epilogue e2;
  e2.accumulate = accumulate;
  fc2.forward(h, M, y, e2);
}

void EncoderLayer::forward(float* x, int64_t B, int64_t L, bool causal, const int32_t* key_mask) const {
  const int64_t M = B * L, C = ln1.C();
  if (pre_ln) {
    float* t = ops::Workspace::local().get(kNormed, static_cast<size_t>(M * C));
    ln1.forward(x, t, M);
    attn.forward(t, x, B, L, causal, key_mask, /*accumulate=*/true);  // x += attn(ln1(x))
    ln2.forward(x, t, M);
    mlp.forward(t, x, M, /*accumulate=*/true);  // x += mlp(ln2(x))
  } else {
    attn.forward(x, x, B, L, causal, key_mask, /*accumulate=*/true);  // x is consumed by the QKV matmul first
    ln1.forward(x, x, M);
    mlp.forward(x, x, M, /*accumulate=*/true);
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
