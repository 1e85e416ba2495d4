#include "model/blocks.h"

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace clipkit::model {

// ---- Linear ----

void Linear::load(ParamSet& ps, const WeightReader& r, const std::vector<std::string>& prefixes, int64_t N, int64_t K,
                  bool bias, const LoadPlan& plan, int depth, const Shape& stored) {
  ParamBuffer* buf = ps.new_buffer(/*lazy=*/true);
  std::vector<std::string> wn, bn;
  for (auto& p : prefixes) wn.push_back(p + "weight"), bn.push_back(p + "bias");
  w = ps.add_fused(r, wn, stored.empty() ? Shape{N, K} : stored, plan, depth, /*decay=*/true, buf);
  const int64_t rows = N * static_cast<int64_t>(prefixes.size());
  w.value = w.value.view({rows, K});
  if (w.grad.defined()) w.grad = w.grad.view({rows, K});
  if (bias) b = ps.add_fused(r, bn, {N}, plan, depth, /*decay=*/false, buf);
  prepared = ps.backend().prepare_weight(plan.use, plan.precision);
}

backend::LinearWeights Linear::weights() const { return {w.value, b.value, *prepared, w.buffer->version}; }

void Linear::forward(Pass& p, const Tensor& x, const Tensor& y, const backend::Epilogue& e, Tensor* x_saved,
                     const backend::Dropout& drop) const {
  if (x_saved) {
    const DType od = p.be.operand_dtype(p.precision, true);
    *x_saved = x.dtype() == od ? x : p.arena.alloc(od, x.shape());
  }
  if (!drop.on() || !e.residual) return p.be.linear(x, weights(), e, y, x_saved);
  backend::Epilogue inner = e;  // y = dropout(act(x W^T + b)), then + residual
  inner.residual = nullptr;
  p.be.linear(x, weights(), inner, y, x_saved);
  p.be.dropout(y, drop);
  p.be.add(*e.residual, y);
}

void Linear::backward(Pass& p, const Tensor& x_saved, const backend::Epilogue& e, const Tensor& dy, const Tensor* dx,
                      bool accumulate_dx) {
  const bool grads = w.grad.defined();
  if (!grads && !dx) return;
  const bool first = w.buffer->grad != ParamBuffer::Grad::Written;
  p.be.linear_backward(x_saved, weights(), e, dy, dx, accumulate_dx, grads ? &w.grad : nullptr,
                       grads && b.grad.defined() ? &b.grad : nullptr, first);
  if (grads) w.buffer->grad = ParamBuffer::Grad::Written;
}

// ---- LayerNorm ----

void LayerNorm::load(ParamSet& ps, const WeightReader& r, int64_t C, float e, const LoadPlan& plan, int depth) {
  gamma = ps.add(r, "weight", {C}, plan, depth, /*decay=*/false);
  beta = ps.add(r, "bias", {C}, plan, depth, /*decay=*/false);
  eps = e;
}

void LayerNorm::forward(Pass& p, const Tensor& x, const Tensor& y, Tensor* stats) const {
  if (stats) *stats = p.alloc({2, x.rows()});
  p.be.layernorm(x, gamma.value, beta.value, eps, y, stats);
}

void LayerNorm::backward(Pass& p, const Tensor& dy, const Tensor& x, const Tensor& stats, const Tensor* dx,
                         bool accumulate_dx) {
  const bool grads = gamma.grad.defined();
  if (!grads && !dx) return;
  p.be.layernorm_backward(dy, x, gamma.value, stats, dx, accumulate_dx, grads ? &gamma.grad : nullptr,
                          grads ? &beta.grad : nullptr);
}

// ---- EncoderLayer ----

void EncoderLayer::load(ParamSet& ps, const WeightReader& r, const std::vector<std::string>& attn,
                        const std::string mlp[2], const std::string lns[2], int64_t C, int64_t h, int64_t I,
                        backend::Act a, float eps, const LoadPlan& plan, int depth) {
  heads = h;
  act = a;
  qkv.load(ps, r, {attn[0], attn[1], attn[2]}, C, C, true, plan, depth);
  out.load(ps, r, {attn[3]}, C, C, true, plan, depth);
  fc1.load(ps, r, {mlp[0]}, I, C, true, plan, depth);
  fc2.load(ps, r, {mlp[1]}, C, I, true, plan, depth);
  ln1.load(ps, r.sub(lns[0]), C, eps, plan, depth);
  ln2.load(ps, r.sub(lns[1]), C, eps, plan, depth);
}

// The output rows' attention contexts [R_out, C] from a [R_in, C]: q/k/v of the input rows,
// attention over the padded layout (rows outside the input are zero), then the output rows.
Tensor EncoderLayer::attend(Pass& p, const Tensor& a, int64_t B, int64_t L, bool causal, const Tensor* mask,
                            const Rows& rows, LayerSaved* s) const {
  const int64_t M = B * L, C = this->C();
  Tensor qkv_all = p.alloc_operand({M, 3 * C});
  if (rows.in.defined()) {
    Tensor qkv_rows = p.alloc_operand({rows.n_in, 3 * C});
    qkv.forward(p, a, qkv_rows, {}, s ? &s->qkv_x : nullptr);
    p.be.scatter_rows(qkv_rows, rows.in, qkv_all, /*zero_rest=*/true);
  } else {
    qkv.forward(p, a, qkv_all, {}, s ? &s->qkv_x : nullptr);
  }
  Tensor ctx = p.alloc_operand({M, C});
  const backend::Dropout drop{p.attention_dropout, p.seed, site * 4 + 2};
  p.be.attention(qkv_all, ctx, {B, L, heads, C / heads}, causal, mask, drop, p.arena, s ? &s->attn : nullptr);
  if (!rows.padded()) return ctx;
  Tensor picked = p.alloc_operand({rows.rows_out(M), C});
  p.be.gather_rows(ctx, *rows.padded(), picked);
  return picked;
}

void EncoderLayer::forward(Pass& p, const Tensor& x, const Tensor& y, int64_t B, int64_t L, bool causal,
                           const Tensor* mask, const Rows& rows, LayerSaved* s) const {
  const int64_t M = B * L, C = this->C(), Ri = rows.rows_in(M), R = rows.rows_out(M), I = fc1.N();
  std::optional<backend::Arena::Scope> scratch;  // inference: this layer's temporaries are given back
  if (!s) scratch.emplace(p.arena);
  Tensor resid = x;  // the input rows the output rows continue
  if (rows.out.defined()) {
    resid = p.alloc({R, C});
    p.be.gather_rows(x, rows.out, resid);
  }
  Tensor h = p.alloc_operand({R, I}), h_pre = s ? p.alloc({R, I}) : Tensor();
  const backend::Epilogue mlp_in{act, nullptr, s ? &h_pre : nullptr};
  if (pre_ln) {
    Tensor a = p.alloc({Ri, C});
    ln1.forward(p, x, a, s ? &s->ln1 : nullptr);
    Tensor ctx = attend(p, a, B, L, causal, mask, rows, s);
    Tensor r1 = s ? p.alloc({R, C}) : y;  // r1 = x + attn
    out.forward(p, ctx, r1, {backend::Act::None, &resid}, s ? &s->out_x : nullptr);
    Tensor m = p.alloc({R, C});
    ln2.forward(p, r1, m, s ? &s->ln2 : nullptr);
    fc1.forward(p, m, h, mlp_in, s ? &s->fc1_x : nullptr);
    fc2.forward(p, h, y, {backend::Act::None, &r1}, s ? &s->fc2_x : nullptr);  // y = r1 + mlp
    if (s) s->r1 = r1;
  } else {
    Tensor ctx = attend(p, x, B, L, causal, mask, rows, s);
    Tensor r1 = s ? p.alloc({R, C}) : y;  // r1 = x + drop(attn)
    out.forward(p, ctx, r1, {backend::Act::None, &resid}, s ? &s->out_x : nullptr, hidden_dropout(p, 0, rows));
    Tensor m = s ? p.alloc({R, C}) : r1;
    ln1.forward(p, r1, m, s ? &s->ln1 : nullptr);
    fc1.forward(p, m, h, mlp_in, s ? &s->fc1_x : nullptr);
    Tensor r2 = s ? p.alloc({R, C}) : m;  // r2 = m + drop(mlp)
    fc2.forward(p, h, r2, {backend::Act::None, &m}, s ? &s->fc2_x : nullptr, hidden_dropout(p, 1, rows));
    ln2.forward(p, r2, y, s ? &s->ln2 : nullptr);
    if (s) s->r1 = r1, s->r2 = r2;
  }
  if (s) s->x = x, s->h_pre = h_pre;
}

// From d r1 [R_out, C]: dqkv of the input rows [R_in, 3C], and the output projection's gradients.
Tensor EncoderLayer::attend_backward(Pass& p, const Tensor& dr, int64_t B, int64_t L, LayerSaved& s,
                                     const Rows& rows) {
  const int64_t M = B * L, C = this->C();
  Tensor dctx = p.alloc({M, C});
  if (rows.padded()) {  // the output projection's dx is the output rows' share; the other rows get 0
    Tensor dpicked = p.alloc({rows.rows_out(M), C});
    out.backward(p, s.out_x, {}, dr, &dpicked, false);
    p.be.scatter_rows(dpicked, *rows.padded(), dctx, /*zero_rest=*/true);
  } else {
    out.backward(p, s.out_x, {}, dr, &dctx, false);
  }
  Tensor dqkv = p.alloc({M, 3 * C});
  p.be.attention_backward(dctx, s.attn, dqkv, {B, L, heads, C / heads}, {p.attention_dropout, p.seed, site * 4 + 2});
  if (!rows.in.defined()) return dqkv;
  Tensor d = p.alloc({rows.n_in, 3 * C});
  p.be.gather_rows(dqkv, rows.in, d);
  return d;
}

void EncoderLayer::backward(Pass& p, const Tensor& dy, const Tensor* dx, int64_t B, int64_t L, LayerSaved& s,
                            const Rows& rows) {
  const int64_t M = B * L, C = this->C(), Ri = rows.rows_in(M), R = rows.rows_out(M), I = fc1.N();
  const backend::Epilogue mlp_in{act, nullptr, &s.h_pre};
  Tensor dh = p.alloc({R, I}), dm = p.alloc({R, C}), dr1 = p.alloc({R, C});
  // the residual's gradient into dx: += (pre-LN, after ln1's) or = (post-LN, before the qkv's)
  auto residual_into_dx = [&](const Tensor& d, bool assign) {
    if (!rows.out.defined()) return assign ? p.be.copy(d, *dx) : p.be.add(d, *dx);
    if (assign) p.be.zero(*dx);
    p.be.scatter_add_rows(d, rows.out, *dx);
  };
  if (pre_ln) {
    p.be.copy(dy, dr1);  // d r1 = dy + (through the MLP branch)
    fc2.backward(p, s.fc2_x, {}, dy, &dh, false);
    fc1.backward(p, s.fc1_x, mlp_in, dh, &dm, false);
    ln2.backward(p, dm, s.r1, s.ln2, &dr1, /*accumulate_dx=*/true);
    Tensor dqkv = attend_backward(p, dr1, B, L, s, rows);
    Tensor da = p.alloc({Ri, C});
    qkv.backward(p, s.qkv_x, {}, dqkv, &da, false);
    ln1.backward(p, da, s.x, s.ln1, dx, false);
    if (dx) residual_into_dx(dr1, /*assign=*/false);
  } else {
    Tensor dr2 = p.alloc({R, C});
    ln2.backward(p, dy, s.r2, s.ln2, &dr2, false);
    p.be.copy(dr2, dm);  // d m = d r2 + (through the MLP branch)
    p.be.dropout(dr2, hidden_dropout(p, 1, rows));  // the forward's mask
    fc2.backward(p, s.fc2_x, {}, dr2, &dh, false);
    fc1.backward(p, s.fc1_x, mlp_in, dh, &dm, /*accumulate_dx=*/true);
    ln1.backward(p, dm, s.r1, s.ln1, &dr1, false);
    if (dx) residual_into_dx(dr1, /*assign=*/true);
    p.be.dropout(dr1, hidden_dropout(p, 0, rows));
    Tensor dqkv = attend_backward(p, dr1, B, L, s, rows);
    qkv.backward(p, s.qkv_x, {}, dqkv, dx, /*accumulate_dx=*/true);
  }
}

// ---- LayerStack ----

void LayerStack::plan(Pass& p, Indices& ix, const int32_t* mask, int64_t B, int64_t L,
                      const std::vector<int32_t>* pooled, Rows* rows, Rows* last) {
  *rows = {};
  *last = {};
  if (!pooled) return;
  const int64_t M = B * L;
  std::vector<int32_t> in;
  const int64_t real = mask ? std::count_if(mask, mask + M, [](int32_t m) { return m != 0; }) : M;
  bool unpad = mask && real < M;
  for (int32_t r : *pooled) unpad = unpad && mask[r] != 0;
  if (unpad) {
    // the real tokens, plus padded rows up to a multiple of 16 (computing a padded row is harmless,
    // and oneDNN's bf16 matmuls run at half speed on odd row counts)
    int64_t extra = (16 - real % 16) % 16;
    for (int64_t r = 0; r < M; ++r)
      if (mask[r] != 0 || (extra > 0 && extra--)) in.push_back(static_cast<int32_t>(r));
    rows->n_in = static_cast<int64_t>(in.size());
    rows->in = ix.add(p, in);
  }
  std::vector<int32_t> out;  // the pooled rows among the input rows (in is sorted)
  for (int32_t r : *pooled)
    out.push_back(unpad ? static_cast<int32_t>(std::lower_bound(in.begin(), in.end(), r) - in.begin()) : r);
  *last = *rows;
  last->n_out = B;
  last->out = ix.add(p, out);
  last->out_padded = ix.add(p, *pooled);
}

Tensor LayerStack::forward(Pass& p, const Tensor& x0, int64_t B, int64_t L, bool causal, const Tensor* mask,
                           const Rows& rows, const Rows& last, StackSaved* s) const {
  const size_t n = layers.size();
  const int64_t M = B * L, C = layers[0].C();
  Tensor x = x0;
  if (rows.in.defined()) {  // the input rows: the real tokens
    x = p.alloc({rows.n_in, C});
    p.be.gather_rows(x0, rows.in, x);
  }
  if (s) {
    *s = {};
    s->rows = rows, s->last = last, s->B = B, s->L = L, s->causal = causal;
    if (mask) s->mask = *mask;
    if (!p.checkpointing) s->layers.resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const Rows& r = i + 1 == n ? last : rows;
    // inference continues in place, unless the layer keeps fewer rows than it takes
    Tensor y = s || r.out.defined() ? p.alloc({r.rows_out(M), C}) : x;
    if (!s) {
      layers[i].forward(p, x, y, B, L, causal, mask, r, nullptr);
    } else if (!p.checkpointing) {
      layers[i].forward(p, x, y, B, L, causal, mask, r, &s->layers[i]);
    } else {  // keep only the layer's input: backward runs the layer again
      backend::Arena::Scope scratch(p.arena);
      LayerSaved discard;
      layers[i].forward(p, x, y, B, L, causal, mask, r, &discard);
    }
    if (s) s->xs.push_back(x);
    x = y;
  }
  return x;
}

void LayerStack::backward(Pass& p, const Tensor& dy, const Tensor* dx, StackSaved& s) {
  const int n = static_cast<int>(layers.size());
  const int64_t M = s.B * s.L, C = layers[0].C(), Ri = s.rows.rows_in(M);
  int stop = 0;  // the lowest layer the gradient has to reach
  if (!dx)
    while (stop < n && !layers[static_cast<size_t>(stop)].qkv.w.grad.defined()) ++stop;
  const Tensor* mask = s.mask.defined() ? &s.mask : nullptr;
  Tensor buf[2] = {p.alloc({Ri, C}), p.alloc({Ri, C})}, g = dy;
  for (int i = n - 1; i >= stop; --i) {
    auto& layer = layers[static_cast<size_t>(i)];
    const Rows& r = i + 1 == n ? s.last : s.rows;
    const Tensor* gx = i > stop || dx ? &buf[i % 2] : nullptr;
    backend::Arena::Scope scratch(p.arena);
    LayerSaved recomputed;
    LayerSaved* ls = p.checkpointing ? &recomputed : &s.layers[static_cast<size_t>(i)];
    if (p.checkpointing)
      layer.forward(p, s.xs[static_cast<size_t>(i)], p.alloc({r.rows_out(M), C}), s.B, s.L, s.causal, mask, r, ls);
    layer.backward(p, g, gx, s.B, s.L, *ls, r);
    if (gx) g = *gx;
  }
  if (!dx) return;
  // g holds d(input rows): back to the padded layout (padding gets exactly zero, as in the full stack)
  if (s.rows.in.defined()) p.be.scatter_rows(g, s.rows.in, *dx, /*zero_rest=*/true);
  else p.be.copy(g, *dx);
}

void load_layers(LayerStack& stack, ParamSet& ps, const WeightReader& r, const std::string& sub, int num_layers,
                 const std::vector<std::string>& attn, const std::string mlp[2], const std::string lns[2], int64_t C,
                 int64_t heads, int64_t I, backend::Act a, float eps, bool pre_ln, const LoadPlan& plan) {
  if (num_layers < 1) {
    const std::string where = r.prefix() + sub;  // e.g. "text_model.encoder.layers."
    fail("{}: no encoder layers (num_hidden_layers is {}); a tower needs at least one",
         where.substr(0, where.size() - 1), num_layers);
  }
  stack.layers = std::vector<EncoderLayer>(static_cast<size_t>(num_layers));
  for (int i = 0; i < num_layers; ++i) {
    auto& layer = stack.layers[static_cast<size_t>(i)];
    layer.pre_ln = pre_ln;
    layer.site = static_cast<uint64_t>(i + 1);
    layer.load(ps, r.sub(sub + std::to_string(i) + "."), attn, mlp, lns, C, heads, I, a, eps, plan, i);
  }
}

}  // namespace clipkit::model
