// open_clip -> Hugging Face: tiny-clip written in open_clip's layout (in_proj q/k/v concatenated,
// projections transposed, open_clip names and open_clip_config.json), converted back: every tensor
// bit for bit, the same embeddings, and the variants it cannot express refused by name.
#include "pipeline/convert_open_clip.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/model_location.h"
#include "io/safetensors.h"
#include "pipeline/embedder.h"
#include "test_util.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kTiny = test::data_path("models/tiny-clip");

Tensor copy_of(const Tensor& t) {
  Tensor o = Tensor::empty(t.dtype, t.shape);
  std::memcpy(o.data, t.data, t.nbytes());
  return o;
}

Tensor concat_rows(const std::vector<const Tensor*>& parts) {
  Shape s = parts[0]->shape;
  s[0] = 0;
  for (auto* p : parts) s[0] += p->shape[0];
  Tensor o = Tensor::empty(parts[0]->dtype, s);
  size_t off = 0;
  for (auto* p : parts) std::memcpy(static_cast<char*>(o.data) + off, p->data, p->nbytes()), off += p->nbytes();
  return o;
}

Tensor transpose(const Tensor& t) {
  const int64_t A = t.dim(0), B = t.dim(1);
  Tensor o = Tensor::empty(DType::F32, {B, A});
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b) o.ptr<float>()[b * A + a] = t.ptr<float>()[a * B + b];
  return o;
}

// tiny-clip in open_clip's layout.
void write_open_clip(const std::string& dir, const json& model_cfg_patch = json::object()) {
  Checkpoint ck(kTiny);
  std::vector<std::pair<std::string, Tensor>> out;
  auto put = [&](const std::string& oc, const std::string& hf) { out.push_back({oc, copy_of(ck.get(hf))}); };
  auto blocks = [&](const std::string& oc, const std::string& hf, int layers) {
    for (int i = 0; i < layers; ++i) {
      const std::string o = oc + std::to_string(i) + ".", h = hf + std::to_string(i) + ".";
      put(o + "ln_1.weight", h + "layer_norm1.weight");
      put(o + "ln_1.bias", h + "layer_norm1.bias");
      out.push_back({o + "attn.in_proj_weight", concat_rows({&ck.get(h + "self_attn.q_proj.weight"), &ck.get(h + "self_attn.k_proj.weight"),
                                                             &ck.get(h + "self_attn.v_proj.weight")})});
      out.push_back({o + "attn.in_proj_bias", concat_rows({&ck.get(h + "self_attn.q_proj.bias"), &ck.get(h + "self_attn.k_proj.bias"),
                                                           &ck.get(h + "self_attn.v_proj.bias")})});
      put(o + "attn.out_proj.weight", h + "self_attn.out_proj.weight");
      put(o + "attn.out_proj.bias", h + "self_attn.out_proj.bias");
      put(o + "ln_2.weight", h + "layer_norm2.weight");
      put(o + "ln_2.bias", h + "layer_norm2.bias");
      put(o + "mlp.c_fc.weight", h + "mlp.fc1.weight");
      put(o + "mlp.c_fc.bias", h + "mlp.fc1.bias");
      put(o + "mlp.c_proj.weight", h + "mlp.fc2.weight");
      put(o + "mlp.c_proj.bias", h + "mlp.fc2.bias");
    }
  };
  put("visual.class_embedding", "vision_model.embeddings.class_embedding");
  put("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight");
  put("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight");
  put("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight");
  put("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias");
  blocks("visual.transformer.resblocks.", "vision_model.encoder.layers.", 2);
  put("visual.ln_post.weight", "vision_model.post_layernorm.weight");
  put("visual.ln_post.bias", "vision_model.post_layernorm.bias");
  out.push_back({"visual.proj", transpose(ck.get("visual_projection.weight"))});
  put("token_embedding.weight", "text_model.embeddings.token_embedding.weight");
  put("positional_embedding", "text_model.embeddings.position_embedding.weight");
  blocks("transformer.resblocks.", "text_model.encoder.layers.", 2);
  put("ln_final.weight", "text_model.final_layer_norm.weight");
  put("ln_final.bias", "text_model.final_layer_norm.bias");
  out.push_back({"text_projection", transpose(ck.get("text_projection.weight"))});
  put("logit_scale", "logit_scale");
  out.push_back({"attn_mask", Tensor::zeros(DType::F32, {77, 77})});  // a buffer open_clip saves; ignored
  fs::create_directories(dir);
  write_safetensors(dir + "/open_clip_model.safetensors", out);
  json cfg = {{"model_cfg",
               {{"embed_dim", 48},
                {"quick_gelu", true},
                {"vision_cfg", {{"image_size", 64}, {"layers", 2}, {"width", 128}, {"patch_size", 16}, {"head_width", 64}}},
                {"text_cfg", {{"context_length", 77}, {"vocab_size", 49408}, {"width", 64}, {"heads", 2}, {"layers", 2}}}}},
              {"preprocess_cfg", {{"mean", {0.48145466, 0.4578275, 0.40821073}}, {"std", {0.26862954, 0.26130258, 0.27577711}}}}};
  cfg["model_cfg"].merge_patch(model_cfg_patch);
  write_file_atomic(dir + "/open_clip_config.json", cfg.dump(2));
}

