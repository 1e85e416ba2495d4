#include "train/trainable_blocks.h"

#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "ops/attention.h"
#include "ops/dense.h"
#include "ops/dropout_mask.h"
#include "ops/layernorm.h"
#include "ops/pooling.h"
#include "ops/linear.h"

namespace clipkit::train {
namespace {

template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// Backward scratch, reused by every layer and step.
struct Scratch {
  std::vector<float> d1, d2, dqkv, dh, dctx, ln_tmp, ln_dg, ln_db;
};
Scratch& scratch() {
  static Scratch s;
  return s;
}

void add_into(float* dst, const float* src, int64_t n) {
  ProfileScope prof("add_into");
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  }, 1 << 14);
}

// Row maps for a layer that computes only its pooled rows (`keep`: row pos[b] of each of the B
// sequences of length L, as in ops/pooling.h); a null `keep` means every row.
int64_t kept_row(const PooledRows& k, int64_t b, int64_t L) { return b * L + (k.pos ? k.pos[b] : 0); }

// dst [B, C] = the kept rows of src [B*L, C] (bf16: the attention contexts for the output projection)
void gather_kept_bf16(const uint16_t* src, const PooledRows& k, int64_t B, int64_t L, int64_t C, uint16_t* dst) {
  for (int64_t b = 0; b < B; ++b) std::memcpy(dst + b * C, src + kept_row(k, b, L) * C, sizeof(uint16_t) * C);
}
// dst [B*L, C] = 0 except the kept rows = src [B, C]
void scatter_kept(const float* src, const PooledRows& k, int64_t B, int64_t L, int64_t C, float* dst) {
  std::memset(dst, 0, sizeof(float) * B * L * C);
  ops::pool_rows_backward(src, k.pos, B, L, C, dst);
}
// the residual: dst += x, row for row (dst [R, C] holds the kept rows of x [B*L, C] when keep is set)
void add_residual(float* dst, const float* x, const PooledRows* keep, int64_t B, int64_t L, int64_t C) {
  if (!keep) return add_into(dst, x, B * L * C);
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x + kept_row(*keep, b, L) * C;
    for (int64_t c = 0; c < C; ++c) dst[b * C + c] += xr[c];
  }
}
// its gradient: dx [B*L, C] += d, row for row
void add_residual_grad(float* dx, const float* d, const PooledRows* keep, int64_t B, int64_t L, int64_t C) {
  if (!keep) return add_into(dx, d, B * L * C);
  ops::pool_rows_backward(d, keep->pos, B, L, C, dx);
}
// dropout over the computed rows with the masks the full [B*L, C] tensor would have used
void dropout_rows(float* x, const PooledRows* keep, int64_t B, int64_t L, int64_t C, float p, uint64_t seed,
                  uint64_t site) {
  if (!keep) return dropout_apply(x, B * L * C, p, seed, site);
  if (p <= 0) return;
  const ops::DropoutMask mask(p, seed, site);
  for (int64_t b = 0; b < B; ++b)
    mask.apply(static_cast<uint64_t>(kept_row(*keep, b, L) * C), C, x + b * C, x + b * C);
}

}  // namespace

void TLinear::init(std::vector<float> W, std::vector<float> B, int64_t n, int64_t k) {
  N = n;
  K = k;
  w = std::move(W);
  b = std::move(B);
  gw.assign(w.size(), 0.0f);
  gb.assign(b.size(), 0.0f);
  grad_state = GradState::Zero;
}

void TLinear::forward(const float* x, int64_t M, float* y, const StepContext& c, Bf16Buf* xb) const {
  const float* bias = b.empty() ? nullptr : b.data();
  if (c.precision != ops::Precision::BF16 || !xb) return ops::dense_forward(x, w.data(), bias, M, N, K, y, c.precision);
  grow(wb, N * K);
  ops::to_bf16(w.data(), wb.data(), N * K);
  if (x) {
    grow(*xb, M * K);
    ops::to_bf16(x, xb->data(), M * K);
  }
  ops::dense_forward_bf16(xb->data(), wb.data(), bias, M, N, K, y);
}

