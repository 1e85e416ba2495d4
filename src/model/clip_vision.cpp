#include "model/clip_vision.h"

namespace clipkit::model {

void ClipVisionTower::load(ParamSet& ps, const WeightReader& r, const VisionConfig& c, const LoadPlan& plan) {
  cfg_ = c;
  const int64_t C = c.hidden_size, P = c.patch_size, T = c.num_patches() + 1, CH = c.num_channels;
  cls_ = ps.add(r, "embeddings.class_embedding", {C}, plan, -1, true);
  patch_.load(ps, r, {"embeddings.patch_embedding."}, C, CH * P * P, false, plan, -1, {C, CH, P, P});
  pos_ = ps.add(r, "embeddings.position_embedding.weight", {T, C}, plan, -1, true);
  pre_ln_.load(ps, r.sub("pre_layrnorm."), C, c.layer_norm_eps, plan, -1);
  const std::string mlp[2] = {"mlp.fc1.", "mlp.fc2."}, lns[2] = {"layer_norm1.", "layer_norm2."};
  load_layers(stack_, ps, r, "encoder.layers.", c.num_layers,
              {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "self_attn.out_proj."}, mlp, lns, C,
              c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps, /*pre_ln=*/true, plan);
  post_ln_.load(ps, r.sub("post_layernorm."), C, c.layer_norm_eps, plan, c.num_layers);
}

Tensor ClipVisionTower::forward(Pass& p, const float* pixels, int64_t N, TowerSaved* s, Tensor* hidden) const {
  const int64_t C = cfg_.hidden_size, NP = cfg_.num_patches(), T = NP + 1;
  const backend::PatchShape ps{N, cfg_.num_channels, cfg_.image_size, cfg_.patch_size};
  Indices local;
  if (s) *s = {};
  Indices& ix = s ? s->indices : local;
  Tensor cols = p.alloc({ps.patches(), ps.K()}), pe = p.alloc({ps.patches(), C});
  p.be.im2col(p.be.input(p.arena, pixels, DType::F32, {N, ps.CH, ps.S, ps.S}), ps, cols);
  patch_.forward(p, cols, pe, {}, s ? &s->patch_x : nullptr);
  // x0 = [class token; patch embeddings] + position embeddings
  std::vector<int32_t> pos(static_cast<size_t>(N * T)), cls(pos.size()), patch_rows(static_cast<size_t>(N * NP));
  for (int64_t r = 0; r < N * T; ++r) pos[r] = static_cast<int32_t>(r % T), cls[r] = r % T == 0 ? 0 : -1;
  for (int64_t k = 0; k < N * NP; ++k) patch_rows[k] = static_cast<int32_t>(k / NP * T + 1 + k % NP);
  const Tensor &pos_ids = ix.add(p, pos), &cls_ids = ix.add(p, cls), &prows = ix.add(p, patch_rows);
  Tensor x0 = p.alloc({N * T, C});
  p.be.embedding(pos_.value, pos_ids, x0, false);
  p.be.embedding(cls_.value, cls_ids, x0, true);
  p.be.scatter_add_rows(pe, prows, x0);
  Tensor x1 = s ? p.alloc({N * T, C}) : x0;
  pre_ln_.forward(p, x0, x1, s ? &s->embed_stats : nullptr);
  std::vector<int32_t> cls_rows(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) cls_rows[n] = static_cast<int32_t>(n * T);
  Rows rows, last;
  LayerStack::plan(p, ix, nullptr, N, T, hidden ? nullptr : &cls_rows, &rows, &last);
  Tensor h = stack_.forward(p, x1, N, T, false, nullptr, rows, last, s ? &s->stack : nullptr), top = h;
  if (hidden) {
    *hidden = h;
    top = p.alloc({N, C});
    p.be.gather_rows(h, ix.add(p, cls_rows), top);
  }
  Tensor pooled = p.alloc({N, C});
  post_ln_.forward(p, top, pooled, s ? &s->top_stats : nullptr);
  if (s) s->positions = pos_ids, s->extra = cls_ids, s->patch_rows = prows, s->embed_in = x0, s->top_in = top;
  return pooled;
}

void ClipVisionTower::backward(Pass& p, const Tensor& dpooled, TowerSaved& s) {
  const int64_t C = cfg_.hidden_size, NP = cfg_.num_patches(), N = dpooled.rows(), T = NP + 1;
  Tensor dtop = p.alloc({N, C});
  post_ln_.backward(p, dpooled, s.top_in, s.top_stats, &dtop, false);
  const bool embeddings = patch_.w.grad.defined();
  Tensor dx1 = embeddings ? p.alloc({N * T, C}) : Tensor();
  stack_.backward(p, dtop, embeddings ? &dx1 : nullptr, s.stack);
  if (!embeddings) return;
  Tensor dx0 = p.alloc({N * T, C}), dpe = p.alloc({N * NP, C});
  pre_ln_.backward(p, dx1, s.embed_in, s.embed_stats, &dx0, false);
  p.be.embedding_backward(dx0, s.positions, pos_.grad, -1);
  p.be.embedding_backward(dx0, s.extra, cls_.grad, -1);
  p.be.gather_rows(dx0, s.patch_rows, dpe);
  patch_.backward(p, s.patch_x, {}, dpe, nullptr, false);
}

}  // namespace clipkit::model
