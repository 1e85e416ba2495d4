// The shared blocks every tower is built from, each forward with its backward beside it. Activations
// are row-major [rows, C] backend tensors. A forward with a `saved` struct (a training pass) keeps
// what its backward reads; without one (inference) it keeps nothing and may work in place.
// Parameters without a gradient (frozen) get none computed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/params.h"
#include "model/pass.h"

namespace clipkit::model {

using backend::Tensor;  // in the model layer, Tensor is a backend tensor; host tensors are clipkit::Tensor

// y = act(x W^T + b) over masters W [N, K], b [N] (optional), prepared by the backend once.
struct Linear {
  Weight w, b;
  std::unique_ptr<backend::PreparedWeight> prepared;
  int64_t N() const { return w.value.dim(0); }
  int64_t K() const { return w.value.dim(1); }
  // prefix + "weight" [N, K] (stored as `stored` when given, e.g. a conv's [N, CH, P, P]) + "bias" [N];
  // q/k/v fused: the {q, k, v} prefixes' tensors stacked as [3N, K].
  void load(ParamSet& ps, const WeightReader& r, const std::vector<std::string>& prefixes, int64_t N, int64_t K,
            bool bias, const LoadPlan& plan, int depth, const Shape& stored = {});
  // y = [dropout](act(x W^T + b)) + residual; x_saved (training) receives x as the backward reads it.
  void forward(Pass& p, const Tensor& x, const Tensor& y, const backend::Epilogue& e = {},
               Tensor* x_saved = nullptr, const backend::Dropout& drop = {}) const;
  // dy overwritten when e.act is set (e.preact: the forward's); dx (optional): = or += with accumulate.
  void backward(Pass& p, const Tensor& x_saved, const backend::Epilogue& e, const Tensor& dy, const Tensor* dx,
                bool accumulate_dx);
  backend::LinearWeights weights() const;
};

struct LayerNorm {
  Weight gamma, beta;
  float eps = 1e-5f;
  int64_t C() const { return gamma.value.numel(); }
  void load(ParamSet& ps, const WeightReader& r, int64_t C, float eps, const LoadPlan& plan, int depth);
  // y [M, C] (may be x); stats (training) receives mean and rstd [2, M].
  void forward(Pass& p, const Tensor& x, const Tensor& y, Tensor* stats = nullptr) const;
  void backward(Pass& p, const Tensor& dy, const Tensor& x, const Tensor& stats, const Tensor* dx, bool accumulate_dx);
};

// The rows of the padded [M = B*L, C] activations that a layer computes. Attention always runs in
// the padded layout; every other op runs on these rows only. `in`: the padded row of each of the
// layer's input rows (undefined: all M, in order); `out`: which input rows the output keeps after
// attention (undefined: all); `out_padded`: the padded row of each output row.
// Text towers drop padding (in = the real tokens: a padded token's key is masked, so it never
// reaches a pooled row); a tower's last layer keeps only its pooled rows (CLS, EOS or <s>).
struct Rows {
  Tensor in, out, out_padded;
  int64_t n_in = 0, n_out = 0;
  int64_t rows_in(int64_t M) const { return in.defined() ? n_in : M; }
  int64_t rows_out(int64_t M) const { return out.defined() ? n_out : rows_in(M); }
  // the padded row of each output row (for dropout masks), or null when rows are all rows in order
  const Tensor* padded() const { return out.defined() ? &out_padded : in.defined() ? &in : nullptr; }
};

// What one encoder layer keeps for its backward pass.
struct LayerSaved {
  Tensor x, r1, r2, h_pre;           // the input, the residual streams (LN inputs), fc1's pre-activation
  Tensor ln1, ln2;                    // the layer norms' statistics
  Tensor qkv_x, out_x, fc1_x, fc2_x;  // the matmul inputs as the backward reads them
  backend::AttentionSaved attn;
};

// A transformer encoder layer.
//   pre-LN (CLIP):     x = x + attn(ln1(x));  x = x + mlp(ln2(x))
//   post-LN (RoBERTa): x = ln1(x + drop(attn(x)));  x = ln2(x + drop(mlp(x)))
struct EncoderLayer {
  bool pre_ln = true;
  int64_t heads = 0;
  backend::Act act = backend::Act::QuickGelu;
  LayerNorm ln1, ln2;
  Linear qkv, out, fc1, fc2;
  uint64_t site = 0;  // dropout sites site*4 + 0/1 (hidden, after attention / MLP) and + 2 (attention)
  int64_t C() const { return out.N(); }

