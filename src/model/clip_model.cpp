#include "model/clip_model.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/model_location.h"

namespace clipkit::model {
namespace {

// The first prefix under which `probe` exists, or "" if none does.
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

clipkit::Tensor to_host(backend::Backend& be, const Tensor& t, Shape shape) {
  clipkit::Tensor h = clipkit::Tensor::empty(DType::F32, std::move(shape));
  be.download(t, h.data);
  return h;
}

}  // namespace

std::unique_ptr<ClipModel> ClipModel::load(const std::string& model, const LoadOptions& o) {
  namespace fs = std::filesystem;
  const std::string dir = resolve_model_dir(model);  // a folder, hub id or cache folder (io/model_location.h)
  auto m = std::make_unique<ClipModel>(backend::backend_for(o.device));
  m->dir_ = dir;
  m->opt_ = o;
  m->cfg_ = ModelConfig::from_file((fs::path(dir) / "config.json").string());
  const ModelConfig& c = m->cfg_;
  Checkpoint ck(dir);
  std::set<std::string> dtypes;
  for (auto& [n, t] : ck.tensors()) dtypes.insert(dtype_name(t.dtype));
  for (auto& d : dtypes) m->weights_dtype_ += (m->weights_dtype_.empty() ? "" : ",") + d;
  auto plan = [&](Part part, bool frozen, int freeze_layers) {
    LoadPlan p{part, o.train && !frozen, freeze_layers > 0 ? freeze_layers : -1, backend::WeightUse::Inference,
               o.precision};
    if (p.train) p.use = backend::WeightUse::Training;
    p.borrow = !o.train && o.map_weights;  // (LoadOptions::map_weights)
    return p;
  };
  ParamSet& ps = m->params_;
  // each tower's key prefix in the checkpoint ("" when its keys have none)
  const std::string vision_prefix =
      c.vision ? find_prefix(ck, {"vision_model.vision_model.", "vision_model.", ""}, "embeddings.class_embedding") : "";
  const bool clip_text = c.text && c.text->arch == TextArch::Clip;
  const std::string text_prefix =
      !c.text     ? ""
      : clip_text ? find_prefix(ck, {"text_model.text_model.", "text_model.", ""}, "embeddings.token_embedding.weight")
                  : find_prefix(ck, {"text_model.", "text_model.roberta.", "roberta.", ""},
                                "embeddings.word_embeddings.weight");
  std::vector<std::string> left_out;  // prefixes of the towers not loaded (their tensors are not checked)
  if (c.vision && !o.vision) left_out.insert(left_out.end(), {vision_prefix, "visual_projection."});
  if (c.text && !o.text) left_out.insert(left_out.end(), {text_prefix, "text_projection."});
  if (o.check_finite)
    ck.require_finite([&](const std::string& name) {
      for (auto& p : left_out)
        if (!p.empty() && name.starts_with(p)) return false;
      return true;
    });
  if (c.vision && o.vision) {
    const std::string& p = vision_prefix;
    if (p.empty() && !ck.has("embeddings.class_embedding"))
      fail("{}: config has a vision tower but the weights have no \"*embeddings.class_embedding\"", dir);
    m->vision_ = std::make_unique<ClipVisionTower>();
    m->vision_->load(ps, WeightReader(ck.tensors(), dir, p), *c.vision,
                     plan(Part::Vision, o.freeze_vision, o.freeze_vision_layers));
    m->vision_trains_ = o.train && !o.freeze_vision;
  }
  if (c.text && o.text) {
    if (clip_text) m->text_ = std::make_unique<ClipTextTower>();
    else m->text_ = std::make_unique<RobertaTextTower>();
    m->text_->load(ps, WeightReader(ck.tensors(), dir, text_prefix), *c.text,
                   plan(Part::Text, o.freeze_text, o.freeze_text_layers));
    m->text_trains_ = o.train && !o.freeze_text;
  }
  const WeightReader root(ck.tensors(), dir);
  const int64_t P = c.projection_dim;
  const LoadPlan head = plan(Part::Head, false, 0);
  const bool dual = c.vision && c.text;  // by the config: a tower left out keeps the other's projection
  if (m->vision_ && (dual || ck.has("visual_projection.weight"))) {  // or CLIPVisionModelWithProjection
    m->visual_proj_ = std::make_unique<Linear>();
    m->visual_proj_->load(ps, root, {"visual_projection."}, P, c.vision->hidden_size, false, head, kTopDepth);
  }
  if (m->text_ && (dual || ck.has("text_projection.weight"))) {  // or CLIPTextModelWithProjection
    m->text_proj_ = std::make_unique<Linear>();
    m->text_proj_->load(ps, root, {"text_projection."}, P, c.text->hidden_size, false, head, kTopDepth);
  }
  m->logit_scale_init_ = c.logit_scale_init;
  if (dual) {  // (one scalar: loaded with either tower, so logit_scale() is the checkpoint's)
    std::map<std::string, clipkit::Tensor> init;  // HF's logit_scale_init_value when the checkpoint has none
    if (!ck.has("logit_scale")) {
      init["logit_scale"] = clipkit::Tensor::empty(DType::F32, {});
      *init["logit_scale"].ptr<float>() = c.logit_scale_init;
    }
    ps.add(ck.has("logit_scale") ? root : WeightReader(init, dir), "logit_scale", {}, head, kTopDepth, true);
    m->logit_scale_ = &ps.all().back();
  }
  for (float p : {c.vision ? c.vision->attention_dropout : 0.0f, c.text ? c.text->attention_dropout : 0.0f})
    if (!(p >= 0 && p < 1)) fail("{}: attention dropout {} is outside [0, 1)", dir, p);
  return m;
}

Pass ClipModel::pass(backend::Arena& a, bool train, Part tower, uint64_t step) const {
  Pass p{be_, a, opt_.precision};
  if (!train) return p;
  p.save = true;
  p.checkpointing = opt_.gradient_checkpointing;
  p.seed = mix(opt_.seed, mix(step, tower == Part::Vision ? 1 : 2));
  if (!opt_.dropout) return p;
  if (tower == Part::Vision) {
    p.attention_dropout = cfg_.vision->attention_dropout;
  } else {
    p.attention_dropout = cfg_.text->attention_dropout;
    p.hidden_dropout = cfg_.text->arch == TextArch::Roberta ? cfg_.text->hidden_dropout : 0.0f;
  }
  return p;
}

// ---- inference ----

// One inference pass of a tower in the calling thread's arena: forward(pass, hidden) -> pooled,
// projected on request; results on the host (hidden states [B, L, C] on request).
template <typename Forward>
TowerOutput ClipModel::infer(Part tower, bool project, bool want_hidden, Forward&& forward) const {
  if (!(tower == Part::Vision ? static_cast<bool>(vision_) : static_cast<bool>(text_)))
    fail("{}: {}", dir_, missing_tower(tower));
  backend::Arena& arena = be_.thread_arena();
  backend::Arena::Scope scope(arena);
  Pass p = pass(arena, false, tower, 0);
  Tensor hidden, out = forward(p, want_hidden ? &hidden : nullptr);
  const int64_t B = out.rows();
  if (project) out = project_pooled(p, tower, out, nullptr);
  TowerOutput r;
  r.pooled = to_host(be_, out, {B, out.cols()});
  if (want_hidden) r.last_hidden_state = to_host(be_, hidden, {B, hidden.rows() / B, hidden.cols()});
  return r;
}

TowerOutput ClipModel::vision_forward(const float* pixels, int64_t N, bool want_hidden) const {
  return infer(Part::Vision, false, want_hidden,
               [&](Pass& p, Tensor* hidden) { return vision_->forward(p, pixels, N, nullptr, hidden); });
}

TowerOutput ClipModel::text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L,
                                    bool want_hidden) const {
  return infer(Part::Text, false, want_hidden,
               [&](Pass& p, Tensor* hidden) { return text_->forward(p, ids, mask, B, L, nullptr, hidden); });
}

