#include "model/roberta.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::model {

static const char* const kBertAttnNames[4] = {"attention.self.query.", "attention.self.key.", "attention.self.value.",
                                              "attention.output.dense."};

void RobertaTextTower::load(const WeightReader& w, const TextConfig& c, ops::Precision p) {
  cfg_ = c;
  const int64_t C = c.hidden_size;
  word_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, C});
  position_ = w.get("embeddings.position_embeddings.weight", {c.max_position_embeddings, C});
  if (c.type_vocab_size > 0) token_type_ = w.get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, C});
  emb_ln_.load(w.sub("embeddings.LayerNorm."), C, c.layer_norm_eps);
  layers_ = std::vector<EncoderLayer>(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    auto lw = w.sub("encoder.layer." + std::to_string(i) + ".");
    auto& L = layers_[static_cast<size_t>(i)];
    L.pre_ln = false;
    L.ln1.load(lw.sub("attention.output.LayerNorm."), C, c.layer_norm_eps);
    L.ln2.load(lw.sub("output.LayerNorm."), C, c.layer_norm_eps);
    L.attn.load(lw, kBertAttnNames, C, c.num_heads, p);
    L.mlp.load(lw, "intermediate.dense.", "output.dense.", C, c.intermediate_size, c.act, p);
  }
  has_pooler_ = w.has("pooler.dense.weight");
  if (has_pooler_) {
    auto pw = w.get("pooler.dense.weight", {C, C});
    auto pb = w.get("pooler.dense.bias", {C});
    pooler_.init(pw.data(), pb.data(), C, C, p);
  }
}

TowerOutput RobertaTextTower::forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const {
  const int64_t C = cfg_.hidden_size;
  const int pad = cfg_.pad_token_id;
  for (int64_t i = 0; i < B * L; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size) fail("token id {} is outside the vocabulary (size {})", ids[i], cfg_.vocab_size);
  std::vector<int32_t> pos(static_cast<size_t>(B * L));
  for (int64_t b = 0; b < B; ++b) {
    int32_t run = 0;
    for (int64_t l = 0; l < L; ++l) {
      const bool real = ids[b * L + l] != pad;
      run += real;
      pos[b * L + l] = real ? run + pad : pad;
      if (pos[b * L + l] >= cfg_.max_position_embeddings)
        fail("text of {} tokens is longer than the model's {} positions (truncate it)", run, max_positions());
    }
  }
  Tensor h = Tensor::empty(DType::F32, {B, L, C});
  float* x = h.ptr<float>();
  parallel_for(B * L, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* wv = word_.data() + static_cast<int64_t>(ids[r]) * C;
      const float* pv = position_.data() + static_cast<int64_t>(pos[r]) * C;
      for (int64_t c = 0; c < C; ++c) x[r * C + c] = wv[c] + pv[c] + (token_type_.empty() ? 0.0f : token_type_[c]);
    }
  }, 16);
  emb_ln_.forward(x, x, B * L);
  for (auto& layer : layers_) layer.forward(x, B, L, /*causal=*/false, mask);
  TowerOutput out;
  out.pooled = Tensor::empty(DType::F32, {B, C});
  float* pooled = out.pooled.ptr<float>();
  std::vector<float> first(static_cast<size_t>(B * C));
  for (int64_t b = 0; b < B; ++b) std::memcpy(first.data() + b * C, x + b * L * C, sizeof(float) * C);
  if (has_pooler_) {
    pooler_.forward(first.data(), B, pooled);
    for (int64_t i = 0; i < B * C; ++i) pooled[i] = std::tanh(pooled[i]);
  } else {
    std::memcpy(pooled, first.data(), sizeof(float) * B * C);
  }
  if (want_hidden) out.last_hidden_state = std::move(h);
  return out;
}

int64_t RobertaTextTower::param_count() const {
  int64_t n = static_cast<int64_t>(word_.size() + position_.size() + token_type_.size()) + model::param_count(emb_ln_);
  for (auto& L : layers_) n += model::param_count(L);
  if (has_pooler_) n += model::param_count(pooler_);
  return n;
}

}  // namespace clipkit::model
