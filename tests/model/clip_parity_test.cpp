// Forward parity with the float64 references of the tiny HF checkpoints
// (tests/data/reference/models/README.md gives the tolerances used here).
#include <gtest/gtest.h>

#include <vector>

#include "io/safetensors.h"
#include "model/clip_model.h"
#include "test_util.h"

namespace clipkit::model {
namespace {

using test::data_path;

struct Inputs {
  std::vector<int32_t> ids, mask;
  int64_t B, L;
};

Inputs text_inputs(const SafeTensorsFile& ref) {
  Inputs in;
  const clipkit::Tensor& ids = ref.get("input_ids");
  const clipkit::Tensor& mask = ref.get("attention_mask");
  in.B = ids.dim(0);
  in.L = ids.dim(1);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    in.ids.push_back(static_cast<int32_t>(ids.ptr<int64_t>()[i]));
    in.mask.push_back(static_cast<int32_t>(mask.ptr<int64_t>()[i]));
  }
  return in;
}

void check_model(const std::string& name, bool embeds_only_bf16 = false) {
  SafeTensorsFile ref(data_path("reference/models/" + name + ".safetensors"));
  LoadOptions o;
  o.device = test::test_device();
  auto m = ClipModel::load(data_path("models/" + name), o);
  const clipkit::Tensor& px = ref.get("pixel_values");
  const int64_t N = px.dim(0);
  auto vis = m->vision_forward(px.ptr<float>(), N, true);
  EXPECT_CLOSE_TO_REF("image_last_hidden_state", vis.last_hidden_state.ptr<float>(), ref.get("image_last_hidden_state"), 6e-5);
  EXPECT_CLOSE_TO_REF("image_pooler_output", vis.pooled.ptr<float>(), ref.get("image_pooler_output"), 3e-5);
  clipkit::Tensor img = m->image_features(px.ptr<float>(), N);
  EXPECT_CLOSE_TO_REF("image_embeds_unnormalized", img.ptr<float>(), ref.get("image_embeds_unnormalized"), 2e-5);

  auto in = text_inputs(ref);
  auto txt = m->text_forward(in.ids.data(), in.mask.data(), in.B, in.L, true);
  EXPECT_CLOSE_TO_REF("text_last_hidden_state", txt.last_hidden_state.ptr<float>(), ref.get("text_last_hidden_state"), 6e-5);
  EXPECT_CLOSE_TO_REF("text_pooler_output", txt.pooled.ptr<float>(), ref.get("text_pooler_output"), 3e-5);
  clipkit::Tensor tf = m->text_features(in.ids.data(), in.mask.data(), in.B, in.L);
  EXPECT_CLOSE_TO_REF("text_embeds_unnormalized", tf.ptr<float>(), ref.get("text_embeds_unnormalized"), 2e-5);

  const int64_t D = m->embed_dim();
  l2_normalize_rows(img.ptr<float>(), N, D);
  l2_normalize_rows(tf.ptr<float>(), in.B, D);
  EXPECT_CLOSE_TO_REF("image_embeds", img.ptr<float>(), ref.get("image_embeds"), 3e-6);
  EXPECT_CLOSE_TO_REF("text_embeds", tf.ptr<float>(), ref.get("text_embeds"), 3e-6);
  std::vector<float> logits(static_cast<size_t>(N * in.B));
  const float s = std::exp(m->logit_scale());
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < in.B; ++j) {
      float d = 0;
      for (int64_t k = 0; k < D; ++k) d += img.ptr<float>()[i * D + k] * tf.ptr<float>()[j * D + k];
      logits[static_cast<size_t>(i * in.B + j)] = s * d;
    }
  EXPECT_CLOSE_TO_REF("logits_per_image", logits.data(), ref.get("logits_per_image"), 5e-5);
  (void)embeds_only_bf16;
}

TEST(ClipParity, TinyClipFp32) { check_model("tiny-clip"); }
TEST(ClipParity, TinyClipRobertaFp32) { check_model("tiny-clip-roberta"); }

TEST(ClipParity, Bf16EmbeddingsCosine) {
  for (std::string name : {"tiny-clip", "tiny-clip-roberta"}) {
    SafeTensorsFile ref(data_path("reference/models/" + name + ".safetensors"));
    auto m = ClipModel::load(data_path("models/" + name), {backend::Precision::BF16, test::test_device()});
    const clipkit::Tensor& px = ref.get("pixel_values");
    clipkit::Tensor img = m->image_features(px.ptr<float>(), px.dim(0));
    auto in = text_inputs(ref);
    clipkit::Tensor tf = m->text_features(in.ids.data(), in.mask.data(), in.B, in.L);
    double ci = test::min_row_cosine(img, ref.get("image_embeds_unnormalized"));
    double ct = test::min_row_cosine(tf, ref.get("text_embeds_unnormalized"));
    std::printf("  %s bf16: min cosine image %.6f text %.6f\n", name.c_str(), ci, ct);
    EXPECT_GE(ci, 0.999) << name;
    EXPECT_GE(ct, 0.999) << name;
  }
}

TEST(ClipParity, LegacyEosPoolingUsesArgmax) {
  // eos_token_id == 2 (legacy configs): pool at argmax(ids); otherwise at the first eos id.
  const int32_t ids[] = {49406, 320, 49407, 49407};
  EXPECT_EQ(eos_position(ids, 4, 2), 2);
  EXPECT_EQ(eos_position(ids, 4, 49407), 2);
  const int32_t ids2[] = {0, 5, 2, 1};
  EXPECT_EQ(eos_position(ids2, 4, 2), 1);  // legacy rule picks the max id, as HF does
}

}  // namespace
}  // namespace clipkit::model