clipkit::Tensor ClipModel::image_features(const float* pixels, int64_t N) const {
  auto forward = [&](Pass& p, Tensor*) { return vision_->forward(p, pixels, N, nullptr, nullptr); };
  return infer(Part::Vision, true, false, forward).pooled;
}

clipkit::Tensor ClipModel::text_features(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L) const {
  auto forward = [&](Pass& p, Tensor*) { return text_->forward(p, ids, mask, B, L, nullptr, nullptr); };
  return infer(Part::Text, true, false, forward).pooled;
}

Tensor ClipModel::project_pooled(Pass& p, Part tower, const Tensor& pooled, Tensor* saved) const {
  const Linear* proj = tower == Part::Vision ? visual_proj_.get() : text_proj_.get();
  if (!proj) return pooled;
  Tensor emb = p.alloc({pooled.rows(), proj->N()});
  proj->forward(p, pooled, emb, {}, saved);
  return emb;
}

// ---- training ----

Tensor ClipModel::embed_images(const float* pixels, int64_t N, bool train, uint64_t step) {
  if (!vision_) fail("{}: this model has no vision tower", dir_);
  const bool tower = train && vision_trains_;  // a frozen tower runs as in inference; its projection trains
  if (tower) vision_step_ = step;
  Pass p = pass(be_.thread_arena(), tower, Part::Vision, step);
  return project_pooled(p, Part::Vision, vision_->forward(p, pixels, N, tower ? &vision_saved_ : nullptr, nullptr),
                        train ? &vision_proj_x_ : nullptr);
}

