// Hugging Face config.json for the model types clipkit runs: every field that changes the math.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/backend.h"

namespace clipkit::model {

struct VisionConfig {  // CLIPVisionConfig
  int hidden_size = 768, intermediate_size = 3072, num_layers = 12, num_heads = 12;
  int image_size = 224, patch_size = 32, num_channels = 3;
  int projection_dim = 512;  // only used by a bare CLIPVisionModelWithProjection
  backend::Act act = backend::Act::QuickGelu;
  float layer_norm_eps = 1e-5f;
  float attention_dropout = 0;  // training only; released CLIP checkpoints set 0
  int num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

enum class TextArch { Clip, Roberta };

struct TextConfig {  // CLIPTextConfig or RobertaConfig
  TextArch arch = TextArch::Clip;
  int vocab_size = 49408, hidden_size = 512, intermediate_size = 2048, num_layers = 12, num_heads = 8;
  int max_position_embeddings = 77, type_vocab_size = 0;
  int bos_token_id = 49406, eos_token_id = 49407, pad_token_id = 1;
  backend::Act act = backend::Act::QuickGelu;
  float layer_norm_eps = 1e-5f;
  float hidden_dropout = 0, attention_dropout = 0;  // RoBERTa; CLIP checkpoints set 0
  bool add_pooling_layer = true;                   // RoBERTa pooler (tanh(dense(h[:,0])))
  int projection_dim = 512;
};

struct ModelConfig {
  std::string model_type;  // "clip", "vision-text-dual-encoder", "clip_vision_model", "clip_text_model"
  std::optional<VisionConfig> vision;
  std::optional<TextConfig> text;
  int projection_dim = 512;
  float logit_scale_init = 2.6592f;
  nlohmann::json raw;  // the file as read, so `save` round-trips fields clipkit doesn't use

  static ModelConfig from_file(const std::string& config_json_path);
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source_for_errors);
};

VisionConfig parse_vision_config(const nlohmann::json& j, const std::string& where);
TextConfig parse_text_config(const nlohmann::json& j, const std::string& where);
nlohmann::json vision_config_json(const VisionConfig& c);
nlohmann::json text_config_json(const TextConfig& c);
// config.json of a CLIPModel (both towers of c), as HF's CLIPConfig.save_pretrained writes it.
nlohmann::json clip_config_json(const ModelConfig& c);
double json_float(float f);

}  // namespace clipkit::model