TEST(ConvertOpenClip, TinyClipRoundTripsBitForBit) {
  const std::string dir = (fs::temp_directory_path() / ("clipkit_openclip_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  write_open_clip(dir + "/oc");
  // the resolver refuses the open_clip folder, naming the conversion
  try {
    resolve_model_dir(dir + "/oc");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("clipkit convert open-clip"), std::string::npos) << e.what();
  }
  auto r = pipeline::convert_open_clip(dir + "/oc", dir + "/hf", kTiny);
  EXPECT_EQ(r.tensors, static_cast<int64_t>(Checkpoint(kTiny).tensors().size()));
  Checkpoint a(kTiny), b(dir + "/hf");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (auto& [name, t] : a.tensors()) {
    ASSERT_TRUE(b.has(name)) << name;
    const Tensor& u = b.get(name);
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(std::memcmp(u.data, t.data, t.nbytes()), 0) << name;
  }
  // the same embeddings as the original folder, images and texts
  auto ea = pipeline::Embedder::load(kTiny), eb = pipeline::Embedder::load(dir + "/hf");
  pipeline::EmbedOptions eo;
  Tensor ta = ea->embed_texts({"a photo of a cat", "a red circle on the left"}, eo);
  Tensor tb = eb->embed_texts({"a photo of a cat", "a red circle on the left"}, eo);
  EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.nbytes()), 0);
  std::vector<int64_t> kept;
  std::vector<pipeline::SkippedInput> skipped;
  const std::vector<std::string> imgs = {test::data_path("images/chelsea.jpg")};
  Tensor ia = ea->embed_image_files(imgs, eo, &kept, &skipped), ib = eb->embed_image_files(imgs, eo, &kept, &skipped);
  EXPECT_EQ(std::memcmp(ia.data, ib.data, ia.nbytes()), 0);
  fs::remove_all(dir);
}

TEST(ConvertOpenClip, RefusesVariantsByName) {
  const std::string dir = (fs::temp_directory_path() / ("clipkit_openclip_v_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  auto error_of = [&](const json& patch) {
    fs::remove_all(dir);
    write_open_clip(dir + "/oc", patch);
    try {
      pipeline::convert_open_clip(dir + "/oc", dir + "/hf", kTiny);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of({{"vision_cfg", {{"timm_model_name", "convnext_base"}}}}).find("\"timm_model_name\""), std::string::npos);
  EXPECT_NE(error_of({{"vision_cfg", {{"attentional_pool", true}}}}).find("\"attentional_pool\": true"), std::string::npos);
  EXPECT_NE(error_of({{"text_cfg", {{"hf_model_name", "roberta-base"}}}}).find("\"hf_model_name\""), std::string::npos);
  EXPECT_NE(error_of({{"init_logit_bias", -10}}).find("SigLIP"), std::string::npos);
  EXPECT_NE(error_of({{"custom_text", true}}).find("\"custom_text\""), std::string::npos);
  // pickled weights only
  fs::remove_all(dir);
  write_open_clip(dir + "/oc");
  fs::rename(dir + "/oc/open_clip_model.safetensors", dir + "/oc/open_clip_pytorch_model.bin");
  try {
    pipeline::convert_open_clip(dir + "/oc", dir + "/hf", kTiny);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("open_clip_pytorch_model.bin is not read"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
