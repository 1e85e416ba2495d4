#include "model/clip_vision.h"

#include <cstring>

#include "core/parallel.h"
#include "core/profile.h"
#include "ops/workspace.h"

namespace clipkit::model {

// workspace slots above the ones the encoder blocks use
enum Slot { kPatchCols = 8, kPatchEmbeds, kResidual };

static const char* const kClipAttnNames[4] = {"q_proj.", "k_proj.", "v_proj.", "out_proj."};

void ClipVisionTower::load(const WeightReader& w, const VisionConfig& c, ops::Precision p) {
  cfg_ = c;
  const int64_t C = c.hidden_size, P = c.patch_size, T = c.num_patches() + 1;
  auto pw = w.get("embeddings.patch_embedding.weight", {C, c.num_channels, P, P});
  patch_embed_.init(pw.data(), nullptr, C, c.num_channels * P * P, p);
  class_embedding_ = w.get("embeddings.class_embedding", {C});
  position_embedding_ = w.get("embeddings.position_embedding.weight", {T, C});
  pre_ln_.load(w.sub("pre_layrnorm."), C, c.layer_norm_eps);
  post_ln_.load(w.sub("post_layernorm."), C, c.layer_norm_eps);
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

TowerOutput ClipVisionTower::forward(const float* pixels, int64_t N, bool want_hidden) const {
  const int64_t C = cfg_.hidden_size, P = cfg_.patch_size, S = cfg_.image_size, G = S / P, NP = G * G, T = NP + 1;
  const int64_t CH = cfg_.num_channels, K = CH * P * P;
  // im2col: patches [N*NP, CH*P*P] in (c, ky, kx) order, matching the conv weight layout.
  auto& ws = ops::Workspace::local();
  ProfileScope prof_embed("vision embeddings");
  float* cols = ws.get(kPatchCols, static_cast<size_t>(N * NP * K));
  parallel_for(N * NP, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / NP, py = (r % NP) / G, px = r % G;
      float* dst = cols + r * K;
      for (int64_t c = 0; c < CH; ++c)
        for (int64_t ky = 0; ky < P; ++ky) {
          const float* src = pixels + ((n * CH + c) * S + py * P + ky) * S + px * P;
          std::memcpy(dst + (c * P + ky) * P, src, sizeof(float) * P);
        }
    }
  }, 16);
  float* pe = ws.get(kPatchEmbeds, static_cast<size_t>(N * NP * C));
  patch_embed_.forward(cols, N * NP, pe);
  // the residual stream lives in the workspace unless the caller wants the hidden states back
  Tensor h;
  float* x;
  if (want_hidden) {
    h = Tensor::empty(DType::F32, {N, T, C});
    x = h.ptr<float>();
  } else {
    x = ws.get(kResidual, static_cast<size_t>(N * T * C));
  }
  parallel_for(N * T, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / T, t = r % T;
      const float* src = t == 0 ? class_embedding_.data() : pe + (n * NP + t - 1) * C;
      const float* pos = position_embedding_.data() + t * C;
      float* dst = x + r * C;
      for (int64_t c = 0; c < C; ++c) dst[c] = src[c] + pos[c];
    }
  }, 16);
  pre_ln_.forward(x, x, N * T);
  for (auto& L : layers_) L.forward(x, N, T, /*causal=*/false, /*key_mask=*/nullptr);
  TowerOutput out;
  out.pooled = Tensor::empty(DType::F32, {N, C});
  for (int64_t n = 0; n < N; ++n) post_ln_.forward(x + n * T * C, out.pooled.ptr<float>() + n * C, 1);
  if (want_hidden) out.last_hidden_state = std::move(h);
  return out;
}

int64_t ClipVisionTower::param_count() const {
  int64_t n = model::param_count(patch_embed_) + static_cast<int64_t>(class_embedding_.size() + position_embedding_.size()) +
              model::param_count(pre_ln_) + model::param_count(post_ln_);
  for (auto& L : layers_) n += model::param_count(L);
  return n;
}

}  // namespace clipkit::model
