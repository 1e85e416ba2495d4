#include "pipeline/convert_open_clip.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "model/config.h"
#include "pipeline/processor_files.h"

namespace clipkit::pipeline {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Settings of open_clip towers this converter cannot express as a CLIPModel, with their defaults.
void refuse_variants(const json& cfg, const std::string& where, const std::map<std::string, json>& allowed_defaults,
                     const std::set<std::string>& ignored) {
  for (auto& [k, v] : cfg.items()) {
    if (ignored.count(k)) continue;
    auto it = allowed_defaults.find(k);
    if (it == allowed_defaults.end() || (!v.is_null() && v != it->second))
      fail("{}: \"{}\": {} is an open_clip variant this converter does not handle (only the CLIP architecture: ViT "
           "with class-token pooling, causal text transformer)",
           where, k, v.dump());
  }
}

int get_int(const json& j, const char* key, int def, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return def;
  return static_cast<int>(json_integer(j[key], INT32_MIN, INT32_MAX, fmt::format("{}: \"{}\"", where, key)));
}

class TensorMap {
 public:
  TensorMap(const SafeTensorsFile& f) : f_(f) {}
  const Tensor& take(const std::string& name) {
    if (!f_.has(name)) fail("{}: no tensor \"{}\"", f_.path(), name);
    used_.insert(name);
    return f_.get(name);
  }
  void check_all_used() const {
    for (auto& [n, t] : f_.tensors())
      if (!used_.count(n) && n != "attn_mask" && n != "visual.attn_mask")
        fail("{}: unexpected tensor \"{}\" (an open_clip variant this converter does not handle)", f_.path(), n);
  }

 private:
  const SafeTensorsFile& f_;
  std::set<std::string> used_;
};

Tensor rows(const Tensor& t, int64_t r0, int64_t n) {  // rows [r0, r0+n) of a [R, ...] tensor, copied
  Shape s = t.shape;
  const size_t row_bytes = t.nbytes() / static_cast<size_t>(s[0]);
  s[0] = n;
  Tensor o = Tensor::empty(t.dtype, s);
  std::memcpy(o.data, static_cast<const char*>(t.data) + r0 * row_bytes, n * row_bytes);
  return o;
}

Tensor transposed(const Tensor& t) {  // [A, B] -> [B, A], any dtype
  if (t.shape.size() != 2) fail("open_clip projection has shape {}, expected 2 dimensions", shape_str(t.shape));
  const int64_t A = t.dim(0), B = t.dim(1);
  const size_t es = dtype_size(t.dtype);
  Tensor o = Tensor::empty(t.dtype, {B, A});
  auto* src = static_cast<const char*>(t.data);
  auto* dst = static_cast<char*>(o.data);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b) std::memcpy(dst + (b * A + a) * es, src + (a * B + b) * es, es);
  return o;
}

void add_blocks(TensorMap& in, const std::string& from, const std::string& to, int layers, int width,
                std::vector<std::pair<std::string, Tensor>>* out) {
  for (int i = 0; i < layers; ++i) {
    const std::string f = from + std::to_string(i) + ".", t = to + std::to_string(i) + ".";
    auto copy = [&](const std::string& a, const std::string& b) { out->push_back({t + b, in.take(f + a)}); };
    copy("ln_1.weight", "layer_norm1.weight");
    copy("ln_1.bias", "layer_norm1.bias");
    const Tensor& w = in.take(f + "attn.in_proj_weight");
    const Tensor& b = in.take(f + "attn.in_proj_bias");
    if (w.shape != Shape{3 * int64_t(width), width}) fail("{}attn.in_proj_weight has shape {}", f, shape_str(w.shape));
    const char* qkv[] = {"q_proj", "k_proj", "v_proj"};
    for (int k = 0; k < 3; ++k) {
      out->push_back({t + "self_attn." + qkv[k] + ".weight", rows(w, k * int64_t(width), width)});
      out->push_back({t + "self_attn." + qkv[k] + ".bias", rows(b, k * int64_t(width), width)});
    }
    copy("attn.out_proj.weight", "self_attn.out_proj.weight");
    copy("attn.out_proj.bias", "self_attn.out_proj.bias");
    copy("ln_2.weight", "layer_norm2.weight");
    copy("ln_2.bias", "layer_norm2.bias");
    copy("mlp.c_fc.weight", "mlp.fc1.weight");
    copy("mlp.c_fc.bias", "mlp.fc1.bias");
    copy("mlp.c_proj.weight", "mlp.fc2.weight");
    copy("mlp.c_proj.bias", "mlp.fc2.bias");
  }
}

}  // namespace

