#include "model/clip_text.h"

#include <cstring>

#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::model {

static const char* const kClipAttnNames[4] = {"q_proj.", "k_proj.", "v_proj.", "out_proj."};

int64_t eos_position(const int32_t* ids, int64_t L, int eos_token_id) {
  int64_t best = 0;
  if (eos_token_id == 2) {  // legacy configs: the EOS token has the largest id in the CLIP vocab
    for (int64_t l = 1; l < L; ++l)
      if (ids[l] > ids[best]) best = l;
    return best;
  }
  for (int64_t l = 0; l < L; ++l)
    if (ids[l] == eos_token_id) return l;
  return 0;  // HF: argmax of an all-zero comparison
}

void ClipTextTower::load(const WeightReader& w, const TextConfig& c, ops::Precision p) {
  cfg_ = c;
  const int64_t C = c.hidden_size;
  token_embedding_ = w.get("embeddings.token_embedding.weight", {c.vocab_size, C});
  position_embedding_ = w.get("embeddings.position_embedding.weight", {c.max_position_embeddings, C});
  final_ln_.load(w.sub("final_layer_norm."), C, c.layer_norm_eps);
  layers_ = std::vector<EncoderLayer>(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    auto lw = w.sub("encoder.layers." + std::to_string(i) + ".");
    auto& L = layers_[static_cast<size_t>(i)];
    L.pre_ln = true;
    L.ln1.load(lw.sub("layer_norm1."), C, c.layer_norm_eps);
    L.ln2.load(lw.sub("layer_norm2."), C, c.layer_norm_eps);
    L.attn.load(lw.sub("self_attn."), kClipAttnNames, C, c.num_heads, p);
    L.mlp.load(lw.sub("mlp."), "fc1.", "fc2.", C, c.intermediate_size, c.act, p);
  }
}

TowerOutput ClipTextTower::forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const {
  const int64_t C = cfg_.hidden_size;
  if (L > cfg_.max_position_embeddings)
    fail("text of {} tokens is longer than the model's {} positions (truncate it)", L, cfg_.max_position_embeddings);
  for (int64_t i = 0; i < B * L; ++i)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size) fail("token id {} is outside the vocabulary (size {})", ids[i], cfg_.vocab_size);
  Tensor h = Tensor::empty(DType::F32, {B, L, C});
  float* x = h.ptr<float>();
  parallel_for(B * L, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* tok = token_embedding_.data() + static_cast<int64_t>(ids[r]) * C;
      const float* pos = position_embedding_.data() + (r % L) * C;
      for (int64_t c = 0; c < C; ++c) x[r * C + c] = tok[c] + pos[c];
    }
  }, 16);
  for (auto& layer : layers_) layer.forward(x, B, L, /*causal=*/true, mask);
  final_ln_.forward(x, x, B * L);
  TowerOutput out;
  out.pooled = Tensor::empty(DType::F32, {B, C});
  for (int64_t b = 0; b < B; ++b) {
    int64_t pos = eos_position(ids + b * L, L, cfg_.eos_token_id);
    std::memcpy(out.pooled.ptr<float>() + b * C, x + (b * L + pos) * C, sizeof(float) * C);
  }
  if (want_hidden) out.last_hidden_state = std::move(h);
  return out;
}

int64_t ClipTextTower::param_count() const {
  int64_t n = static_cast<int64_t>(token_embedding_.size() + position_embedding_.size()) + model::param_count(final_ln_);
  for (auto& L : layers_) n += model::param_count(L);
  return n;
}

}  // namespace clipkit::model
