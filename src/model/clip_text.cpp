#include "model/clip_text.h"

#include "core/error.h"

namespace clipkit::model {

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

void check_token_ids(const int32_t* ids, int64_t n, int vocab_size) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size) fail("token id {} is outside the vocabulary (size {})", ids[i], vocab_size);
}

void ClipTextTower::load(ParamSet& ps, const WeightReader& r, const TextConfig& c, const LoadPlan& plan) {
  cfg_ = c;
  const int64_t C = c.hidden_size;
  tok_ = ps.add(r, "embeddings.token_embedding.weight", {c.vocab_size, C}, plan, -1, true);
  pos_ = ps.add(r, "embeddings.position_embedding.weight", {c.max_position_embeddings, C}, plan, -1, true);
  const std::string mlp[2] = {"mlp.fc1.", "mlp.fc2."}, lns[2] = {"layer_norm1.", "layer_norm2."};
  load_layers(stack_, ps, r, "encoder.layers.", c.num_layers,
              {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "self_attn.out_proj."}, mlp, lns, C,
              c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps, /*pre_ln=*/true, plan);
  final_ln_.load(ps, r.sub("final_layer_norm."), C, c.layer_norm_eps, plan, c.num_layers);
}

Tensor ClipTextTower::forward(Pass& p, const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, TowerSaved* s,
                              Tensor* hidden) const {
  const int64_t C = cfg_.hidden_size;
  if (L > cfg_.max_position_embeddings)
    fail("text of {} tokens is longer than the model's {} positions (truncate it)", L, cfg_.max_position_embeddings);
  check_token_ids(ids, B * L, cfg_.vocab_size);
  Indices local;
  if (s) *s = {};
  Indices& ix = s ? s->indices : local;
  std::vector<int32_t> pos(static_cast<size_t>(B * L)), eos(static_cast<size_t>(B));
  for (int64_t r = 0; r < B * L; ++r) pos[r] = static_cast<int32_t>(r % L);
  for (int64_t b = 0; b < B; ++b)
    eos[b] = static_cast<int32_t>(b * L + eos_position(ids + b * L, L, cfg_.eos_token_id));
  const Tensor &id_t = ix.add(p, std::vector<int32_t>(ids, ids + B * L)), &pos_t = ix.add(p, pos);
  const Tensor& mask_t = ix.add(p, std::vector<int32_t>(mask, mask + B * L));
  Tensor x0 = p.alloc({B * L, C});
  p.be.embedding(tok_.value, id_t, x0, false);
  p.be.embedding(pos_.value, pos_t, x0, true);
  Rows rows, last;
  LayerStack::plan(p, ix, mask, B, L, hidden ? nullptr : &eos, &rows, &last);
  Tensor h = stack_.forward(p, x0, B, L, /*causal=*/true, &mask_t, rows, last, s ? &s->stack : nullptr);
  Tensor pooled = p.alloc({B, C});
  if (hidden) {  // final_layer_norm is row-wise: all rows for the hidden states, else only the EOS rows
    final_ln_.forward(p, h, h);
    *hidden = h;
    p.be.gather_rows(h, ix.add(p, eos), pooled);
    return pooled;
  }
  final_ln_.forward(p, h, pooled, s ? &s->top_stats : nullptr);
  if (s) s->ids = id_t, s->positions = pos_t, s->top_in = h;
  return pooled;
}

void ClipTextTower::backward(Pass& p, const Tensor& dpooled, TowerSaved& s) {
  const int64_t C = cfg_.hidden_size, B = dpooled.rows(), BL = s.ids.numel();
  Tensor dtop = p.alloc({B, C});
  final_ln_.backward(p, dpooled, s.top_in, s.top_stats, &dtop, false);
  const bool embeddings = tok_.grad.defined();
  Tensor dx0 = embeddings ? p.alloc({BL, C}) : Tensor();
  stack_.backward(p, dtop, embeddings ? &dx0 : nullptr, s.stack);
  if (!embeddings) return;
  p.be.embedding_backward(dx0, s.ids, tok_.grad, -1);
  p.be.embedding_backward(dx0, s.positions, pos_.grad, -1);
}

}  // namespace clipkit::model
