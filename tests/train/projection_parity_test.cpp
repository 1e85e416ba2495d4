// Projection-only training (frozen towers) reproduces the HF Trainer's AdamW trajectory:
// tests/data/reference/train/projection-only*.safetensors (tolerances from its README).
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "model/clip_model.h"
#include "test_util.h"
#include "train/clip_loss.h"
#include "train/optimizer.h"
#include "train/projection_head.h"

namespace clipkit::train {
namespace {

using test::data_path;

double ref_scalar(const SafeTensorsFile& f, const std::string& name, int64_t i = 0) {
  return f.get(name).to_f64().ptr<double>()[i];
}

std::vector<float> as_f32(const Tensor& t) {
  Tensor f = t.to_f32();
  return std::vector<float>(f.ptr<float>(), f.ptr<float>() + f.numel());
}

void run_reference(const std::string& file, double max_grad_norm) {
  SafeTensorsFile ref(data_path("reference/train/" + file));
  auto m = model::ClipModel::load(data_path("models/tiny-clip-roberta"));
  const int64_t P = 48, Cv = 128, Ct = 64, B = 8;
  ProjectionHead head;
  head.init(as_f32(ref.get("initial.visual_projection.weight")), as_f32(ref.get("initial.text_projection.weight")), P, Cv,
            Ct, static_cast<float>(ref_scalar(ref, "initial.logit_scale")));
  AdamWConfig ac;
  ac.weight_decay = 0.1;
  AdamW opt(head.params(), ac);
  const Tensor& px = ref.get("pixel_values");
  const Tensor& ids = ref.get("input_ids");
  const Tensor& mask = ref.get("attention_mask");
  const int64_t L = ids.dim(2);
  for (int64_t k = 0; k < 6; ++k) {
    auto vis = m->vision_forward(px.ptr<float>() + k * B * 3 * 64 * 64, B, false);
    std::vector<int32_t> id(static_cast<size_t>(B * L)), mk(static_cast<size_t>(B * L));
    for (int64_t i = 0; i < B * L; ++i) {
      id[i] = static_cast<int32_t>(ids.ptr<int64_t>()[k * B * L + i]);
      mk[i] = static_cast<int32_t>(mask.ptr<int64_t>()[k * B * L + i]);
    }
    auto txt = m->text_forward(id.data(), mk.data(), B, L, false);
    std::vector<float> ie(B * P), te(B * P), di(B * P), dt(B * P);
    head.project_images(vis.pooled.ptr<float>(), B, ie.data());
    head.project_texts(txt.pooled.ptr<float>(), B, te.data());
    head.zero_grad();
    auto r = clip_loss(ie.data(), te.data(), B, P, head.logit_scale, di.data(), dt.data());
    head.g_logit_scale = static_cast<float>(r.dlogit_scale);
    head.backward(vis.pooled.ptr<float>(), txt.pooled.ptr<float>(), di.data(), dt.data(), B);
    EXPECT_NEAR(r.loss, ref_scalar(ref, "loss", k), 2e-5) << "step " << k;
    if (k == 0) {
      EXPECT_CLOSE_TO_REF("grad_step0.visual", head.gv.data(), ref.get("grad_step0.visual_projection.weight"), 5e-6);
      EXPECT_CLOSE_TO_REF("grad_step0.text", head.gt.data(), ref.get("grad_step0.text_projection.weight"), 5e-6);
      EXPECT_NEAR(head.g_logit_scale, ref_scalar(ref, "grad_step0.logit_scale"), 5e-6);
    }
    double norm = clip_grad_norm(opt.params(), max_grad_norm);
    EXPECT_NEAR(norm, ref_scalar(ref, "grad_norm", k), 8e-5) << "step " << k;
    double lr = 5e-3 * lr_factor(Schedule::Linear, k, 6, 0);
    EXPECT_NEAR(lr, ref_scalar(ref, "lr", k), 1e-12);
    opt.step(lr);
    EXPECT_NEAR(head.logit_scale, ref_scalar(ref, "logit_scale_after", k), 3e-6) << "step " << k;
    if (k == 0) {
      EXPECT_CLOSE_TO_REF("step1.visual", head.wv.data(), ref.get("step1.visual_projection.weight"), 2e-6);
      EXPECT_CLOSE_TO_REF("step1.text", head.wt.data(), ref.get("step1.text_projection.weight"), 2e-6);
    }
  }
  EXPECT_CLOSE_TO_REF("final.visual", head.wv.data(), ref.get("final.visual_projection.weight"), 2e-6);
  EXPECT_CLOSE_TO_REF("final.text", head.wt.data(), ref.get("final.text_projection.weight"), 2e-6);
  EXPECT_NEAR(head.logit_scale, ref_scalar(ref, "final.logit_scale"), 3e-6);
}

TEST(ProjectionTraining, MatchesHfTrainerMaxNorm1) { run_reference("projection-only.safetensors", 1.0); }
TEST(ProjectionTraining, MatchesHfTrainerMaxNorm5) { run_reference("projection-only-maxnorm5.safetensors", 5.0); }

TEST(Schedules, HfFormulas) {
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Linear, 0, 10, 2), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Linear, 1, 10, 2), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Linear, 2, 10, 2), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Linear, 6, 10, 2), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Cosine, 6, 10, 2), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(Schedule::Constant, 9, 10, 2), 1.0);
}

TEST(WeightDecay, HfGroups) {
  EXPECT_TRUE(hf_weight_decay("logit_scale"));
  EXPECT_TRUE(hf_weight_decay("visual_projection.weight"));
  EXPECT_TRUE(hf_weight_decay("text_model.embeddings.word_embeddings.weight"));
  EXPECT_TRUE(hf_weight_decay("vision_model.embeddings.class_embedding"));
  EXPECT_FALSE(hf_weight_decay("text_model.encoder.layer.0.attention.output.LayerNorm.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.pre_layrnorm.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.post_layernorm.weight"));
  EXPECT_FALSE(hf_weight_decay("text_model.final_layer_norm.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.encoder.layers.0.layer_norm1.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.encoder.layers.0.mlp.fc1.bias"));
}

TEST(ClipLoss, GradientMatchesFiniteDifferences) {
  const int64_t B = 3, P = 5;
  std::vector<float> img(B * P), txt(B * P), di(B * P), dt(B * P);
  for (int64_t i = 0; i < B * P; ++i) {
    img[i] = std::sin(0.7f * i + 0.3f);
    txt[i] = std::cos(1.3f * i - 0.2f);
  }
  float s = 1.1f;
  auto r = clip_loss(img.data(), txt.data(), B, P, s, di.data(), dt.data());
  const double h = 1e-3;
  for (int64_t i = 0; i < B * P; ++i) {
    float keep = img[i];
    img[i] = keep + static_cast<float>(h);
    double lp = clip_loss(img.data(), txt.data(), B, P, s, nullptr, nullptr).loss;
    img[i] = keep - static_cast<float>(h);
    double lm = clip_loss(img.data(), txt.data(), B, P, s, nullptr, nullptr).loss;
    img[i] = keep;
    EXPECT_NEAR(di[i], (lp - lm) / (2 * h), 2e-4) << i;
  }
  double lp = clip_loss(img.data(), txt.data(), B, P, s + 1e-3f, nullptr, nullptr).loss;
  double lm = clip_loss(img.data(), txt.data(), B, P, s - 1e-3f, nullptr, nullptr).loss;
  EXPECT_NEAR(r.dlogit_scale, (lp - lm) / 2e-3, 2e-4);
}

}  // namespace
}  // namespace clipkit::train