void TLinear::forward_bf16_out(const float* x, int64_t M, Bf16Buf* yb, const StepContext& c, Bf16Buf* xb) const {
  CLIPKIT_ASSERT(c.precision == ops::Precision::BF16 && xb && yb);
  grow(wb, N * K);
  ops::to_bf16(w.data(), wb.data(), N * K);
  if (x) {
    grow(*xb, M * K);
    ops::to_bf16(x, xb->data(), M * K);
  }
  grow(*yb, M * N);
  ops::dense_forward_bf16_out(xb->data(), wb.data(), b.empty() ? nullptr : b.data(), M, N, K, yb->data());
}

void TLinear::backward(const float* x, const float* dy, int64_t M, float* dx, bool acc_dx, bool grads,
                       const StepContext& c, const Bf16Buf* xb) {
  float* dW = grads ? gw.data() : nullptr;
  float* db = grads && !b.empty() ? gb.data() : nullptr;
  const bool acc = grad_state == GradState::Written;  // else the first write of the step overwrites
  if (grads) grad_state = GradState::Written;
  if (c.precision != ops::Precision::BF16 || !xb)
    return ops::dense_backward(x, w.data(), dy, M, N, K, dx, dW, db, c.precision, acc_dx, acc);
  ops::dense_backward_bf16(xb->data(), wb.data(), dy, M, N, K, dx, dW, db, acc_dx, acc);
}

void TLinear::reg(Registry& r, const std::string& wname, const std::string& bname, int depth) {
  r.push_back({wname, {N, K}, w.data(), gw.data(), N * K, depth, &grad_state});
  if (!b.empty()) r.push_back({bname, {N}, b.data(), gb.data(), N, depth, &grad_state});
}

void TLayerNorm::load(const model::WeightReader& r, int64_t C, float e) {
  w = r.get("weight", {C});
  b = r.get("bias", {C});
  gw.assign(w.size(), 0.0f);
  gb.assign(b.size(), 0.0f);
  eps = e;
}

void TLayerNorm::forward(const float* x, float* y, int64_t M, float* mean, float* rstd) const {
  ops::layernorm_forward(x, w.data(), b.data(), y, M, C(), eps, mean, rstd);
}

void TLayerNorm::backward(const float* dy, const float* x, const float* mean, const float* rstd, int64_t M, float* dx,
                          bool acc, bool grads) {
  auto& s = scratch();
  float* out = dx;
  if (acc) {
    grow(s.ln_tmp, M * C());
    out = s.ln_tmp.data();
  }
  float* pg = gw.data();
  float* pb = gb.data();
  if (!grads) {  // layernorm_backward always accumulates gamma/beta gradients: give it a throwaway
    s.ln_dg.assign(w.size(), 0.0f);
    s.ln_db.assign(w.size(), 0.0f);
    pg = s.ln_dg.data();
    pb = s.ln_db.data();
  }
  ops::layernorm_backward(dy, x, w.data(), mean, rstd, out, pg, pb, M, C());
  if (acc) add_into(dx, out, M * C());
}

void TLayerNorm::reg(Registry& r, const std::string& prefix, int depth) {
  r.push_back({prefix + "weight", {C()}, w.data(), gw.data(), C(), depth});
  r.push_back({prefix + "bias", {C()}, b.data(), gb.data(), C(), depth});
}

void dropout_apply(float* x, int64_t n, float p, uint64_t seed, uint64_t site) {
  if (p <= 0) return;
  ProfileScope prof("dropout");
  const ops::DropoutMask mask(p, seed, site);
  parallel_for(n, [&](int64_t b, int64_t e) { mask.apply(static_cast<uint64_t>(b), e - b, x + b, x + b); }, 1 << 14);
}

void TEncoderLayer::load(const model::WeightReader& w, const char* const attn[4], const char* const mlp[2],
                         const char* const lns[2], int64_t c, int64_t h, int64_t i, ops::Act a, float eps, bool pre) {
  pre_ln = pre;
  C = c;
  heads = h;
  I = i;
  act = a;
  std::vector<float> W(static_cast<size_t>(3 * C * C)), B(static_cast<size_t>(3 * C));
  for (int k = 0; k < 3; ++k) {
    auto wk = w.get(std::string(attn[k]) + "weight", {C, C});
    auto bk = w.get(std::string(attn[k]) + "bias", {C});
    std::memcpy(W.data() + k * C * C, wk.data(), sizeof(float) * C * C);
    std::memcpy(B.data() + k * C, bk.data(), sizeof(float) * C);
  }
  qkv.init(std::move(W), std::move(B), 3 * C, C);
  out.init(w.get(std::string(attn[3]) + "weight", {C, C}), w.get(std::string(attn[3]) + "bias", {C}), C, C);
  fc1.init(w.get(std::string(mlp[0]) + "weight", {I, C}), w.get(std::string(mlp[0]) + "bias", {I}), I, C);
  fc2.init(w.get(std::string(mlp[1]) + "weight", {C, I}), w.get(std::string(mlp[1]) + "bias", {C}), C, I);
  ln1.load(w.sub(lns[0]), C, eps);
  ln2.load(w.sub(lns[1]), C, eps);
}

