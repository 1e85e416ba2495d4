#include "train/trainable_towers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "model/clip_text.h"
#include "ops/embedding.h"
#include "ops/patch_embed.h"
#include "ops/tanh.h"

namespace clipkit::train {
namespace {

template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

const char* const kClipAttn[4] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "self_attn.out_proj."};
const char* const kClipMlp[2] = {"mlp.fc1.", "mlp.fc2."};
const char* const kClipLns[2] = {"layer_norm1.", "layer_norm2."};
const char* const kBertAttn[4] = {"attention.self.query.", "attention.self.key.", "attention.self.value.",
                                  "attention.output.dense."};
const char* const kBertMlp[2] = {"intermediate.dense.", "output.dense."};
const char* const kBertLns[2] = {"attention.output.LayerNorm.", "output.LayerNorm."};

constexpr uint64_t kEmbeddingDropoutSite = 1ull << 40;

void load_layers(LayerStack& s, const model::WeightReader& w, const std::string& sub, int n, int64_t C, int64_t heads,
                 int64_t I, ops::Act act, float eps, bool pre_ln, Registry& reg) {
  const bool clip = pre_ln;
  if (n < 1) {
    const std::string where = w.prefix() + sub;  // e.g. "text_model.encoder.layers."
    fail("{}: no encoder layers (num_hidden_layers is {}); training needs at least one",
         where.substr(0, where.size() - 1), n);
  }
  s.layers = std::vector<TEncoderLayer>(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::string p = sub + std::to_string(i) + ".";
    auto& L = s.layers[static_cast<size_t>(i)];
    L.load(w.sub(p), clip ? kClipAttn : kBertAttn, clip ? kClipMlp : kBertMlp, clip ? kClipLns : kBertLns, C, heads, I,
           act, eps, pre_ln);
    L.site = static_cast<uint64_t>(i + 1);
    L.reg(reg, w.prefix() + p, clip ? kClipAttn : kBertAttn, clip ? kClipMlp : kBertMlp, clip ? kClipLns : kBertLns, i);
  }
}

void sum_rows_into(const float* x, int64_t rows, int64_t stride, int64_t C, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) out[c] += x[r * stride + c];
}

}  // namespace

// ---- LayerStack ----

void LayerStack::forward(const float* x, int64_t B, int64_t L, bool causal, const int32_t* mask, const StepContext& sc,
                         uint64_t step_seed, bool keep, bool pooled_only, const int64_t* pos) {
  const size_t n = layers.size();
  CLIPKIT_ASSERT(n > 0);
  const int64_t C = layers[0].C, M = B * L;
  B_ = B;
  L_ = L;
  causal_ = causal;
  seed_ = step_seed;
  ckpt_ = gradient_checkpointing || !keep;
  if (mask) mask_.assign(mask, mask + M);
  else mask_.clear();
  plan_rows(pooled_only, pos);
  const int64_t R = rows_.rows_in(M);
  xs_.resize(n + 1);
  for (auto& v : xs_) grow(v, R * C);
  caches_.resize(ckpt_ ? 1 : n);
  rows_.gather_in(x, M, C, xs_[0].data());  // the input rows (all, or the real tokens)
  for (size_t i = 0; i < n; ++i)
    layers[i].forward(xs_[i].data(), xs_[i + 1].data(), B, L, causal, mask_.empty() ? nullptr : mask_.data(),
                      caches_[ckpt_ ? 0 : i], sc, seed_, rows_for(i));
}

// The rows each layer computes: without pooling, all of them. With pooling, the last layer keeps
// one row per sequence, and padding (mask 0) is dropped from every layer when no pooled row is
// padding: a padded token is never attended to (its key is masked), so it cannot reach a pooled row.
void LayerStack::plan_rows(bool pooled_only, const int64_t* pos) {
  const int64_t M = B_ * L_;
  in_.clear();
  out_.clear();
  rows_ = {};
  last_ = {};
  if (!pooled_only) return;
  std::vector<int64_t> pooled(static_cast<size_t>(B_));
  for (int64_t b = 0; b < B_; ++b) pooled[b] = b * L_ + (pos ? pos[b] : 0);
  const int64_t real = std::count_if(mask_.begin(), mask_.end(), [](int32_t m) { return m != 0; });
  bool unpad = !mask_.empty() && real < M;
  for (int64_t p : pooled) unpad = unpad && mask_[p] != 0;
  if (unpad) {
    // the real tokens, plus padded rows up to a multiple of 16 (computing a padded row is harmless,
    // and oneDNN's bf16 matmuls run at half speed on odd row counts)
    int64_t extra = (16 - real % 16) % 16;
    for (int64_t r = 0; r < M; ++r)
      if (mask_[r] != 0 || (extra > 0 && extra--)) in_.push_back(r);
  }
  for (int64_t p : pooled)  // pooled rows as indices into the input rows (in_ is sorted)
    out_.push_back(unpad ? std::lower_bound(in_.begin(), in_.end(), p) - in_.begin() : p);
  if (unpad) rows_ = {in_.data(), static_cast<int64_t>(in_.size()), nullptr, 0};
  last_ = rows_;
  last_.out = out_.data();
  last_.n_out = B_;
}