OpenClipConversion convert_open_clip(const std::string& in_dir, const std::string& out_dir, const std::string& vocab_dir) {
  const fs::path cfg_path = fs::path(in_dir) / "open_clip_config.json";
  if (!fs::exists(cfg_path)) fail("{}: no open_clip_config.json (not an open_clip checkpoint folder)", in_dir);
  json root;
  try {
    root = json::parse(read_file(cfg_path.string()));
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", cfg_path.string(), e.what());
  }
  const std::string where = cfg_path.string();
  if (!root.contains("model_cfg") || !root["model_cfg"].is_object()) fail("{}: no \"model_cfg\" object", where);
  const json& mc = root["model_cfg"];
  refuse_variants(mc, where + ": model_cfg", {{"custom_text", false}},
                  {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "init_logit_scale", "init_logit_bias", "cast_dtype"});
  if (mc.contains("init_logit_bias") && !mc["init_logit_bias"].is_null())
    fail("{}: model_cfg \"init_logit_bias\" (a SigLIP model) is an open_clip variant this converter does not handle", where);
  const json vc = mc.value("vision_cfg", json::object()), tc = mc.value("text_cfg", json::object());
  refuse_variants(vc, where + ": vision_cfg",
                  {{"layers", 0}, {"width", 0}, {"head_width", 0}, {"mlp_ratio", 4.0}, {"patch_size", 0}, {"image_size", 0},
                   {"patch_dropout", 0}, {"ls_init_value", nullptr}, {"attentional_pool", false}, {"no_ln_pre", false},
                   {"pool_type", "tok"}, {"final_ln_after_pool", false}, {"output_tokens", false}},
                  {"layers", "width", "head_width", "patch_size", "image_size", "patch_dropout"});
  refuse_variants(tc, where + ": text_cfg",
                  {{"context_length", 0}, {"vocab_size", 0}, {"width", 0}, {"heads", 0}, {"layers", 0}, {"mlp_ratio", 4.0},
                   {"ls_init_value", nullptr}, {"hf_model_name", nullptr}, {"embed_cls", false}, {"pad_id", 0},
                   {"no_causal_mask", false}, {"pool_type", "argmax"}, {"proj_bias", false}, {"output_tokens", false},
                   {"final_ln_after_pool", false}},
                  {"context_length", "vocab_size", "width", "heads", "layers"});

  model::ModelConfig c;
  c.model_type = "clip";
  c.projection_dim = get_int(mc, "embed_dim", 512, where);
  const backend::Act act = json_bool_or(mc, "quick_gelu", false, where + ": model_cfg") ? backend::Act::QuickGelu : backend::Act::Gelu;
  model::VisionConfig v;
  v.hidden_size = get_int(vc, "width", 768, where);
  v.num_layers = get_int(vc, "layers", 12, where);
  v.num_heads = v.hidden_size / get_int(vc, "head_width", 64, where);
  v.intermediate_size = 4 * v.hidden_size;
  v.image_size = get_int(vc, "image_size", 224, where);
  v.patch_size = get_int(vc, "patch_size", 16, where);
  v.projection_dim = c.projection_dim;
  v.act = act;
  model::TextConfig t;
  t.hidden_size = get_int(tc, "width", 512, where);
  t.num_layers = get_int(tc, "layers", 12, where);
  t.num_heads = get_int(tc, "heads", 8, where);
  t.intermediate_size = 4 * t.hidden_size;
  t.vocab_size = get_int(tc, "vocab_size", 49408, where);
  t.max_position_embeddings = get_int(tc, "context_length", 77, where);
  t.projection_dim = c.projection_dim;
  t.act = act;
  c.vision = v;
  c.text = t;

  const json pc = root.value("preprocess_cfg", json::object());
  const std::string resize_mode = json_string_or(pc, "resize_mode", "shortest", where + ": preprocess_cfg");
  if (resize_mode != "shortest")
    fail("{}: preprocess_cfg resize_mode \"{}\" has no CLIPImageProcessor equivalent (only \"shortest\")", where,
         resize_mode);
  const std::string interp = json_string_or(pc, "interpolation", "bicubic", where + ": preprocess_cfg");
  if (interp != "bicubic" && interp != "bilinear")
    fail("{}: preprocess_cfg interpolation \"{}\" is not handled (bicubic, bilinear)", where, interp);

  fs::path weights = fs::path(in_dir) / "open_clip_model.safetensors";
  if (!fs::exists(weights)) weights = fs::path(in_dir) / "open_clip_pytorch_model.safetensors";
  if (!fs::exists(weights))
    fail("{}: no open_clip_model.safetensors; a pickled open_clip_pytorch_model.bin is not read (save it as safetensors "
         "first: python -c \"import torch, safetensors.torch as s; s.save_file(torch.load('open_clip_pytorch_model.bin'), "
         "'open_clip_model.safetensors')\")",
         in_dir);
  SafeTensorsFile f(weights.string());
  TensorMap in(f);
  std::vector<std::pair<std::string, Tensor>> out;
  auto copy = [&](const std::string& a, const std::string& b) { out.push_back({b, in.take(a)}); };
  copy("visual.class_embedding", "vision_model.embeddings.class_embedding");
  copy("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight");
  copy("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight");
  copy("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight");
  copy("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias");
  add_blocks(in, "visual.transformer.resblocks.", "vision_model.encoder.layers.", v.num_layers, v.hidden_size, &out);
  copy("visual.ln_post.weight", "vision_model.post_layernorm.weight");
  copy("visual.ln_post.bias", "vision_model.post_layernorm.bias");
  out.push_back({"visual_projection.weight", transposed(in.take("visual.proj"))});
  copy("token_embedding.weight", "text_model.embeddings.token_embedding.weight");
  copy("positional_embedding", "text_model.embeddings.position_embedding.weight");
  add_blocks(in, "transformer.resblocks.", "text_model.encoder.layers.", t.num_layers, t.hidden_size, &out);
  copy("ln_final.weight", "text_model.final_layer_norm.weight");
  copy("ln_final.bias", "text_model.final_layer_norm.bias");
  out.push_back({"text_projection.weight", transposed(in.take("text_projection"))});
  copy("logit_scale", "logit_scale");
  in.check_all_used();

  fs::create_directories(out_dir);
  write_safetensors((fs::path(out_dir) / "model.safetensors").string(), out, {{"format", "pt"}});
  write_file_atomic((fs::path(out_dir) / "config.json").string(), model::clip_config_json(c).dump(2) + "\n");
  write_clip_preprocessor_config(out_dir, v.image_size);
  // open_clip's normalization and filter, where they differ from CLIP's defaults
  const fs::path pp = fs::path(out_dir) / "preprocessor_config.json";
  json p = json::parse(read_file(pp.string()));
  if (pc.contains("mean")) p["image_mean"] = pc["mean"];
  if (pc.contains("std")) p["image_std"] = pc["std"];
  p["resample"] = interp == "bilinear" ? 2 : 3;
  write_file_atomic(pp.string(), p.dump(2) + "\n");
  write_clip_tokenizer_files(out_dir, vocab_dir.empty() ? assets_dir() + "/tokenizers/clip" : vocab_dir,
                             t.max_position_embeddings);
  auto m = model::ClipModel::load(out_dir);  // proves the result loads, shapes checked
  return {m->architecture(), static_cast<int64_t>(out.size())};
}

}  // namespace clipkit::pipeline