Tensor ClipModel::embed_texts(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool train,
                              uint64_t step) {
  if (!text_) fail("{}: this model has no text tower", dir_);
  const bool tower = train && text_trains_;
  if (tower) text_step_ = step;
  Pass p = pass(be_.thread_arena(), tower, Part::Text, step);
  return project_pooled(p, Part::Text, text_->forward(p, ids, mask, B, L, tower ? &text_saved_ : nullptr, nullptr),
                        train ? &text_proj_x_ : nullptr);
}

Tensor ClipModel::project(Part tower, const float* pooled, int64_t n, bool train) {
  const int64_t C = tower == Part::Vision ? cfg_.vision->hidden_size : cfg_.text->hidden_size;
  Pass p = pass(be_.thread_arena(), false, tower, 0);
  Tensor* saved = !train ? nullptr : tower == Part::Vision ? &vision_proj_x_ : &text_proj_x_;
  return project_pooled(p, tower, be_.input(p.arena, pooled, DType::F32, {n, C}), saved);
}

void ClipModel::backward(Part tower, const Tensor& demb) {
  const bool vis = tower == Part::Vision;
  Linear* proj = vis ? visual_proj_.get() : text_proj_.get();
  const bool trains = vis ? vision_trains_ : text_trains_;
  Pass p = pass(be_.thread_arena(), true, tower, vis ? vision_step_ : text_step_);
  const Tensor& x = vis ? vision_proj_x_ : text_proj_x_;
  Tensor dpooled = trains ? p.alloc({demb.rows(), x.cols()}) : Tensor();
  proj->backward(p, x, {}, demb, trains ? &dpooled : nullptr, false);
  if (!trains) return;
  if (vis) vision_->backward(p, dpooled, vision_saved_);
  else text_->backward(p, dpooled, text_saved_);
}

// ---- parameters ----

std::vector<Param*> ClipModel::trainable() {
  std::vector<Param*> out;
  for (auto& p : params_.all())
    if (p.trainable()) out.push_back(&p);
  return out;
}

std::map<std::string, clipkit::Tensor> ClipModel::trained_state() const {
  std::map<std::string, clipkit::Tensor> out;
  for (auto& p : params_.all())
    if (p.trainable()) out[p.name] = to_host(be_, p.value, p.shape);
  return out;
}

void ClipModel::load_state(const std::map<std::string, clipkit::Tensor>& tensors, const std::string& source) {
  for (auto& p : params_.all()) {
    auto it = tensors.find(p.name);
    if (it == tensors.end()) continue;
    clipkit::Tensor f = it->second.to_f32();
    if (f.numel() != p.value.numel())
      fail("{}: tensor \"{}\" has {} values, expected {}", source, p.name, f.numel(), p.value.numel());
    be_.upload(f.data, p.value);
    ++p.buffer->version;
  }
}

float ClipModel::logit_scale() const {
  if (!logit_scale_) return logit_scale_init_;
  float v;
  be_.download(logit_scale_->value, &v);
  return v;
}

int64_t ClipModel::count(Part part) const {
  int64_t n = 0;
  for (auto& p : params_.all())
    if (p.part == part) n += p.value.numel();
  return n;
}

int64_t ClipModel::param_count() const { return count(Part::Vision) + count(Part::Text) + count(Part::Head); }

std::string ClipModel::missing_tower(Part tower) const {
  const bool vision = tower == Part::Vision;
  const char* name = vision ? "vision" : "text";
  if (vision ? cfg_.vision.has_value() : cfg_.text.has_value())
    return fmt::format("the {} tower was not loaded (this job loaded only the {} tower)", name, vision ? "text" : "vision");
  return fmt::format("this model has no {} tower", name);
}

std::string ClipModel::architecture() const {
  std::string v, t;
  if (cfg_.vision) {
    auto& c = *cfg_.vision;
    const char* size = c.hidden_size >= 1024 ? "L" : c.hidden_size >= 768 ? "B" : "custom";
    v = fmt::format("ViT-{}/{} ({}x{}, {} layers, width {})", size, c.patch_size, c.image_size, c.image_size,
                    c.num_layers, c.hidden_size);
  }
  if (cfg_.text) {
    auto& c = *cfg_.text;
    t = fmt::format("{} text ({} layers, width {}, {} positions)", c.arch == TextArch::Clip ? "CLIP" : "RoBERTa",
                    c.num_layers, c.hidden_size, c.max_position_embeddings);
  }
  std::string kind = cfg_.model_type == "clip" ? "CLIPModel"
                     : cfg_.model_type == "vision-text-dual-encoder" ? "VisionTextDualEncoderModel"
                                                                     : cfg_.model_type;
  if (cfg_.vision && cfg_.text) return fmt::format("{}: {} + {}", kind, v, t);
  return fmt::format("{}: {}", kind, cfg_.vision ? v : t);
}

void l2_normalize_rows(float* x, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += static_cast<double>(x[n * D + d]) * x[n * D + d];
    float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
    for (int64_t d = 0; d < D; ++d) x[n * D + d] *= inv;
  }
}

}  // namespace clipkit::model