void TEncoderLayer::reg(Registry& r, const std::string& p, const char* const attn[4], const char* const mlp[2],
                        const char* const lns[2], int depth) {
  for (int k = 0; k < 3; ++k) {  // q, k, v are row blocks of the fused [3C, C] weight
    r.push_back({p + attn[k] + "weight", {C, C}, qkv.w.data() + k * C * C, qkv.gw.data() + k * C * C, C * C, depth,
                 &qkv.grad_state});
    r.push_back({p + attn[k] + "bias", {C}, qkv.b.data() + k * C, qkv.gb.data() + k * C, C, depth, &qkv.grad_state});
  }
  out.reg(r, p + attn[3] + "weight", p + attn[3] + "bias", depth);
  fc1.reg(r, p + mlp[0] + "weight", p + mlp[0] + "bias", depth);
  fc2.reg(r, p + mlp[1] + "weight", p + mlp[1] + "bias", depth);
  ln1.reg(r, p + lns[0], depth);
  ln2.reg(r, p + lns[1], depth);
}

// HF's dropout on the attention probabilities (training only); the same mask in forward,
// backward and a checkpointed recompute.
ops::AttentionDropout TEncoderLayer::attention_dropout(const StepContext& sc, uint64_t step_seed) const {
  return {sc.training ? sc.attention_dropout : 0.0f, step_seed, site * 4 + 2};
}

// c.qkv (fp32), or c.qkv_b directly in bf16: attention reads nothing else
void TEncoderLayer::project_qkv(const float* x, int64_t M, LayerCache& c, const StepContext& sc, Bf16Buf* xb) const {
  if (sc.precision == ops::Precision::BF16) qkv.forward_bf16_out(x, M, &c.qkv_b, sc, xb);
  else qkv.forward(x, M, c.qkv.data(), sc);
}

// r1 = out(attention(c.qkv)) (before the residual), for the kept rows only when `keep` is set
// (every query is attended; only the kept rows' contexts go through the output projection).
void TEncoderLayer::attention(LayerCache& c, const ops::AttentionShape& as, bool causal, const int32_t* mask,
                              const StepContext& sc, const ops::AttentionDropout& drop, const PooledRows* keep) const {
  const int64_t M = as.B * as.L, R = keep ? as.B : M;
  if (sc.precision == ops::Precision::BF16) {
    ops::attention_forward_bf16(c.qkv_b.data(), c.ctx_b.data(), as, causal, mask, c.probs.data(), c.probs_b.data(),
                                drop);
    if (keep) {
      grow(c.ctx_rows_b, R * C);
      gather_kept_bf16(c.ctx_b.data(), *keep, as.B, as.L, C, c.ctx_rows_b.data());
    }
    out.forward(nullptr, R, c.r1.data(), sc, keep ? &c.ctx_rows_b : &c.ctx_b);
  } else {
    ops::attention_forward(c.qkv.data(), c.ctx.data(), as, causal, mask, c.probs.data(), drop);
    if (keep) {
      grow(c.ctx_rows, R * C);
      ops::pool_rows_forward(c.ctx.data(), keep->pos, as.B, as.L, C, c.ctx_rows.data());
    }
    out.forward(keep ? c.ctx_rows.data() : c.ctx.data(), R, c.r1.data(), sc);
  }
}

