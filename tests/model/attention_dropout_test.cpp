// Attention-probability dropout in full fine-tuning: it is wired into both towers (RoBERTa's
// attention_probs_dropout_prob, CLIP's attention_dropout), it is off in eval forwards and with
// --no-dropout, and gradient checkpointing regenerates the same masks (identical gradients).
#include <gtest/gtest.h>


#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "edited_model.h"
#include "reference_batch.h"
#include "test_util.h"

namespace clipkit::model {
namespace {

namespace fs = std::filesystem;
using test::data_path;

struct Step {
  double loss = 0;
  std::vector<float> img_emb;
  std::map<std::string, std::vector<float>> grads;
};

// One forward/backward of full fine-tuning on the reference batch of tiny-clip (the model's
// weights, `dir`'s config).
Step run_step(const std::string& model, const std::string& dir, bool dropout, bool ckpt, backend::Precision prec,
              bool training = true) {
  SafeTensorsFile ref(data_path("reference/train/gradients.safetensors"));
  auto m = ClipModel::load(dir, testing::training_options(prec, dropout, ckpt));
  Step s;
  auto r = testing::full_step(*m, testing::ReferenceBatch::load(ref, model), training, 3, training, &s.img_emb);
  s.loss = r.loss;
  if (!training) return s;
  for (const auto& e : m->params()) s.grads[e.name] = testing::host(m->backend(), e.grad);
  return s;
}

bool under(const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; }

void expect_identical(const Step& a, const Step& b, const char* what) {
  EXPECT_EQ(a.loss, b.loss) << what;
  ASSERT_EQ(a.grads.size(), b.grads.size());
  int differing = 0;
  for (const auto& [name, g] : a.grads) {
    const auto& h = b.grads.at(name);
    if (g.size() != h.size() || std::memcmp(g.data(), h.data(), sizeof(float) * g.size()) != 0) {
      ++differing;
      ADD_FAILURE() << what << ": gradient of " << name << " differs";
    }
  }
  std::printf("  %s: %zu tensors, %d differ\n", what, a.grads.size(), differing);
}

// Fraction of the encoder-layer tensors of a tower (name prefix) whose gradients differ.
double changed(const Step& a, const Step& b, const char* tower) {
  int n = 0, d = 0;
  for (const auto& [name, g] : a.grads) {
    if (!under(name, tower) || name.find(".encoder.") == std::string::npos) continue;
    ++n;
    d += g != b.grads.at(name);
  }
  return n ? double(d) / n : 0.0;
}

TEST(AttentionDropoutTraining, CheckpointingGivesIdenticalGradientsRoberta) {
  const std::string dir = data_path("models/tiny-clip-roberta");  // attention_probs_dropout_prob 0.1
  for (auto prec : {backend::Precision::F32, backend::Precision::BF16}) {
    const auto plain = run_step("tiny-clip-roberta", dir, true, false, prec);
    const auto ckpt = run_step("tiny-clip-roberta", dir, true, true, prec);
    expect_identical(plain, ckpt, backend::precision_name(prec));
  }
}

// RoBERTa's attention_probs_dropout_prob (0.1) is applied in the text tower (and not in the vision
// tower, whose attention_dropout is 0: same image embeddings).
TEST(AttentionDropoutTraining, RobertaUsesAttentionProbsDropout) {
  const std::string dir = testing::edited_copy("tiny-clip-roberta", "roberta", [](nlohmann::json& c) {
    c["text_config"]["attention_probs_dropout_prob"] = 0.0;
  });
  const auto without = run_step("tiny-clip-roberta", dir, true, false, backend::Precision::F32);
  const auto with = run_step("tiny-clip-roberta", data_path("models/tiny-clip-roberta"), true, false,
                             backend::Precision::F32);
  const double t = changed(without, with, "text_model.");
  std::printf("  changed by attention dropout: text %.2f of encoder tensors; loss %.6f -> %.6f\n", t, without.loss,
              with.loss);
  EXPECT_GT(t, 0.9);
  EXPECT_NE(without.loss, with.loss);
  EXPECT_EQ(without.img_emb, with.img_emb);
  fs::remove_all(dir);
}

TEST(AttentionDropoutTraining, ClipTowersUseTheirAttentionDropout) {
  const std::string dir = testing::edited_copy("tiny-clip", "clip", [](nlohmann::json& c) {
    c["vision_config"]["attention_dropout"] = 0.2;
    c["text_config"]["attention_dropout"] = 0.2;
  });
  const std::string orig = data_path("models/tiny-clip");
  const auto off = run_step("tiny-clip", orig, true, false, backend::Precision::F32);  // config p = 0
  const auto no_flag = run_step("tiny-clip", dir, false, false, backend::Precision::F32);  // --no-dropout
  const auto on = run_step("tiny-clip", dir, true, false, backend::Precision::F32);
  const auto on_ckpt = run_step("tiny-clip", dir, true, true, backend::Precision::F32);
  expect_identical(off, no_flag, "no-dropout == config p 0");
  expect_identical(on, on_ckpt, "checkpointing with dropout");
  // dropout changes the gradients of (nearly) every tensor of both towers
  const double v = changed(off, on, "vision_model."), t = changed(off, on, "text_model.");
  std::printf("  changed by dropout: vision %.2f, text %.2f of encoder tensors; loss %.6f -> %.6f\n", v, t, off.loss,
              on.loss);
  EXPECT_GT(v, 0.9);
  EXPECT_GT(t, 0.9);
  EXPECT_NE(off.loss, on.loss);
  // eval forwards never drop
  const auto eval_off = run_step("tiny-clip", orig, true, false, backend::Precision::F32, false);
  const auto eval_on = run_step("tiny-clip", dir, true, false, backend::Precision::F32, false);
  EXPECT_EQ(eval_off.loss, eval_on.loss);
  EXPECT_EQ(eval_off.img_emb, eval_on.img_emb);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit::model