const LayerRows& LayerStack::rows_for(size_t i) const { return i + 1 == layers.size() ? last_ : rows_; }

void LayerStack::backward(const float* dy, float* dx, int freeze_depth, const StepContext& sc) {
  const int n = static_cast<int>(layers.size());
  const int64_t C = layers[0].C, M = B_ * L_, R = rows_.rows_in(M);
  const int stop = dx ? 0 : std::max(freeze_depth, 0);
  std::vector<float> g(static_cast<size_t>(R * C)), gn(static_cast<size_t>(R * C)), tmp;
  std::memcpy(g.data(), dy, sizeof(float) * last_.rows_out(M) * C);
  const int32_t* mask = mask_.empty() ? nullptr : mask_.data();
  for (int i = n - 1; i >= stop; --i) {
    LayerCache& c = caches_[ckpt_ ? 0 : static_cast<size_t>(i)];
    const LayerRows& rows = rows_for(static_cast<size_t>(i));
    if (ckpt_) {  // recompute this layer's activations from its saved input
      grow(tmp, R * C);
      layers[static_cast<size_t>(i)].forward(xs_[static_cast<size_t>(i)].data(), tmp.data(), B_, L_, causal_, mask, c,
                                             sc, seed_, rows);
    }
    float* out = (i == 0 && dx) ? gn.data() : (i == stop ? nullptr : gn.data());
    layers[static_cast<size_t>(i)].backward(xs_[static_cast<size_t>(i)].data(), g.data(), out, B_, L_, c,
                                            i >= freeze_depth, sc, seed_, rows);
    std::swap(g, gn);
  }
  // g holds d(input rows): back to the padded layout (padding gets exactly zero, as in the full stack)
  if (dx) rows_.scatter_in(g.data(), M, C, dx);
}

// ---- vision ----

void TVisionTower::load(const model::WeightReader& w, const model::VisionConfig& c, const TowerOptions& o,
                        Registry& reg) {
  cfg_ = c;
  opt_ = o;
  const int64_t C = c.hidden_size, P = c.patch_size, T = c.num_patches() + 1, CH = c.num_channels;
  patch_.init(w.get("embeddings.patch_embedding.weight", {C, CH, P, P}), {}, C, CH * P * P);
  cls_ = w.get("embeddings.class_embedding", {C});
  pos_ = w.get("embeddings.position_embedding.weight", {T, C});
  cls_g_.assign(cls_.size(), 0.0f);
  pos_g_.assign(pos_.size(), 0.0f);
  pre_ln_.load(w.sub("pre_layrnorm."), C, c.layer_norm_eps);
  post_ln_.load(w.sub("post_layernorm."), C, c.layer_norm_eps);
  const std::string& p = w.prefix();
  reg.push_back({p + "embeddings.class_embedding", {C}, cls_.data(), cls_g_.data(), C, -1});
  reg.push_back({p + "embeddings.patch_embedding.weight", {C, CH, P, P}, patch_.w.data(), patch_.gw.data(),
                 C * CH * P * P, -1, &patch_.grad_state});
  reg.push_back({p + "embeddings.position_embedding.weight", {T, C}, pos_.data(), pos_g_.data(), T * C, -1});
  pre_ln_.reg(reg, p + "pre_layrnorm.", -1);
  load_layers(stack_, w, "encoder.layers.", c.num_layers, C, c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps,
              true, reg);
  post_ln_.reg(reg, p + "post_layernorm.", c.num_layers);
  stack_.gradient_checkpointing = o.gradient_checkpointing;
}

