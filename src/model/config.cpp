#include "model/config.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"

namespace clipkit::model {
namespace {

using json = nlohmann::json;

template <typename T>
void read(const json& j, const char* key, T& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;  // HF default stays
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {  // no silent wrap-around
    const bool fits = it->is_number_unsigned() ? it->template get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                      : it->is_number_integer() && it->template get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                            it->template get<int64_t>() <= int64_t(std::numeric_limits<T>::max());
    if (!fits) fail("{}: field \"{}\" must be an integer that fits {} bits, got {}", where, key, sizeof(T) * 8, it->dump());
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number() || !(std::fabs(it->template get<double>()) <= double(std::numeric_limits<T>::max())))
      fail("{}: field \"{}\" must be a finite number, got {}", where, key, it->dump());
  }
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    fail("{}: field \"{}\" has the wrong type ({})", where, key, it->dump());
  }
}

// A string field: core/json.h's reader (the default stays when the field is missing or null).
void read(const json& j, const char* key, std::string& out, const std::string& where) {
  out = json_string_or(j, key, out, where);
}

backend::Act read_act(const json& j, const std::string& where, backend::Act dflt) {
  std::string s;
  read(j, "hidden_act", s, where);
  if (s.empty()) return dflt;
  backend::Act a;
  if (!backend::act_from_name(s, &a)) fail("{}: unsupported hidden_act \"{}\" (supported: quick_gelu, gelu, gelu_new, relu)", where, s);
  return a;
}

template <typename T>
void require_positive(const std::string& where, const char* name, T v) {
  if (!(v > 0)) fail("{}: {} must be positive, got {}", where, name, v);
}

}  // namespace

VisionConfig parse_vision_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: vision config must be a JSON object", where);
  VisionConfig c;
  read(j, "hidden_size", c.hidden_size, where);
  read(j, "intermediate_size", c.intermediate_size, where);
  read(j, "num_hidden_layers", c.num_layers, where);
  read(j, "num_attention_heads", c.num_heads, where);
  read(j, "image_size", c.image_size, where);
  read(j, "patch_size", c.patch_size, where);
  read(j, "num_channels", c.num_channels, where);
  read(j, "projection_dim", c.projection_dim, where);
  read(j, "layer_norm_eps", c.layer_norm_eps, where);
  read(j, "attention_dropout", c.attention_dropout, where);
  c.act = read_act(j, where, backend::Act::QuickGelu);
  for (auto [n, v] : {std::pair{"hidden_size", c.hidden_size}, {"num_attention_heads", c.num_heads},
                      {"image_size", c.image_size}, {"patch_size", c.patch_size}, {"intermediate_size", c.intermediate_size}})
    require_positive(where, n, v);
  if (c.hidden_size % c.num_heads) fail("{}: hidden_size {} is not divisible by num_attention_heads {}", where, c.hidden_size, c.num_heads);
  require_positive(where, "layer_norm_eps", c.layer_norm_eps);
  if (c.image_size % c.patch_size) fail("{}: image_size {} is not divisible by patch_size {}", where, c.image_size, c.patch_size);
  return c;
}

TextConfig parse_text_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: text config must be a JSON object", where);
  TextConfig c;
  std::string type = json_string_or(j, "model_type", "clip_text_model", where);
  if (type == "roberta" || type == "xlm-roberta" || type == "bert") {
    if (type == "bert") fail("{}: text model_type \"bert\" is not supported yet (supported: clip_text_model, roberta)", where);
    c.arch = TextArch::Roberta;
    // RobertaConfig defaults
    c.vocab_size = 50265; c.hidden_size = 768; c.intermediate_size = 3072; c.num_layers = 12; c.num_heads = 12;
    c.max_position_embeddings = 512; c.type_vocab_size = 2; c.bos_token_id = 0; c.eos_token_id = 2; c.pad_token_id = 1;
    c.act = backend::Act::Gelu; c.layer_norm_eps = 1e-12f; c.hidden_dropout = 0.1f; c.attention_dropout = 0.1f;
    read(j, "type_vocab_size", c.type_vocab_size, where);
    read(j, "hidden_dropout_prob", c.hidden_dropout, where);
    read(j, "attention_probs_dropout_prob", c.attention_dropout, where);
    std::string pe;
    read(j, "position_embedding_type", pe, where);
    if (!pe.empty() && pe != "absolute") fail("{}: position_embedding_type \"{}\" is not supported (only absolute)", where, pe);
  } else if (type == "clip_text_model") {
    c.arch = TextArch::Clip;
    read(j, "dropout", c.hidden_dropout, where);
    read(j, "attention_dropout", c.attention_dropout, where);
  } else {
    fail("{}: unsupported text model_type \"{}\" (supported: clip_text_model, roberta)", where, type);
  }
  read(j, "vocab_size", c.vocab_size, where);
  read(j, "hidden_size", c.hidden_size, where);
  read(j, "intermediate_size", c.intermediate_size, where);
  read(j, "num_hidden_layers", c.num_layers, where);
  read(j, "num_attention_heads", c.num_heads, where);
  read(j, "max_position_embeddings", c.max_position_embeddings, where);
  read(j, "bos_token_id", c.bos_token_id, where);
  read(j, "eos_token_id", c.eos_token_id, where);
  read(j, "pad_token_id", c.pad_token_id, where);
  read(j, "layer_norm_eps", c.layer_norm_eps, where);
  read(j, "projection_dim", c.projection_dim, where);
  c.act = read_act(j, where, c.act);
  for (auto [n, v] : {std::pair{"hidden_size", c.hidden_size}, {"num_attention_heads", c.num_heads},
                      {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_position_embeddings},
                      {"intermediate_size", c.intermediate_size}})
    require_positive(where, n, v);
  if (c.hidden_size % c.num_heads) fail("{}: hidden_size {} is not divisible by num_attention_heads {}", where, c.hidden_size, c.num_heads);
  require_positive(where, "layer_norm_eps", c.layer_norm_eps);
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  return from_json(parse_json(read_file(path), path), path);
}

