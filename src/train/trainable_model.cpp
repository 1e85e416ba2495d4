#include "train/trainable_model.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/profile.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "ops/dense.h"

namespace clipkit::train {
namespace {

std::string find_prefix(const Checkpoint& ck, std::initializer_list<const char*> prefixes, const std::string& probe) {
  for (const char* p : prefixes)
    if (ck.has(std::string(p) + probe)) return p;
  return "";
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::unique_ptr<TrainableClip> TrainableClip::load(const std::string& dir, const TrainableOptions& o) {
  namespace fs = std::filesystem;
  auto m = std::make_unique<TrainableClip>();
  m->opt_ = o;
  m->cfg_ = model::ModelConfig::from_file((fs::path(dir) / "config.json").string());
  if (!m->cfg_.vision || !m->cfg_.text) fail("{}: training needs a dual encoder (vision and text towers)", dir);
  Checkpoint ck(dir);
  m->sc_.precision = o.precision;
  m->sc_.hidden_dropout = o.dropout && m->cfg_.text->arch == model::TextArch::Roberta ? m->cfg_.text->hidden_dropout : 0;
  m->vision_attn_drop_ = o.dropout ? m->cfg_.vision->attention_dropout : 0;
  m->text_attn_drop_ = o.dropout ? m->cfg_.text->attention_dropout : 0;
  for (float p : {m->vision_attn_drop_, m->text_attn_drop_})
    if (!(p >= 0 && p < 1)) fail("{}: attention dropout {} is outside [0, 1)", dir, p);
  TowerOptions vo, to;
  vo.gradient_checkpointing = to.gradient_checkpointing = o.gradient_checkpointing;
  vo.freeze_depth = o.freeze_vision_layers > 0 ? o.freeze_vision_layers : -1;
  to.freeze_depth = o.freeze_text_layers > 0 ? o.freeze_text_layers : -1;
  m->vision_prefix_ = find_prefix(ck, {"vision_model.vision_model.", "vision_model.", ""}, "embeddings.class_embedding");
  m->vision_.load(model::WeightReader(ck, m->vision_prefix_), *m->cfg_.vision, vo, m->reg_);
  m->vision_end_ = m->reg_.size();
  if (m->cfg_.text->arch == model::TextArch::Clip) {
    m->text_prefix_ = find_prefix(ck, {"text_model.text_model.", "text_model.", ""}, "embeddings.token_embedding.weight");
    m->text_ = std::make_unique<TClipTextTower>();
  } else {
    m->text_prefix_ =
        find_prefix(ck, {"text_model.", "text_model.roberta.", "roberta.", ""}, "embeddings.word_embeddings.weight");
    m->text_ = std::make_unique<TRobertaTower>();
  }
  m->text_->load(model::WeightReader(ck, m->text_prefix_), *m->cfg_.text, to, m->reg_);
  m->text_end_ = m->reg_.size();
  model::WeightReader root(ck, "");
  m->P_ = m->cfg_.projection_dim;
  m->Cv_ = m->cfg_.vision->hidden_size;
  m->Ct_ = m->cfg_.text->hidden_size;
  m->wv_ = root.get("visual_projection.weight", {m->P_, m->Cv_});
  m->wt_ = root.get("text_projection.weight", {m->P_, m->Ct_});
  m->gv_.assign(m->wv_.size(), 0.0f);
  m->gt_.assign(m->wt_.size(), 0.0f);
  m->logit_scale = ck.has("logit_scale") ? root.get("logit_scale", {})[0] : m->cfg_.logit_scale_init;
  const int top = 1 << 20;
  m->reg_.push_back({"visual_projection.weight", {m->P_, m->Cv_}, m->wv_.data(), m->gv_.data(), m->P_ * m->Cv_, top});
  m->reg_.push_back({"text_projection.weight", {m->P_, m->Ct_}, m->wt_.data(), m->gt_.data(), m->P_ * m->Ct_, top});
  m->reg_.push_back({"logit_scale", {}, &m->logit_scale, &m->g_logit_scale, 1, top});
  return m;
}

bool TrainableClip::trainable(const TensorEntry& e) const {
  const bool vis = !vision_prefix_.empty() ? e.name.rfind(vision_prefix_, 0) == 0 : false;
  const bool txt = !text_prefix_.empty() ? e.name.rfind(text_prefix_, 0) == 0 : false;
  if (vis) return !opt_.freeze_vision && (opt_.freeze_vision_layers <= 0 || e.depth >= opt_.freeze_vision_layers);
  if (txt) return !opt_.freeze_text && (opt_.freeze_text_layers <= 0 || e.depth >= opt_.freeze_text_layers);
  return true;  // projections and logit_scale
}

void TrainableClip::vision_forward(const float* pixels, int64_t N, float* emb, bool training, uint64_t step) {
  StepContext sc = sc_;
  sc.attention_dropout = vision_attn_drop_;
  sc.training = training && !opt_.freeze_vision;
  if (static_cast<int64_t>(pooled_v_.size()) < N * Cv_) pooled_v_.resize(static_cast<size_t>(N * Cv_));
  vision_.forward(pixels, N, pooled_v_.data(), sc, mix(opt_.seed, mix(step, 1)));
  project_vision(pooled_v_.data(), N, emb);
}

void TrainableClip::text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* emb,
                                 bool training, uint64_t step) {
  StepContext sc = sc_;
  sc.attention_dropout = text_attn_drop_;
  sc.training = training && !opt_.freeze_text;
  if (static_cast<int64_t>(pooled_t_.size()) < B * Ct_) pooled_t_.resize(static_cast<size_t>(B * Ct_));
  text_->forward(ids, mask, B, L, pooled_t_.data(), sc, mix(opt_.seed, mix(step, 2)));
  project_text(pooled_t_.data(), B, emb);
}

void TrainableClip::project_vision(const float* pooled, int64_t N, float* emb) {
  if (pooled != pooled_v_.data()) pooled_v_.assign(pooled, pooled + N * Cv_);
  Nv_ = N;
  ops::dense_forward(pooled_v_.data(), wv_.data(), nullptr, N, P_, Cv_, emb, sc_.precision);
}

void TrainableClip::project_text(const float* pooled, int64_t N, float* emb) {
  if (pooled != pooled_t_.data()) pooled_t_.assign(pooled, pooled + N * Ct_);
  Nt_ = N;
  ops::dense_forward(pooled_t_.data(), wt_.data(), nullptr, N, P_, Ct_, emb, sc_.precision);
}

void TrainableClip::vision_backward(const float* demb) {
  const bool tower = !opt_.freeze_vision;
  std::vector<float> dpooled(tower ? static_cast<size_t>(Nv_ * Cv_) : 0);
  ops::dense_backward(pooled_v_.data(), wv_.data(), demb, Nv_, P_, Cv_, tower ? dpooled.data() : nullptr, gv_.data(),
                      nullptr, sc_.precision);
  if (tower) {
    StepContext sc = sc_;
    sc.attention_dropout = vision_attn_drop_;
    vision_.backward(dpooled.data(), sc);
  }
  settle_grads(0, vision_end_);
}

void TrainableClip::text_backward(const float* demb) {
  const bool tower = !opt_.freeze_text;
  std::vector<float> dpooled(tower ? static_cast<size_t>(Nt_ * Ct_) : 0);
  ops::dense_backward(pooled_t_.data(), wt_.data(), demb, Nt_, P_, Ct_, tower ? dpooled.data() : nullptr, gt_.data(),
                      nullptr, sc_.precision);
  if (tower) {
    StepContext sc = sc_;
    sc.attention_dropout = text_attn_drop_;
    text_->backward(dpooled.data(), sc);
  }
  settle_grads(vision_end_, text_end_);
}

std::vector<Param> TrainableClip::params() {
  std::vector<Param> ps;
  for (auto& e : reg_)
    if (trainable(e)) ps.push_back({e.name, e.w, e.g, e.n, hf_weight_decay(e.name)});
  return ps;
}

void TrainableClip::zero_grad() {
  ProfileScope prof("zero_grad");
  for (auto& e : reg_) {
    if (!e.state) std::memset(e.g, 0, sizeof(float) * e.n);
    else if (*e.state == GradState::Written) *e.state = GradState::Stale;  // cleared by the next write
  }
}

void TrainableClip::settle_grads() { settle_grads(0, reg_.size()); }

void TrainableClip::settle_grads(size_t begin, size_t end) {
  ProfileScope prof("zero_grad");
  // two passes: the slices of one buffer (fused QKV) share a state
  for (size_t i = begin; i < end; ++i)
    if (reg_[i].state && *reg_[i].state == GradState::Stale) std::memset(reg_[i].g, 0, sizeof(float) * reg_[i].n);
  for (size_t i = begin; i < end; ++i)
    if (reg_[i].state && *reg_[i].state == GradState::Stale) *reg_[i].state = GradState::Zero;
}

std::map<std::string, Tensor> TrainableClip::trained_state() {
  std::map<std::string, Tensor> out;
  for (auto& e : reg_) {
    if (!trainable(e)) continue;
    Tensor t = Tensor::empty(DType::F32, e.shape);
    std::memcpy(t.data, e.w, sizeof(float) * e.n);
    out[e.name] = std::move(t);
  }
  return out;
}

void TrainableClip::load_state(const std::string& dir) {
  Checkpoint ck(dir);
  for (auto& e : reg_) {
    if (!ck.has(e.name)) continue;
    Tensor f = ck.get(e.name).to_f32();
    if (f.numel() != e.n) fail("{}: tensor \"{}\" has {} values, expected {}", dir, e.name, f.numel(), e.n);
    std::memcpy(e.w, f.data, sizeof(float) * e.n);
  }
}

}  // namespace clipkit::train