// From d r1 ([B, C] when `keep` is set): dqkv, and the output projection's gradients.
void TEncoderLayer::attention_backward(LayerCache& c, const float* dr1, float* dqkv, const ops::AttentionShape& as,
                                       bool grads, const StepContext& sc, const ops::AttentionDropout& drop,
                                       const PooledRows* keep) {
  const int64_t M = as.B * as.L, R = keep ? as.B : M;
  auto& s = scratch();
  float* dctx = s.d2.data();  // [M, C]
  float* dout = dctx;         // out-projection's dx: [R, C], scattered into dctx when keep
  if (keep) {
    grow(s.dctx, R * C);
    dout = s.dctx.data();
  }
  const bool bf16 = sc.precision == ops::Precision::BF16;
  if (bf16) out.backward(nullptr, dr1, R, dout, false, grads, sc, keep ? &c.ctx_rows_b : &c.ctx_b);
  else out.backward(keep ? c.ctx_rows.data() : c.ctx.data(), dr1, R, dout, false, grads, sc);
  if (keep) scatter_kept(dout, *keep, as.B, as.L, C, dctx);
  if (bf16) ops::attention_backward_bf16(dctx, c.qkv_b.data(), c.probs.data(), c.probs_b.data(), dqkv, as, drop);
  else ops::attention_backward(dctx, c.qkv.data(), c.probs.data(), dqkv, as, drop);
}

// y = fc2(act(c.h_pre))
void TEncoderLayer::mlp_out(LayerCache& c, int64_t M, float* y, const StepContext& sc) const {
  if (sc.precision == ops::Precision::BF16) {
    ops::act_forward_bf16(c.h_pre.data(), c.h_act_b.data(), M * I, act);
    fc2.forward(nullptr, M, y, sc, &c.h_act_b);
  } else {
    ops::act_forward(c.h_pre.data(), c.h_act.data(), M * I, act);
    fc2.forward(c.h_act.data(), M, y, sc);
  }
}

// From dy (the MLP output's gradient): dh (the pre-activation's), and fc2's gradients.
void TEncoderLayer::mlp_out_backward(LayerCache& c, const float* dy, int64_t M, float* dh, bool grads,
                                     const StepContext& sc) {
  if (sc.precision == ops::Precision::BF16) {
    fc2.backward(nullptr, dy, M, dh, false, grads, sc, &c.h_act_b);
    ops::act_backward_bf16(c.h_pre.data(), dh, dh, M * I, act);
  } else {
    fc2.backward(c.h_act.data(), dy, M, dh, false, grads, sc);
    ops::act_backward(c.h_pre.data(), dh, dh, M * I, act);
  }
}

void TEncoderLayer::forward(const float* x, float* y, int64_t B, int64_t L, bool causal, const int32_t* mask,
                            LayerCache& c, const StepContext& sc, uint64_t step_seed, const PooledRows* keep) const {
  const int64_t M = B * L, R = keep ? B : M;  // all M rows through attention's q/k/v, R rows after it
  const float pdrop = sc.training ? sc.hidden_dropout : 0.0f;
  const bool bf16 = sc.precision == ops::Precision::BF16;
  grow(c.probs, B * heads * L * L);
  if (bf16) {
    grow(c.probs_b, B * heads * L * L);
    grow(c.ctx_b, M * C);
    grow(c.h_act_b, M * I);
  } else {
    grow(c.qkv, M * 3 * C);
    grow(c.ctx, M * C);
    grow(c.h_act, M * I);
  }
  grow(c.r1, M * C);
  grow(c.ln1_mean, M);
  grow(c.ln1_rstd, M);
  grow(c.m_in, M * C);
  grow(c.h_pre, M * I);
  grow(c.ln2_mean, M);
  grow(c.ln2_rstd, M);
  const ops::AttentionShape as{B, L, heads, C / heads};
  if (pre_ln) {
    grow(c.a_in, M * C);
    ln1.forward(x, c.a_in.data(), M, c.ln1_mean.data(), c.ln1_rstd.data());
    project_qkv(c.a_in.data(), M, c, sc, &c.a_in_b);
    attention(c, as, causal, mask, sc, attention_dropout(sc, step_seed), keep);
    add_residual(c.r1.data(), x, keep, B, L, C);  // r1 = x + attn
    ln2.forward(c.r1.data(), c.m_in.data(), R, c.ln2_mean.data(), c.ln2_rstd.data());
    fc1.forward(c.m_in.data(), R, c.h_pre.data(), sc, &c.m_in_b);
    mlp_out(c, R, y, sc);
    add_into(y, c.r1.data(), R * C);  // y = r1 + mlp
  } else {
    grow(c.r2, M * C);
    project_qkv(x, M, c, sc, &c.x_b);
    attention(c, as, causal, mask, sc, attention_dropout(sc, step_seed), keep);
    dropout_rows(c.r1.data(), keep, B, L, C, pdrop, step_seed, site * 4 + 0);
    add_residual(c.r1.data(), x, keep, B, L, C);  // r1 = x + drop(attn)
    ln1.forward(c.r1.data(), c.m_in.data(), R, c.ln1_mean.data(), c.ln1_rstd.data());
    fc1.forward(c.m_in.data(), R, c.h_pre.data(), sc, &c.m_in_b);
    mlp_out(c, R, c.r2.data(), sc);
    dropout_rows(c.r2.data(), keep, B, L, C, pdrop, step_seed, site * 4 + 1);
    add_into(c.r2.data(), c.m_in.data(), R * C);  // r2 = m_in + drop(mlp)
    ln2.forward(c.r2.data(), y, R, c.ln2_mean.data(), c.ln2_rstd.data());
  }
}

