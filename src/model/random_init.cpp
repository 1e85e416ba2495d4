#include "model/random_init.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/parallel.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace clipkit::model {
namespace {

using json = nlohmann::json;

// splitmix64 -> Box-Muller; deterministic per (seed, tensor index, element) so threads agree.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Tensor normal(Shape s, float stddev, uint64_t seed) {
  Tensor t = Tensor::empty(DType::F32, std::move(s));
  float* p = t.ptr<float>();
  parallel_for(t.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint64_t r = mix(seed * 0x100000001b3ull + static_cast<uint64_t>(i));
      double u1 = ((r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
      double u2 = (mix(r) >> 11) * (1.0 / 9007199254740992.0);
      p[i] = static_cast<float>(stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
  }, 1 << 15);
  return t;
}

Tensor filled(Shape s, float v) {
  Tensor t = Tensor::empty(DType::F32, std::move(s));
  std::fill(t.ptr<float>(), t.ptr<float>() + t.numel(), v);
  return t;
}

struct Builder {
  std::vector<std::pair<std::string, Tensor>> out;
  uint64_t seed;
  uint64_t n = 0;
  void add_normal(const std::string& name, Shape s, float std) { out.emplace_back(name, normal(std::move(s), std, seed + 1000 * ++n)); }
  void add(const std::string& name, Tensor t) { out.emplace_back(name, std::move(t)); }
  void linear(const std::string& p, int64_t N, int64_t K, bool bias = true) {
    add_normal(p + "weight", {N, K}, 1.0f / std::sqrt(static_cast<float>(K)));
    if (bias) add(p + "bias", filled({N}, 0.0f));
  }
  void ln(const std::string& p, int64_t C) {
    add(p + "weight", filled({C}, 1.0f));
    add(p + "bias", filled({C}, 0.0f));
  }
  void clip_layers(const std::string& p, int layers, int64_t C, int64_t I) {
    for (int i = 0; i < layers; ++i) {
      std::string l = p + "encoder.layers." + std::to_string(i) + ".";
      for (const char* n : {"q_proj.", "k_proj.", "v_proj.", "out_proj."}) linear(l + "self_attn." + n, C, C);
      ln(l + "layer_norm1.", C);
      ln(l + "layer_norm2.", C);
      linear(l + "mlp.fc1.", I, C);
      linear(l + "mlp.fc2.", C, I);
    }
  }
};

ModelConfig make(int vw, int vl, int vh, int img, int patch, int tw, int tl, int th, int proj) {
  ModelConfig c;
  c.model_type = "clip";
  VisionConfig v;
  v.hidden_size = vw; v.intermediate_size = 4 * vw; v.num_layers = vl; v.num_heads = vh;
  v.image_size = img; v.patch_size = patch; v.projection_dim = proj;
  TextConfig t;
  t.hidden_size = tw; t.intermediate_size = 4 * tw; t.num_layers = tl; t.num_heads = th; t.projection_dim = proj;
  // the openai/clip-vit-* configs on the Hub carry the legacy ids (bos 0, eos 2, pad 1): EOS pooling by argmax
  t.bos_token_id = 0; t.eos_token_id = 2; t.pad_token_id = 1;
  c.vision = v;
  c.text = t;
  c.projection_dim = proj;
  return c;
}

}  // namespace

ModelConfig make_roberta(int width, int layers, int heads) {
  ModelConfig c;
  c.model_type = "roberta";
  TextConfig t;
  t.arch = TextArch::Roberta;
  t.vocab_size = 50265; t.hidden_size = width; t.intermediate_size = 4 * width; t.num_layers = layers;
  t.num_heads = heads; t.max_position_embeddings = 514; t.type_vocab_size = 1; t.bos_token_id = 0;
  t.eos_token_id = 2; t.pad_token_id = 1; t.act = backend::Act::Gelu; t.layer_norm_eps = 1e-5f;
  t.hidden_dropout = 0.1f; t.attention_dropout = 0.1f;
  c.text = t;
  return c;
}

std::vector<std::string> known_architectures() {
  return {"clip-vit-base-patch32", "clip-vit-base-patch16", "clip-vit-large-patch14", "clip-tiny", "roberta-base", "roberta-tiny"};
}

ModelConfig architecture_config(const std::string& arch) {
  if (arch == "clip-vit-base-patch32") return make(768, 12, 12, 224, 32, 512, 12, 8, 512);
  if (arch == "clip-vit-base-patch16") return make(768, 12, 12, 224, 16, 512, 12, 8, 512);
  if (arch == "clip-vit-large-patch14") return make(1024, 24, 16, 224, 14, 768, 12, 12, 768);
  if (arch == "clip-tiny") return make(128, 2, 2, 64, 16, 64, 2, 2, 48);
  if (arch == "roberta-base") return make_roberta(768, 12, 12);
  if (arch == "roberta-tiny") return make_roberta(64, 2, 2);
  std::string all;
  for (auto& a : known_architectures()) all += (all.empty() ? "" : ", ") + a;
  fail("unknown architecture \"{}\" (known: {})", arch, all);
}

void write_random_clip(const ModelConfig& c, const std::string& dir, uint64_t seed) {
  namespace fs = std::filesystem;
  if (!c.vision || !c.text) fail("write_random_clip: needs both towers");
  fs::create_directories(dir);
  const auto& v = *c.vision;
  const auto& t = *c.text;
  Builder b{{}, seed};
  const std::string vp = "vision_model.", tp = "text_model.";
  b.add_normal(vp + "embeddings.class_embedding", {v.hidden_size}, 0.02f);
  b.add_normal(vp + "embeddings.patch_embedding.weight", {v.hidden_size, v.num_channels, v.patch_size, v.patch_size},
               1.0f / std::sqrt(static_cast<float>(v.num_channels * v.patch_size * v.patch_size)));
  b.add_normal(vp + "embeddings.position_embedding.weight", {v.num_patches() + 1, v.hidden_size}, 0.02f);
  b.ln(vp + "pre_layrnorm.", v.hidden_size);
  b.clip_layers(vp, v.num_layers, v.hidden_size, v.intermediate_size);
  b.ln(vp + "post_layernorm.", v.hidden_size);
  b.add_normal(tp + "embeddings.token_embedding.weight", {t.vocab_size, t.hidden_size}, 0.02f);
  b.add_normal(tp + "embeddings.position_embedding.weight", {t.max_position_embeddings, t.hidden_size}, 0.01f);
  b.clip_layers(tp, t.num_layers, t.hidden_size, t.intermediate_size);
  b.ln(tp + "final_layer_norm.", t.hidden_size);
  b.linear("visual_projection.", c.projection_dim, v.hidden_size, false);
  b.linear("text_projection.", c.projection_dim, t.hidden_size, false);
  Tensor ls = Tensor::empty(DType::F32, {});
  *ls.ptr<float>() = c.logit_scale_init;
  b.add("logit_scale", ls);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), b.out, {{"format", "pt"}});

  write_file_atomic((fs::path(dir) / "config.json").string(), clip_config_json(c).dump(2) + "\n");
}