void TVisionTower::forward(const float* pixels, int64_t N, float* pooled, const StepContext& sc, uint64_t step_seed) {
  const int64_t C = cfg_.hidden_size, NP = cfg_.num_patches(), T = NP + 1;
  const ops::PatchShape ps{N, cfg_.num_channels, cfg_.image_size, cfg_.patch_size};
  N_ = N;
  grow(cols_, ps.patches() * ps.K());
  std::vector<float> pe(static_cast<size_t>(N * NP * C));
  ops::im2col_patches(pixels, ps, cols_.data());
  patch_.forward(cols_.data(), ps.patches(), pe.data(), sc, &cols_b_);
  grow(x0_, N * T * C);
  parallel_for(N * T, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / T, t = r % T;
      const float* src = t == 0 ? cls_.data() : pe.data() + (n * NP + t - 1) * C;
      const float* pos = pos_.data() + t * C;
      for (int64_t c = 0; c < C; ++c) x0_[r * C + c] = src[c] + pos[c];
    }
  }, 16);
  grow(x1_, N * T * C);
  grow(pre_mean_, N * T);
  grow(pre_rstd_, N * T);
  pre_ln_.forward(x0_.data(), x1_.data(), N * T, pre_mean_.data(), pre_rstd_.data());
  stack_.forward(x1_.data(), N, T, false, nullptr, sc, step_seed, sc.training, /*pooled_only=*/true);
  grow(cls_rows_, N * C);
  grow(post_mean_, N);
  grow(post_rstd_, N);
  std::memcpy(cls_rows_.data(), stack_.out(), sizeof(float) * N * C);  // the CLS rows
  post_ln_.forward(cls_rows_.data(), pooled, N, post_mean_.data(), post_rstd_.data());
}

void TVisionTower::backward(const float* dpooled, const StepContext& sc) {
  const int64_t C = cfg_.hidden_size, NP = cfg_.num_patches(), T = NP + 1, N = N_;
  const int top = cfg_.num_layers;
  std::vector<float> dcls(static_cast<size_t>(N * C));
  post_ln_.backward(dpooled, cls_rows_.data(), post_mean_.data(), post_rstd_.data(), N, dcls.data(), false,
                    top >= opt_.freeze_depth);
  const bool emb = opt_.freeze_depth < 0;
  std::vector<float> dx1(emb ? static_cast<size_t>(N * T * C) : 0);
  stack_.backward(dcls.data(), emb ? dx1.data() : nullptr, opt_.freeze_depth, sc);
  if (!emb) return;
  std::vector<float> dx0(static_cast<size_t>(N * T * C));
  pre_ln_.backward(dx1.data(), x0_.data(), pre_mean_.data(), pre_rstd_.data(), N * T, dx0.data(), false, true);
  std::vector<float> dpe(static_cast<size_t>(N * NP * C));
  for (int64_t n = 0; n < N; ++n) {
    sum_rows_into(dx0.data() + n * T * C, 1, T * C, T * C, pos_g_.data());  // row t of image n -> position t
    sum_rows_into(dx0.data() + n * T * C, 1, C, C, cls_g_.data());
    std::memcpy(dpe.data() + n * NP * C, dx0.data() + (n * T + 1) * C, sizeof(float) * NP * C);
  }
  const ops::PatchShape ps{N, cfg_.num_channels, cfg_.image_size, cfg_.patch_size};
  patch_.backward(cols_.data(), dpe.data(), ps.patches(), nullptr, false, true, sc, &cols_b_);
}

// ---- CLIP text ----

void TClipTextTower::load(const model::WeightReader& w, const model::TextConfig& c, const TowerOptions& o,
                          Registry& reg) {
  cfg_ = c;
  opt_ = o;
  const int64_t C = c.hidden_size;
  tok_ = w.get("embeddings.token_embedding.weight", {c.vocab_size, C});
  pos_ = w.get("embeddings.position_embedding.weight", {c.max_position_embeddings, C});
  tok_g_.assign(tok_.size(), 0.0f);
  pos_g_.assign(pos_.size(), 0.0f);
  final_ln_.load(w.sub("final_layer_norm."), C, c.layer_norm_eps);
  const std::string& p = w.prefix();
  reg.push_back({p + "embeddings.token_embedding.weight", {c.vocab_size, C}, tok_.data(), tok_g_.data(),
                 static_cast<int64_t>(tok_.size()), -1});
  reg.push_back({p + "embeddings.position_embedding.weight", {c.max_position_embeddings, C}, pos_.data(),
                 pos_g_.data(), static_cast<int64_t>(pos_.size()), -1});
  load_layers(stack_, w, "encoder.layers.", c.num_layers, C, c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps,
              true, reg);
  final_ln_.reg(reg, p + "final_layer_norm.", c.num_layers);
  stack_.gradient_checkpointing = o.gradient_checkpointing;
}

