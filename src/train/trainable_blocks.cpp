#include "train/trainable_blocks.h"

#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "ops/attention.h"
#include "ops/dense.h"
#include "ops/dropout_mask.h"
#include "ops/layernorm.h"
#include "ops/linear.h"

namespace clipkit::train {
namespace {

template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// Backward scratch, reused by every layer and step.
struct Scratch {
  std::vector<float> d1, d2, dqkv, dqkv_rows, dh, dctx, qkv_rows, ln_tmp, ln_dg, ln_db;
  Bf16Buf qkv_rows_b;
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

// Row maps between the padded [M, W] layout attention works in and the rows a layer computes
// (LayerRows in trainable_blocks.h).
// dst [R_out, W] = the output rows of src [M, W]
template <typename T>
void gather_out(const T* src, const LayerRows& r, int64_t R, int64_t W, T* dst) {
  for (int64_t i = 0; i < R; ++i) std::memcpy(dst + i * W, src + r.padded(i) * W, sizeof(T) * W);
}
// dst [M, W] = 0 except the output rows = src [R_out, W]
void scatter_out(const float* src, const LayerRows& r, int64_t R, int64_t M, int64_t W, float* dst) {
  std::memset(dst, 0, sizeof(float) * M * W);
  for (int64_t i = 0; i < R; ++i) std::memcpy(dst + r.padded(i) * W, src + i * W, sizeof(float) * W);
}
// the residual: dst [R_out, C] += x [R_in, C], output row i taking input row r.local(i)
void add_residual(float* dst, const float* x, const LayerRows& r, int64_t R, int64_t C) {
  if (!r.out) return add_into(dst, x, R * C);
  for (int64_t i = 0; i < R; ++i) {
    const float* xr = x + r.local(i) * C;
    for (int64_t c = 0; c < C; ++c) dst[i * C + c] += xr[c];
  }
}
// its gradient: dx [R_in, C] += d [R_out, C] row for row (or = when `assign`, the other rows 0)
void add_residual_grad(float* dx, const float* d, const LayerRows& r, int64_t R_in, int64_t R, int64_t C, bool assign) {
  if (!r.out) {
    if (assign) std::memcpy(dx, d, sizeof(float) * R * C);
    else add_into(dx, d, R * C);
    return;
  }
  if (assign) std::memset(dx, 0, sizeof(float) * R_in * C);
  for (int64_t i = 0; i < R; ++i) {
    float* xr = dx + r.local(i) * C;
    for (int64_t c = 0; c < C; ++c) xr[c] += d[i * C + c];
  }
}
// dropout over the computed rows [R_out, C] with the masks of the full padded tensor
void dropout_rows(float* x, const LayerRows& r, int64_t R, int64_t C, float p, uint64_t seed, uint64_t site) {
  if (!r.in && !r.out) return dropout_apply(x, R * C, p, seed, site);
  if (p <= 0) return;
  ProfileScope prof("dropout");
  const ops::DropoutMask mask(p, seed, site);
  parallel_for(R, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) mask.apply(static_cast<uint64_t>(r.padded(i) * C), C, x + i * C, x + i * C);
  }, 16);
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

// The bf16 forward's operands: W into wb, and x into *xb unless the producer already wrote it (x null).
void TLinear::to_bf16_operands(const float* x, int64_t M, Bf16Buf* xb) const {
  grow(wb, N * K);
  ops::to_bf16(w.data(), wb.data(), N * K);
  if (x) {
    grow(*xb, M * K);
    ops::to_bf16(x, xb->data(), M * K);
  }
}

void TLinear::forward(const float* x, int64_t M, float* y, const StepContext& c, Bf16Buf* xb) const {
  const float* bias = b.empty() ? nullptr : b.data();
  if (c.precision != ops::Precision::BF16 || !xb) return ops::dense_forward(x, w.data(), bias, M, N, K, y, c.precision);
  to_bf16_operands(x, M, xb);
  ops::dense_forward_bf16(xb->data(), wb.data(), bias, M, N, K, y);
}

void TLinear::forward_bf16_out(const float* x, int64_t M, Bf16Buf* yb, const StepContext& c, Bf16Buf* xb) const {
  CLIPKIT_ASSERT(c.precision == ops::Precision::BF16 && xb && yb);
  to_bf16_operands(x, M, xb);
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

// c.qkv [M, 3C] (fp32), or c.qkv_b directly in bf16 (attention reads nothing else), from the
// input rows x [R_in, C]; rows outside the input (padding) are zero.
void TEncoderLayer::project_qkv(const float* x, int64_t M, const LayerRows& rows, LayerCache& c, const StepContext& sc,
                                Bf16Buf* xb) const {
  const int64_t R = rows.rows_in(M);
  auto& s = scratch();
  if (sc.precision == ops::Precision::BF16) {
    if (!rows.in) return qkv.forward_bf16_out(x, M, &c.qkv_b, sc, xb);
    qkv.forward_bf16_out(x, R, &s.qkv_rows_b, sc, xb);
    grow(c.qkv_b, M * 3 * C);
    rows.scatter_in(s.qkv_rows_b.data(), M, 3 * C, c.qkv_b.data());
  } else {
    if (!rows.in) return qkv.forward(x, M, c.qkv.data(), sc);
    grow(s.qkv_rows, R * 3 * C);
    qkv.forward(x, R, s.qkv_rows.data(), sc);
    rows.scatter_in(s.qkv_rows.data(), M, 3 * C, c.qkv.data());
  }
}

// r1 [R_out, C] = out(attention(c.qkv)) (before the residual): every query is attended in the
// padded layout; only the output rows' contexts go through the output projection.
void TEncoderLayer::attention(LayerCache& c, const ops::AttentionShape& as, bool causal, const int32_t* mask,
                              const StepContext& sc, const ops::AttentionDropout& drop, const LayerRows& rows) const {
  const int64_t M = as.B * as.L, R = rows.rows_out(M);
  const bool pick = rows.in || rows.out;
  if (sc.precision == ops::Precision::BF16) {
    ops::attention_forward_bf16(c.qkv_b.data(), c.ctx_b.data(), as, causal, mask, c.probs.data(), c.probs_b.data(),
                                drop);
    if (pick) {
      grow(c.ctx_rows_b, R * C);
      gather_out(c.ctx_b.data(), rows, R, C, c.ctx_rows_b.data());
    }
    out.forward(nullptr, R, c.r1.data(), sc, pick ? &c.ctx_rows_b : &c.ctx_b);
  } else {
    ops::attention_forward(c.qkv.data(), c.ctx.data(), as, causal, mask, c.probs.data(), drop);
    if (pick) {
      grow(c.ctx_rows, R * C);
      gather_out(c.ctx.data(), rows, R, C, c.ctx_rows.data());
    }
    out.forward(pick ? c.ctx_rows.data() : c.ctx.data(), R, c.r1.data(), sc);
  }
}

// From d r1 [R_out, C]: dqkv [R_in, 3C] (in scratch().dqkv or dqkv_rows; returned), and the output
// projection's gradients.
float* TEncoderLayer::attention_backward(LayerCache& c, const float* dr1, const ops::AttentionShape& as, bool grads,
                                         const StepContext& sc, const ops::AttentionDropout& drop,
                                         const LayerRows& rows) {
  const int64_t M = as.B * as.L, R = rows.rows_out(M);
  const bool pick = rows.in || rows.out;
  auto& s = scratch();
  float* dctx = s.d2.data();  // [M, C]
  float* dout = dctx;         // out-projection's dx: [R_out, C], scattered into dctx when rows are picked
  if (pick) {
    grow(s.dctx, R * C);
    dout = s.dctx.data();
  }
  const bool bf16 = sc.precision == ops::Precision::BF16;
  if (bf16) out.backward(nullptr, dr1, R, dout, false, grads, sc, pick ? &c.ctx_rows_b : &c.ctx_b);
  else out.backward(pick ? c.ctx_rows.data() : c.ctx.data(), dr1, R, dout, false, grads, sc);
  if (pick) scatter_out(dout, rows, R, M, C, dctx);
  float* dqkv = s.dqkv.data();  // [M, 3C]
  if (bf16) ops::attention_backward_bf16(dctx, c.qkv_b.data(), c.probs.data(), c.probs_b.data(), dqkv, as, drop);
  else ops::attention_backward(dctx, c.qkv.data(), c.probs.data(), dqkv, as, drop);
  if (!rows.in) return dqkv;
  grow(s.dqkv_rows, rows.n_in * 3 * C);
  rows.gather_in(dqkv, M, 3 * C, s.dqkv_rows.data());
  return s.dqkv_rows.data();
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
                            LayerCache& c, const StepContext& sc, uint64_t step_seed, const LayerRows& rows) const {
  // M padded rows inside attention; Ri input rows before it, R output rows after it
  const int64_t M = B * L, Ri = rows.rows_in(M), R = rows.rows_out(M);
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
    ln1.forward(x, c.a_in.data(), Ri, c.ln1_mean.data(), c.ln1_rstd.data());
    project_qkv(c.a_in.data(), M, rows, c, sc, &c.a_in_b);
    attention(c, as, causal, mask, sc, attention_dropout(sc, step_seed), rows);
    add_residual(c.r1.data(), x, rows, R, C);  // r1 = x + attn
    ln2.forward(c.r1.data(), c.m_in.data(), R, c.ln2_mean.data(), c.ln2_rstd.data());
    fc1.forward(c.m_in.data(), R, c.h_pre.data(), sc, &c.m_in_b);
    mlp_out(c, R, y, sc);
    add_into(y, c.r1.data(), R * C);  // y = r1 + mlp
  } else {
    grow(c.r2, M * C);
    project_qkv(x, M, rows, c, sc, &c.x_b);
    attention(c, as, causal, mask, sc, attention_dropout(sc, step_seed), rows);
    dropout_rows(c.r1.data(), rows, R, C, pdrop, step_seed, site * 4 + 0);
    add_residual(c.r1.data(), x, rows, R, C);  // r1 = x + drop(attn)
    ln1.forward(c.r1.data(), c.m_in.data(), R, c.ln1_mean.data(), c.ln1_rstd.data());
    fc1.forward(c.m_in.data(), R, c.h_pre.data(), sc, &c.m_in_b);
    mlp_out(c, R, c.r2.data(), sc);
    dropout_rows(c.r2.data(), rows, R, C, pdrop, step_seed, site * 4 + 1);
    add_into(c.r2.data(), c.m_in.data(), R * C);  // r2 = m_in + drop(mlp)
    ln2.forward(c.r2.data(), y, R, c.ln2_mean.data(), c.ln2_rstd.data());
  }
}

void TEncoderLayer::backward(const float* x, const float* dy, float* dx, int64_t B, int64_t L, LayerCache& c,
                             bool grads, const StepContext& sc, uint64_t step_seed, const LayerRows& rows) {
  const int64_t M = B * L, Ri = rows.rows_in(M), R = rows.rows_out(M);
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
    const float* dqkv = attention_backward(c, dr1, as, grads, sc, attention_dropout(sc, step_seed), rows);
    float* da = s.d2.data();
    qkv.backward(c.a_in.data(), dqkv, Ri, da, false, grads, sc, &c.a_in_b);
    if (dx) {
      ln1.backward(da, x, c.ln1_mean.data(), c.ln1_rstd.data(), Ri, dx, false, grads);
      add_residual_grad(dx, dr1, rows, Ri, R, C, /*assign=*/false);
    } else if (grads) {
      std::vector<float> tmp(static_cast<size_t>(Ri * C));
      ln1.backward(da, x, c.ln1_mean.data(), c.ln1_rstd.data(), Ri, tmp.data(), false, grads);
    }
  } else {
    float* dr2 = s.d1.data();
    ln2.backward(dy, c.r2.data(), c.ln2_mean.data(), c.ln2_rstd.data(), R, dr2, false, grads);
    float* dm = s.d2.data();  // d m_in = d r2 + (through the MLP branch)
    std::memcpy(dm, dr2, sizeof(float) * R * C);
    dropout_rows(dr2, rows, R, C, pdrop, step_seed, site * 4 + 1);  // same mask as forward
    mlp_out_backward(c, dr2, R, dh, grads, sc);
    fc1.backward(c.m_in.data(), dh, R, dm, /*acc=*/true, grads, sc, &c.m_in_b);
    float* dr1 = s.d1.data();
    ln1.backward(dm, c.r1.data(), c.ln1_mean.data(), c.ln1_rstd.data(), R, dr1, false, grads);
    if (dx) add_residual_grad(dx, dr1, rows, Ri, R, C, /*assign=*/true);  // the residual x -> r1
    dropout_rows(dr1, rows, R, C, pdrop, step_seed, site * 4 + 0);
    const float* dqkv = attention_backward(c, dr1, as, grads, sc, attention_dropout(sc, step_seed), rows);
    qkv.backward(x, dqkv, Ri, dx, /*acc=*/true, grads, sc, &c.x_b);
  }
}

}  // namespace clipkit::train
