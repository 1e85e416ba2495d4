#include "model/clip_model.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/model_location.h"

namespace clipkit::model {
namespace {

// The first prefix under which `probe` exists, or "" if none does.
std::string find_prefix(const Checkpoint& ck, std::initializer_list<const char*> prefixes, const std::string& probe) {
  for (const char* p : prefixes)
    if (ck.has(std::string(p) + probe)) return p;
  return "";
}

}  // namespace

std::unique_ptr<ClipModel> ClipModel::load(const std::string& model, const LoadOptions& o) {
  namespace fs = std::filesystem;
  const std::string dir = resolve_model_dir(model);  // a folder, hub id or cache folder (io/model_location.h)
  auto m = std::make_unique<ClipModel>();
  m->dir_ = dir;
  m->prec_ = o.precision;
  m->cfg_ = ModelConfig::from_file((fs::path(dir) / "config.json").string());
  Checkpoint ck(dir);
  std::set<std::string> dtypes;
  for (auto& [n, t] : ck.tensors()) dtypes.insert(dtype_name(t.dtype));
  for (auto& d : dtypes) m->weights_dtype_ += (m->weights_dtype_.empty() ? "" : ",") + d;

  if (m->cfg_.vision) {
    std::string p = find_prefix(ck, {"vision_model.vision_model.", "vision_model.", ""}, "embeddings.class_embedding");
    if (p.empty() && !ck.has("embeddings.class_embedding"))
      fail("{}: config has a vision tower but the weights have no \"*embeddings.class_embedding\"", dir);
    m->vision_ = std::make_unique<ClipVisionTower>();
    m->vision_->load(WeightReader(ck, p), *m->cfg_.vision, o.precision);
  }
  if (m->cfg_.text) {
    if (m->cfg_.text->arch == TextArch::Clip) {
      std::string p = find_prefix(ck, {"text_model.text_model.", "text_model.", ""}, "embeddings.token_embedding.weight");
      auto t = std::make_unique<ClipTextTower>();
      t->load(WeightReader(ck, p), *m->cfg_.text, o.precision);
      m->text_ = std::move(t);
    } else {
      std::string p = find_prefix(ck, {"text_model.", "text_model.roberta.", "roberta.", ""}, "embeddings.word_embeddings.weight");
      auto t = std::make_unique<RobertaTextTower>();
      t->load(WeightReader(ck, p), *m->cfg_.text, o.precision);
      m->text_ = std::move(t);
    }
  }
  WeightReader root(ck, "");
  const int64_t P = m->cfg_.projection_dim;
  if (m->vision_ && m->text_) {
    auto vp = root.get("visual_projection.weight", {P, m->cfg_.vision->hidden_size});
    auto tp = root.get("text_projection.weight", {P, m->cfg_.text->hidden_size});
    m->visual_projection_.init(vp.data(), nullptr, P, m->cfg_.vision->hidden_size, o.precision);
    m->text_projection_.init(tp.data(), nullptr, P, m->cfg_.text->hidden_size, o.precision);
    m->has_proj_ = true;
    if (ck.has("logit_scale")) m->logit_scale_ = root.get("logit_scale", {})[0];
    else m->logit_scale_ = m->cfg_.logit_scale_init;
  } else if (m->vision_ && ck.has("visual_projection.weight")) {  // CLIPVisionModelWithProjection
    auto vp = root.get("visual_projection.weight", {P, m->cfg_.vision->hidden_size});
    m->visual_projection_.init(vp.data(), nullptr, P, m->cfg_.vision->hidden_size, o.precision);
    m->has_proj_ = true;
  } else if (m->text_ && ck.has("text_projection.weight")) {  // CLIPTextModelWithProjection
    auto tp = root.get("text_projection.weight", {P, m->cfg_.text->hidden_size});
    m->text_projection_.init(tp.data(), nullptr, P, m->cfg_.text->hidden_size, o.precision);
    m->has_proj_ = true;
  }
  return m;
}

TowerOutput ClipModel::vision_forward(const float* pixels, int64_t N, bool want_hidden) const {
  if (!vision_) fail("{}: this model has no vision tower", dir_);
  return vision_->forward(pixels, N, want_hidden);
}

TowerOutput ClipModel::text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const {
  if (!text_) fail("{}: this model has no text tower", dir_);
  return text_->forward(ids, mask, B, L, want_hidden);
}

Tensor ClipModel::image_features(const float* pixels, int64_t N) const {
  auto out = vision_forward(pixels, N, false);
  if (!visual_projection_.out_features()) return out.pooled;
  Tensor r = Tensor::empty(DType::F32, {N, visual_projection_.out_features()});
  visual_projection_.forward(out.pooled.ptr<float>(), N, r.ptr<float>());
  return r;
}

Tensor ClipModel::text_features(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L) const {
  auto out = text_forward(ids, mask, B, L, false);
  if (!text_projection_.out_features()) return out.pooled;
  Tensor r = Tensor::empty(DType::F32, {B, text_projection_.out_features()});
  text_projection_.forward(out.pooled.ptr<float>(), B, r.ptr<float>());
  return r;
}

int64_t ClipModel::param_count() const {
  int64_t n = vision_param_count() + text_param_count();
  if (visual_projection_.out_features()) n += model::param_count(visual_projection_);
  if (text_projection_.out_features()) n += model::param_count(text_projection_);
  if (vision_ && text_) n += 1;  // logit_scale
  return n;
}

std::string ClipModel::architecture() const {
  std::string v, t;
  if (vision_) {
    auto& c = vision_->config();
    const char* size = c.hidden_size >= 1024 ? "L" : c.hidden_size >= 768 ? "B" : "custom";
    v = fmt::format("ViT-{}/{} ({}x{}, {} layers, width {})", size, c.patch_size, c.image_size, c.image_size,
                    c.num_layers, c.hidden_size);
  }
  if (text_) {
    auto& c = *cfg_.text;
    t = fmt::format("{} text ({} layers, width {}, {} positions)", c.arch == TextArch::Clip ? "CLIP" : "RoBERTa",
                    c.num_layers, c.hidden_size, c.max_position_embeddings);
  }
  std::string kind = cfg_.model_type == "clip" ? "CLIPModel"
                     : cfg_.model_type == "vision-text-dual-encoder" ? "VisionTextDualEncoderModel"
                                                                     : cfg_.model_type;
  if (vision_ && text_) return fmt::format("{}: {} + {}", kind, v, t);
  return fmt::format("{}: {}", kind, vision_ ? v : t);
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
