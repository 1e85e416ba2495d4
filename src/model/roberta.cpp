#include "model/roberta.h"

#include "core/error.h"
#include "model/clip_text.h"

namespace clipkit::model {

constexpr uint64_t kEmbeddingDropoutSite = 1ull << 40;

void RobertaTextTower::load(ParamSet& ps, const WeightReader& r, const TextConfig& c, const LoadPlan& plan) {
  cfg_ = c;
  const int64_t C = c.hidden_size;
  word_ = ps.add(r, "embeddings.word_embeddings.weight", {c.vocab_size, C}, plan, -1, true);
  pos_ = ps.add(r, "embeddings.position_embeddings.weight", {c.max_position_embeddings, C}, plan, -1, true);
  if (c.type_vocab_size > 0)
    type_ = ps.add(r, "embeddings.token_type_embeddings.weight", {c.type_vocab_size, C}, plan, -1, true);
  emb_ln_.load(ps, r.sub("embeddings.LayerNorm."), C, c.layer_norm_eps, plan, -1);
  const std::string mlp[2] = {"intermediate.dense.", "output.dense."},
                    lns[2] = {"attention.output.LayerNorm.", "output.LayerNorm."};
  load_layers(stack_, ps, r, "encoder.layer.", c.num_layers,
              {"attention.self.query.", "attention.self.key.", "attention.self.value.", "attention.output.dense."},
              mlp, lns, C, c.num_heads, c.intermediate_size, c.act, c.layer_norm_eps, /*pre_ln=*/false, plan);
  has_pooler_ = r.has("pooler.dense.weight");
  if (has_pooler_) pooler_.load(ps, r, {"pooler.dense."}, C, C, true, plan, c.num_layers);
}

Tensor RobertaTextTower::forward(Pass& p, const int32_t* ids, const int32_t* mask, int64_t B, int64_t L,
                                 TowerSaved* s, Tensor* hidden) const {
  const int64_t C = cfg_.hidden_size, BL = B * L;
  const int pad = cfg_.pad_token_id;
  check_token_ids(ids, BL, cfg_.vocab_size);
  std::vector<int32_t> pos(static_cast<size_t>(BL)), first(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int32_t run = 0;
    for (int64_t l = 0; l < L; ++l) {
      const bool real = ids[b * L + l] != pad;
      run += real;
      pos[b * L + l] = real ? run + pad : pad;
      if (pos[b * L + l] >= cfg_.max_position_embeddings)
        fail("text of {} tokens is longer than the model's {} positions (truncate it)", run, max_positions());
    }
    first[b] = static_cast<int32_t>(b * L);
  }
  Indices local;
  if (s) *s = {};
  Indices& ix = s ? s->indices : local;
  const Tensor &id_t = ix.add(p, std::vector<int32_t>(ids, ids + BL)), &pos_t = ix.add(p, pos);
  const Tensor &type_t = ix.add(p, std::vector<int32_t>(static_cast<size_t>(BL), 0));
  const Tensor& mask_t = ix.add(p, std::vector<int32_t>(mask, mask + BL));
  Tensor e = p.alloc({BL, C});
  p.be.embedding(word_.value, id_t, e, false);
  p.be.embedding(pos_.value, pos_t, e, true);
  if (type_.value.defined()) p.be.embedding(type_.value, type_t, e, true);
  Tensor x0 = s ? p.alloc({BL, C}) : e;
  emb_ln_.forward(p, e, x0, s ? &s->embed_stats : nullptr);
  p.be.dropout(x0, {p.hidden_dropout, p.seed, kEmbeddingDropoutSite});
  Rows rows, last;
  LayerStack::plan(p, ix, mask, B, L, hidden ? nullptr : &first, &rows, &last);
  Tensor h = stack_.forward(p, x0, B, L, /*causal=*/false, &mask_t, rows, last, s ? &s->stack : nullptr), top = h;
  if (hidden) {
    *hidden = h;
    top = p.alloc({B, C});
    p.be.gather_rows(h, ix.add(p, first), top);
  }
  if (s) s->ids = id_t, s->positions = pos_t, s->extra = type_t, s->embed_in = e, s->top_in = top;
  if (!has_pooler_) return top;
  Tensor pooled = p.alloc({B, C});
  if (s) s->pooler_pre = p.alloc({B, C});
  pooler_.forward(p, top, pooled, {backend::Act::Tanh, nullptr, s ? &s->pooler_pre : nullptr},
                  s ? &s->pooler_x : nullptr);
  return pooled;
}

void RobertaTextTower::backward(Pass& p, const Tensor& dpooled, TowerSaved& s) {
  const int64_t C = cfg_.hidden_size, B = dpooled.rows(), BL = s.ids.numel();
  Tensor dtop = dpooled;
  if (has_pooler_) {
    Tensor dz = p.alloc({B, C});  // the pooler's backward turns it into the pre-activation gradient
    p.be.copy(dpooled, dz);
    dtop = p.alloc({B, C});
    pooler_.backward(p, s.pooler_x, {backend::Act::Tanh, nullptr, &s.pooler_pre}, dz, &dtop, false);
  }
  const bool embeddings = word_.grad.defined();
  Tensor dx0 = embeddings ? p.alloc({BL, C}) : Tensor();
  stack_.backward(p, dtop, embeddings ? &dx0 : nullptr, s.stack);
  if (!embeddings) return;
  p.be.dropout(dx0, {p.hidden_dropout, p.seed, kEmbeddingDropoutSite});
  Tensor de = p.alloc({BL, C});
  emb_ln_.backward(p, dx0, s.embed_in, s.embed_stats, &de, false);
  const int32_t pad = cfg_.pad_token_id;  // HF padding_idx: the pad rows never get gradient
  p.be.embedding_backward(de, s.ids, word_.grad, pad);
  p.be.embedding_backward(de, s.positions, pos_.grad, pad);
  if (type_.value.defined()) p.be.embedding_backward(de, s.extra, type_.grad, -1);
}

}  // namespace clipkit::model