void write_random_roberta(const TextConfig& t, const std::string& dir, uint64_t seed) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  Builder b{{}, seed};
  const int64_t C = t.hidden_size;
  b.add_normal("embeddings.word_embeddings.weight", {t.vocab_size, C}, 0.02f);
  b.add_normal("embeddings.position_embeddings.weight", {t.max_position_embeddings, C}, 0.02f);
  b.add_normal("embeddings.token_type_embeddings.weight", {t.type_vocab_size, C}, 0.02f);
  b.ln("embeddings.LayerNorm.", C);
  for (int i = 0; i < t.num_layers; ++i) {
    std::string l = "encoder.layer." + std::to_string(i) + ".";
    for (const char* n : {"attention.self.query.", "attention.self.key.", "attention.self.value.", "attention.output.dense."})
      b.linear(l + n, C, C);
    b.ln(l + "attention.output.LayerNorm.", C);
    b.linear(l + "intermediate.dense.", t.intermediate_size, C);
    b.linear(l + "output.dense.", C, t.intermediate_size);
    b.ln(l + "output.LayerNorm.", C);
  }
  b.linear("pooler.dense.", C, C);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), b.out, {{"format", "pt"}});
  json cfg = text_config_json(t);
  cfg["architectures"] = {"RobertaModel"};
  cfg["torch_dtype"] = "float32";
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace clipkit::model
