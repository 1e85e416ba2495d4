// --precision bf16 (bf16 matmuls, fp32 master weights and AdamW state) follows the fp32 loss
// curve: 15 AdamW steps of full fine-tuning of tiny-clip and tiny-clip-roberta on the reference batch.
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "model/reference_batch.h"
#include "test_util.h"
#include "train/optimizer.h"

namespace clipkit::train {
namespace {

using test::data_path;

std::vector<double> loss_curve(const std::string& model, backend::Precision prec, bool ckpt, int steps) {
  namespace testing = clipkit::model::testing;
  SafeTensorsFile ref(data_path("reference/train/gradients.safetensors"));
  auto m = clipkit::model::ClipModel::load(data_path("models/" + model), testing::training_options(prec, false, ckpt));
  const auto batch = testing::ReferenceBatch::load(ref, model);
  AdamW opt(m->backend(), m->trainable(), {0.9, 0.999, 1e-8, 0.1});
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    auto r = testing::full_step(*m, batch, true, static_cast<uint64_t>(s));
    opt.step(1e-3, clip_coefficient(opt.grad_norm(), 1.0));
    losses.push_back(r.loss);
  }
  return losses;
}

void compare(const std::string& model) {
  auto f32 = loss_curve(model, backend::Precision::F32, false, 15);
  auto b16 = loss_curve(model, backend::Precision::BF16, false, 15);
  double worst = 0;
  for (size_t i = 0; i < f32.size(); ++i) worst = std::max(worst, std::fabs(f32[i] - b16[i]));
  std::printf("  %s: fp32 loss %.4f -> %.4f, bf16 %.4f -> %.4f, max |diff| %.4f\n", model.c_str(), f32.front(),
              f32.back(), b16.front(), b16.back(), worst);
  EXPECT_LT(f32.back(), 0.5 * f32.front());  // it learns the batch
  EXPECT_LT(b16.back(), 0.5 * b16.front());
  EXPECT_LT(worst, 0.05);
}

TEST(MixedPrecision, Bf16LossCurveTracksFp32TinyClip) { compare("tiny-clip"); }
TEST(MixedPrecision, Bf16LossCurveTracksFp32TinyClipRoberta) { compare("tiny-clip-roberta"); }

TEST(GradientCheckpointing, SameTrajectory) {
  auto a = loss_curve("tiny-clip-roberta", backend::Precision::F32, false, 5);
  auto b = loss_curve("tiny-clip-roberta", backend::Precision::F32, true, 5);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << i;
}

}  // namespace
}  // namespace clipkit::train