void TClipTextTower::forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* pooled,
                             const StepContext& sc, uint64_t step_seed) {
  const int64_t C = cfg_.hidden_size;
  if (L > cfg_.max_position_embeddings)
    fail("text of {} tokens is longer than the model's {} positions (truncate it)", L, cfg_.max_position_embeddings);
  for (int64_t i = 0; i < B * L; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size) fail("token id {} is outside the vocabulary (size {})", ids[i], cfg_.vocab_size);
  B_ = B;
  L_ = L;
  ids_.assign(ids, ids + B * L);
  pos_ids_.resize(static_cast<size_t>(B * L));
  for (int64_t i = 0; i < B * L; ++i) pos_ids_[i] = static_cast<int32_t>(i % L);
  grow(x0_, B * L * C);
  ops::embedding_forward(tok_.data(), ids, B * L, C, x0_.data(), false);
  ops::embedding_forward(pos_.data(), pos_ids_.data(), B * L, C, x0_.data(), true);
  eos_.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) eos_[b] = model::eos_position(ids + b * L, L, cfg_.eos_token_id);
  stack_.forward(x0_.data(), B, L, true, mask, sc, step_seed, sc.training, /*pooled_only=*/true, eos_.data());
  grow(eos_rows_, B * C);
  grow(fin_mean_, B);
  grow(fin_rstd_, B);
  // final_layer_norm is row-wise, so only the pooled (EOS) rows need it
  std::memcpy(eos_rows_.data(), stack_.out(), sizeof(float) * B * C);
  final_ln_.forward(eos_rows_.data(), pooled, B, fin_mean_.data(), fin_rstd_.data());
}

void TClipTextTower::backward(const float* dpooled, const StepContext& sc) {
  const int64_t C = cfg_.hidden_size, B = B_, L = L_;
  std::vector<float> drow(static_cast<size_t>(B * C));
  final_ln_.backward(dpooled, eos_rows_.data(), fin_mean_.data(), fin_rstd_.data(), B, drow.data(), false,
                     cfg_.num_layers >= opt_.freeze_depth);
  const bool emb = opt_.freeze_depth < 0;
  std::vector<float> dx0(emb ? static_cast<size_t>(B * L * C) : 0);
  stack_.backward(drow.data(), emb ? dx0.data() : nullptr, opt_.freeze_depth, sc);
  if (!emb) return;
  ops::embedding_backward(dx0.data(), ids_.data(), B * L, C, tok_g_.data());
  ops::embedding_backward(dx0.data(), pos_ids_.data(), B * L, C, pos_g_.data());
}

// ---- RoBERTa ----

void TRobertaTower::load(const model::WeightReader& w, const model::TextConfig& c, const TowerOptions& o,
                         Registry& reg) {
  cfg_ = c;
  opt_ = o;
  const int64_t C = c.hidden_size;
  const std::string& p = w.prefix();
  word_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, C});
  pos_ = w.get("embeddings.position_embeddings.weight", {c.max_position_embeddings, C});
  word_g_.assign(word_.size(), 0.0f);
  pos_g_.assign(pos_.size(), 0.0f);
  reg.push_back({p + "embeddings.word_embeddings.weight", {c.vocab_size, C}, word_.data(), word_g_.data(),
                 static_cast<int64_t>(word_.size()), -1});
  reg.push_back({p + "embeddings.position_embeddings.weight", {c.max_position_embeddings, C}, pos_.data(),
                 pos_g_.data(), static_cast<int64_t>(pos_.size()), -1});
  if (c.type_vocab_size > 0) {
    type_ = w.get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, C});
    type_g_.assign(type_.size(), 0.0f);
    reg.push_back({p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, C}, type_.data(), type_g_.data(),
                   static_cast<int64_t>(type_.size()), -1});
  }
  emb_ln_.load(w.sub("embeddings.LayerNorm."), C, c.layer_norm_eps);
  emb_ln_.reg(reg, p + "embeddings.LayerNorm.", -1);
  load_layers(stack_, w, "encoder.layer.", c.num_layers, C, c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps,
              false, reg);
  has_pooler_ = w.has("pooler.dense.weight");
  if (has_pooler_) {
    pooler_.init(w.get("pooler.dense.weight", {C, C}), w.get("pooler.dense.bias", {C}), C, C);
    pooler_.reg(reg, p + "pooler.dense.weight", p + "pooler.dense.bias", c.num_layers);
  }
  stack_.gradient_checkpointing = o.gradient_checkpointing;
}