  // names: {q, k, v, out} prefixes, {fc1, fc2} prefixes, {ln1, ln2} prefixes (relative to r)
  void load(ParamSet& ps, const WeightReader& r, const std::vector<std::string>& attn, const std::string mlp[2],
            const std::string lns[2], int64_t C, int64_t heads, int64_t I, backend::Act a, float eps,
            const LoadPlan& plan, int depth);
  // x [R_in, C] -> y [R_out, C] over `rows` (inference may pass y = x: in place).
  void forward(Pass& p, const Tensor& x, const Tensor& y, int64_t B, int64_t L, bool causal, const Tensor* mask,
               const Rows& rows, LayerSaved* s) const;
  // dy [R_out, C] -> dx [R_in, C] (overwritten; null when nothing below needs it).
  void backward(Pass& p, const Tensor& dy, const Tensor* dx, int64_t B, int64_t L, LayerSaved& s, const Rows& rows);

 private:
  Tensor attend(Pass& p, const Tensor& a, int64_t B, int64_t L, bool causal, const Tensor* mask, const Rows& rows,
                LayerSaved* s) const;
  Tensor attend_backward(Pass& p, const Tensor& dr, int64_t B, int64_t L, LayerSaved& s, const Rows& rows);
  backend::Dropout hidden_dropout(const Pass& p, int k, const Rows& rows) const {
    return {p.hidden_dropout, p.seed, site * 4 + k, rows.padded()};
  }
};

// What a layer stack keeps for its backward pass.
struct StackSaved {
  std::vector<Tensor> xs;          // the input rows of each layer
  std::vector<LayerSaved> layers;  // one per layer (none with gradient checkpointing)
  Rows rows, last;                 // what every layer but the last computes, and the last
  int64_t B = 0, L = 0;
  bool causal = false;
  Tensor mask;
};

// The encoder layers of a tower, with the rows each computes (Rows).
struct LayerStack {
  std::vector<EncoderLayer> layers;
  // Plans the rows: pooled (pos: the pooled position of each sequence, host) keeps only those rows
  // in the last layer, and drops padding (mask, host, 0 = pad) from every layer when no pooled row
  // is padding. Without `pooled`, every row of every layer.
  static void plan(Pass& p, Indices& ix, const int32_t* mask, int64_t B, int64_t L, const std::vector<int32_t>* pooled,
                   Rows* rows, Rows* last);
  // x [B*L, C] (padded) -> the last layer's output rows [R, C].
  Tensor forward(Pass& p, const Tensor& x, int64_t B, int64_t L, bool causal, const Tensor* mask, const Rows& rows,
                 const Rows& last, StackSaved* s) const;
  // dy [R, C] -> dx [B*L, C] (padded rows get 0), or, with dx null, only the gradients of the
  // layers that train.
  void backward(Pass& p, const Tensor& dy, const Tensor* dx, StackSaved& s);
};

// Loads num_layers layers under r.prefix() + sub + "<i>."; refuses a tower without layers.
void load_layers(LayerStack& stack, ParamSet& ps, const WeightReader& r, const std::string& sub, int num_layers,
                 const std::vector<std::string>& attn, const std::string mlp[2], const std::string lns[2], int64_t C,
                 int64_t heads, int64_t I, backend::Act a, float eps, bool pre_ln, const LoadPlan& plan);

}  // namespace clipkit::model
