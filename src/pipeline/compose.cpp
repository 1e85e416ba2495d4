#include "pipeline/compose.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "pipeline/processor_files.h"

namespace clipkit::pipeline {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const fs::path& p) { return parse_json(read_file(p.string()), p.string()); }

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

Tensor uniform(Shape s, float bound, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(DType::F32, std::move(s));
  std::uniform_real_distribution<float> u(-bound, bound);
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = u(rng);
  return t;
}

}  // namespace

void compose_dual_encoder(const ComposeOptions& o) {
  if (o.projection_dim <= 0) fail("--projection-dim must be positive");
  const std::string vpath = (fs::path(o.vision_dir) / "config.json").string();
  const std::string tpath = (fs::path(o.text_dir) / "config.json").string();
  // the tower named inside a CLIPModel config, as an object
  auto inner = [](const json& file, const char* key, const std::string& path) {
    const auto it = file.find(key);
    if (it == file.end() || !it->is_object()) fail("{}: model_type clip needs a \"{}\" object", path, key);
    return *it;
  };
  // vision tower
  json vcfg_file = read_json(vpath);
  json vcfg;
  std::string vtype = json_string_or(vcfg_file, "model_type", "", vpath);
  if (vtype == "clip") vcfg = inner(vcfg_file, "vision_config", vpath);
  else if (vtype == "clip_vision_model") vcfg = vcfg_file;
  else fail("{}: vision tower must be a CLIPModel or CLIPVisionModel checkpoint (model_type clip / clip_vision_model), got \"{}\"",
            o.vision_dir, vtype);
  vcfg["model_type"] = "clip_vision_model";
  auto vc = model::parse_vision_config(vcfg, vpath);
  // text tower
  json tcfg_file = read_json(tpath);
  std::string ttype = json_string_or(tcfg_file, "model_type", "", tpath);
  json tcfg;
  bool clip_text = false;
  if (ttype == "roberta") {
    tcfg = tcfg_file;
  } else if (ttype == "clip") {
    tcfg = inner(tcfg_file, "text_config", tpath);
    tcfg["model_type"] = "clip_text_model";
    clip_text = true;
  } else if (ttype == "clip_text_model") {
    tcfg = tcfg_file;
    clip_text = true;
  } else {
    fail("{}: text tower must be a RoBERTa or CLIP text checkpoint (model_type roberta / clip / clip_text_model), got \"{}\"",
         o.text_dir, ttype);
  }
  auto tc = model::parse_text_config(tcfg, tpath);

  Checkpoint vck(o.vision_dir), tck(o.text_dir);
  std::vector<std::pair<std::string, Tensor>> out;
  int nv = 0, nt = 0;
  for (auto& [name, t] : vck.tensors())
    if (starts_with(name, "vision_model.")) out.emplace_back("vision_model." + name, t), ++nv;
  if (nv == 0) fail("{}: no vision_model.* tensors", o.vision_dir);
  bool has_pooler = false;
  for (auto& [name, t] : tck.tensors()) {
    std::string n = name;
    if (clip_text) {
      if (!starts_with(n, "text_model.")) continue;  // CLIPModel: drop the vision tower and projections
      n = "text_model." + n;
    } else {
      if (starts_with(n, "roberta.")) n = n.substr(8);
      if (starts_with(n, "lm_head.") || starts_with(n, "classifier.") || starts_with(n, "qa_outputs.")) continue;
      if (!starts_with(n, "embeddings.") && !starts_with(n, "encoder.") && !starts_with(n, "pooler.")) continue;
      if (starts_with(n, "pooler.")) has_pooler = true;
      if (n == "embeddings.position_ids") continue;  // a buffer, not a parameter
      n = "text_model." + n;
    }
    out.emplace_back(n, t), ++nt;
  }
  if (nt == 0) fail("{}: no text-tower tensors found", o.text_dir);
  std::mt19937_64 rng(o.seed);
  const int64_t P = o.projection_dim, C = tc.hidden_size;
  if (!clip_text && !has_pooler) {  // RobertaModel(add_pooling_layer=True) initializes it
    const double init_range = json_number_or(tcfg, "initializer_range", 0.02, tpath);
    if (!(init_range > 0 && init_range <= 1e3)) fail("{}: initializer_range must be a positive number, got {}", tpath, init_range);
    std::normal_distribution<float> nd(0.0f, static_cast<float>(init_range));
    Tensor w = Tensor::empty(DType::F32, {C, C});
    for (int64_t i = 0; i < w.numel(); ++i) w.ptr<float>()[i] = nd(rng);
    out.emplace_back("text_model.pooler.dense.weight", w);
    out.emplace_back("text_model.pooler.dense.bias", Tensor::zeros(DType::F32, {C}));
  }
  out.emplace_back("visual_projection.weight", uniform({P, vc.hidden_size}, 1.0f / std::sqrt(static_cast<float>(vc.hidden_size)), rng));
  out.emplace_back("text_projection.weight", uniform({P, C}, 1.0f / std::sqrt(static_cast<float>(C)), rng));
  Tensor ls = Tensor::empty(DType::F32, {});
  *ls.ptr<float>() = o.logit_scale_init;
  out.emplace_back("logit_scale", ls);

  fs::create_directories(o.out_dir);
  write_safetensors((fs::path(o.out_dir) / "model.safetensors").string(), out, {{"format", "pt"}});
  json cfg = {{"architectures", {"VisionTextDualEncoderModel"}}, {"model_type", "vision-text-dual-encoder"},
              {"projection_dim", P}, {"logit_scale_init_value", model::json_float(o.logit_scale_init)}, {"torch_dtype", "float32"},
              {"vision_config", vcfg}, {"text_config", tcfg}};
  write_file_atomic((fs::path(o.out_dir) / "config.json").string(), json_text(cfg, 2) + "\n");
  copy_tokenizer_files(o.text_dir, o.out_dir);
  fs::path pre = fs::path(o.vision_dir) / "preprocessor_config.json";
  if (fs::exists(pre)) write_file_atomic((fs::path(o.out_dir) / "preprocessor_config.json").string(), read_file(pre.string()));
  else write_clip_preprocessor_config(o.out_dir, vc.image_size);
}

}  // namespace clipkit::pipeline