void TRobertaTower::forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* pooled,
                            const StepContext& sc, uint64_t step_seed) {
  const int64_t C = cfg_.hidden_size;
  const int pad = cfg_.pad_token_id;
  for (int64_t i = 0; i < B * L; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size) fail("token id {} is outside the vocabulary (size {})", ids[i], cfg_.vocab_size);
  B_ = B;
  L_ = L;
  seed_ = step_seed;
  ids_.assign(ids, ids + B * L);
  pos_ids_.resize(static_cast<size_t>(B * L));
  for (int64_t b = 0; b < B; ++b) {
    int32_t run = 0;
    for (int64_t l = 0; l < L; ++l) {
      const bool real = ids[b * L + l] != pad;
      run += real;
      pos_ids_[b * L + l] = real ? run + pad : pad;
      if (pos_ids_[b * L + l] >= cfg_.max_position_embeddings)
        fail("text of {} tokens is longer than the model's {} positions (truncate it)", run,
             cfg_.max_position_embeddings - pad - 1);
    }
  }
  zeros_.assign(static_cast<size_t>(B * L), 0);
  grow(e_, B * L * C);
  ops::embedding_forward(word_.data(), ids, B * L, C, e_.data(), false);
  ops::embedding_forward(pos_.data(), pos_ids_.data(), B * L, C, e_.data(), true);
  if (!type_.empty()) ops::embedding_forward(type_.data(), zeros_.data(), B * L, C, e_.data(), true);
  grow(x0_, B * L * C);
  grow(emb_mean_, B * L);
  grow(emb_rstd_, B * L);
  emb_ln_.forward(e_.data(), x0_.data(), B * L, emb_mean_.data(), emb_rstd_.data());
  if (sc.training) dropout_apply(x0_.data(), B * L * C, sc.hidden_dropout, step_seed, kEmbeddingDropoutSite);
  stack_.forward(x0_.data(), B, L, false, mask, sc, step_seed, sc.training, /*pooled_only=*/true);
  grow(first_, B * C);
  std::memcpy(first_.data(), stack_.out(), sizeof(float) * B * C);  // the first token's rows
  if (has_pooler_) {
    grow(pooled_, B * C);
    pooler_.forward(first_.data(), B, pooled_.data(), sc);
    ops::tanh_forward(pooled_.data(), pooled_.data(), B * C);
    std::memcpy(pooled, pooled_.data(), sizeof(float) * B * C);
  } else {
    std::memcpy(pooled, first_.data(), sizeof(float) * B * C);
  }
}

void TRobertaTower::backward(const float* dpooled, const StepContext& sc) {
  const int64_t C = cfg_.hidden_size, B = B_, L = L_;
  std::vector<float> dfirst(dpooled, dpooled + B * C);
  if (has_pooler_) {
    std::vector<float> dz(static_cast<size_t>(B * C));
    ops::tanh_backward(pooled_.data(), dpooled, dz.data(), B * C);
    pooler_.backward(first_.data(), dz.data(), B, dfirst.data(), false, cfg_.num_layers >= opt_.freeze_depth, sc);
  }
  const bool emb = opt_.freeze_depth < 0;
  std::vector<float> dx0(emb ? static_cast<size_t>(B * L * C) : 0);
  stack_.backward(dfirst.data(), emb ? dx0.data() : nullptr, opt_.freeze_depth, sc);
  if (!emb) return;
  if (sc.training) dropout_apply(dx0.data(), B * L * C, sc.hidden_dropout, seed_, kEmbeddingDropoutSite);
  std::vector<float> de(static_cast<size_t>(B * L * C));
  emb_ln_.backward(dx0.data(), e_.data(), emb_mean_.data(), emb_rstd_.data(), B * L, de.data(), false, true);
  const int32_t pad = cfg_.pad_token_id;  // HF padding_idx: the pad rows never get gradient
  ops::embedding_backward(de.data(), ids_.data(), B * L, C, word_g_.data(), pad);
  ops::embedding_backward(de.data(), pos_ids_.data(), B * L, C, pos_g_.data(), pad);
  if (!type_.empty()) ops::embedding_backward(de.data(), zeros_.data(), B * L, C, type_g_.data());
}

}  // namespace clipkit::train