namespace {

ModelConfig parse_model_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: config must be a JSON object", where);
  ModelConfig c;
  c.raw = j;
  c.model_type = json_string_or(j, "model_type", "", where);
  if (c.model_type == "clip" || c.model_type == "vision-text-dual-encoder") {
    auto vit = j.find("vision_config");
    auto txt = j.find("text_config");
    if (vit == j.end() || !vit->is_object()) fail("{}: model_type \"{}\" needs a \"vision_config\" object", where, c.model_type);
    if (txt == j.end() || !txt->is_object()) fail("{}: model_type \"{}\" needs a \"text_config\" object", where, c.model_type);
    std::string vt = json_string_or(*vit, "model_type", "clip_vision_model", where + " vision_config");
    if (vt == "clip") {  // dual encoders may embed a whole CLIPConfig as the vision config
      auto inner = vit->find("vision_config");
      if (inner == vit->end() || !inner->is_object()) fail("{}: vision_config of type clip has no inner vision_config object", where);
      c.vision = parse_vision_config(*inner, where + " vision_config");
    } else if (vt == "clip_vision_model") {
      c.vision = parse_vision_config(*vit, where + " vision_config");
    } else {
      fail("{}: unsupported vision model_type \"{}\" (supported: clip_vision_model)", where, vt);
    }
    json tj = *txt;
    if (c.model_type == "clip" && !tj.contains("model_type")) tj["model_type"] = "clip_text_model";
    c.text = parse_text_config(tj, where + " text_config");
    read(j, "projection_dim", c.projection_dim, where);
    read(j, "logit_scale_init_value", c.logit_scale_init, where);
  } else if (c.model_type == "clip_vision_model") {
    c.vision = parse_vision_config(j, where);
    c.projection_dim = c.vision->projection_dim;
  } else if (c.model_type == "clip_text_model" || c.model_type == "roberta") {
    c.text = parse_text_config(j, where);
    c.projection_dim = c.text->projection_dim;
  } else if (c.model_type.empty()) {
    fail("{}: no \"model_type\" field; is this a Hugging Face config.json?", where);
  } else {
    fail("{}: unsupported model_type \"{}\" (supported: clip, vision-text-dual-encoder, clip_vision_model, "
         "clip_text_model, roberta)", where, c.model_type);
  }
  require_positive(where, "projection_dim", c.projection_dim);
  return c;
}

}  // namespace

// Every field above is read with a type check; a JSON type error that still gets through becomes
// an Error naming the file, like every other problem of a config.
ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  try {
    return parse_model_config(j, where);
  } catch (const json::exception& e) {
    fail("{}: {}", where, e.what());
  }
}

// A float written as the shortest decimal that reads back as the same float (1e-05, not
// 9.999999747378752e-06), so configs we write look like the ones HF writes.
double json_float(float f) { return std::stod(fmt::format("{}", f)); }

json vision_config_json(const VisionConfig& c) {
  return {{"model_type", "clip_vision_model"}, {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads}, {"image_size", c.image_size},
          {"patch_size", c.patch_size}, {"num_channels", c.num_channels}, {"projection_dim", c.projection_dim},
          {"hidden_act", backend::act_name(c.act)}, {"layer_norm_eps", json_float(c.layer_norm_eps)},
          {"attention_dropout", json_float(c.attention_dropout)},
          {"dropout", 0.0}, {"initializer_factor", 1.0}, {"initializer_range", 0.02}};
}

json text_config_json(const TextConfig& c) {
  json j = {{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
            {"max_position_embeddings", c.max_position_embeddings}, {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id}, {"pad_token_id", c.pad_token_id}, {"hidden_act", backend::act_name(c.act)},
            {"layer_norm_eps", json_float(c.layer_norm_eps)}};
  if (c.arch == TextArch::Clip) {
    j["model_type"] = "clip_text_model";
    j["projection_dim"] = c.projection_dim;
    j["dropout"] = json_float(c.hidden_dropout);
    j["attention_dropout"] = json_float(c.attention_dropout);
    j["initializer_factor"] = 1.0;
    j["initializer_range"] = 0.02;
  } else {
    j["model_type"] = "roberta";
    j["type_vocab_size"] = c.type_vocab_size;
    j["hidden_dropout_prob"] = json_float(c.hidden_dropout);
    j["attention_probs_dropout_prob"] = json_float(c.attention_dropout);
    j["position_embedding_type"] = "absolute";
    j["initializer_range"] = 0.02;
  }
  return j;
}

json clip_config_json(const ModelConfig& c) {
  if (!c.vision || !c.text) fail("clip_config_json: a CLIPModel needs both towers");
  return {{"architectures", {"CLIPModel"}},
          {"model_type", "clip"},
          {"projection_dim", c.projection_dim},
          {"logit_scale_init_value", json_float(c.logit_scale_init)},
          {"initializer_factor", 1.0},
          {"torch_dtype", "float32"},
          {"vision_config", vision_config_json(*c.vision)},
          {"text_config", text_config_json(*c.text)}};
}

}  // namespace clipkit::model