void TEncoderLayer::backward(const float* x, const float* dy, float* dx, int64_t B, int64_t L, LayerCache& c,
                             bool grads, const StepContext& sc, uint64_t step_seed, const PooledRows* keep) {
  const int64_t M = B * L, R = keep ? B : M;
  const float pdrop = sc.training ? sc.hidden_dropout : 0.0f;
  auto& s = scratch();
  grow(s.d1, M * C);
  grow(s.d2, M * C);
  grow(s.dqkv, M * 3 * C);
  grow(s.dh, M * I);
  const ops::AttentionShape as{B, L, heads, C / heads};
  float* dh = s.dh.data();
  if (pre_ln) {
    float* dr1 = s.d1.data();  // d r1 = dy + (through the MLP branch)
    std::memcpy(dr1, dy, sizeof(float) * R * C);
    mlp_out_backward(c, dy, R, dh, grads, sc);
    float* dm = s.d2.data();
    fc1.backward(c.m_in.data(), dh, R, dm, false, grads, sc, &c.m_in_b);
    ln2.backward(dm, c.r1.data(), c.ln2_mean.data(), c.ln2_rstd.data(), R, dr1, /*acc=*/true, grads);
    attention_backward(c, dr1, s.dqkv.data(), as, grads, sc, attention_dropout(sc, step_seed), keep);
    float* da = s.d2.data();
    qkv.backward(c.a_in.data(), s.dqkv.data(), M, da, false, grads, sc, &c.a_in_b);
    if (dx) {
      ln1.backward(da, x, c.ln1_mean.data(), c.ln1_rstd.data(), M, dx, false, grads);
      add_residual_grad(dx, dr1, keep, B, L, C);
    } else if (grads) {
      std::vector<float> tmp(static_cast<size_t>(M * C));
      ln1.backward(da, x, c.ln1_mean.data(), c.ln1_rstd.data(), M, tmp.data(), false, grads);
    }
  } else {
    float* dr2 = s.d1.data();
    ln2.backward(dy, c.r2.data(), c.ln2_mean.data(), c.ln2_rstd.data(), R, dr2, false, grads);
    float* dm = s.d2.data();  // d m_in = d r2 + (through the MLP branch)
    std::memcpy(dm, dr2, sizeof(float) * R * C);
    dropout_rows(dr2, keep, B, L, C, pdrop, step_seed, site * 4 + 1);  // same mask as forward
    mlp_out_backward(c, dr2, R, dh, grads, sc);
    fc1.backward(c.m_in.data(), dh, R, dm, /*acc=*/true, grads, sc, &c.m_in_b);
    float* dr1 = s.d1.data();
    ln1.backward(dm, c.r1.data(), c.ln1_mean.data(), c.ln1_rstd.data(), R, dr1, false, grads);
    if (dx) {  // the residual x -> r1
      if (keep) scatter_kept(dr1, *keep, B, L, C, dx);
      else std::memcpy(dx, dr1, sizeof(float) * M * C);
    }
    dropout_rows(dr1, keep, B, L, C, pdrop, step_seed, site * 4 + 0);
    attention_backward(c, dr1, s.dqkv.data(), as, grads, sc, attention_dropout(sc, step_seed), keep);
    qkv.backward(x, s.dqkv.data(), M, dx, /*acc=*/true, grads, sc, &c.x_b);
  }
}

}  // namespace clipkit::train
