// Projection-only training (frozen towers) reproduces the HF Trainer's AdamW trajectory:
// tests/data/reference/train/projection-only*.safetensors (tolerances from its README).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "model/reference_batch.h"
#include "test_util.h"
#include "train/optimizer.h"

namespace clipkit::train {
namespace {

using test::data_path;

double ref_scalar(const SafeTensorsFile& f, const std::string& name, int64_t i = 0) {
  return f.get(name).to_f64().ptr<double>()[i];
}

const model::Param& param(const model::ClipModel& m, const std::string& name) {
  for (auto& p : m.params())
    if (p.name == name) return p;
  throw Error("no parameter " + name);
}

std::vector<float> values(const model::ClipModel& m, const std::string& name, bool grad = false) {
  const model::Param& p = param(m, name);
  return model::testing::host(m.backend(), grad ? p.grad : p.value);
}

void run_reference(const std::string& file, double max_grad_norm) {
  SafeTensorsFile ref(data_path("reference/train/" + file));
  model::LoadOptions o;
  o.device = test::test_device();
  o.train = o.freeze_vision = o.freeze_text = true;
  auto m = model::ClipModel::load(data_path("models/tiny-clip-roberta"), o);
  m->load_state({{"visual_projection.weight", ref.get("initial.visual_projection.weight")},
                 {"text_projection.weight", ref.get("initial.text_projection.weight")},
                 {"logit_scale", ref.get("initial.logit_scale")}},
                file);
  const int64_t P = 48, B = 8;
  AdamWConfig ac;
  ac.weight_decay = 0.1;
  AdamW opt(m->backend(), m->trainable(), ac);
  ASSERT_EQ(opt.params().size(), 3u);  // the projections and logit_scale
  backend::Backend& be = m->backend();
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
    backend::Arena::Scope scope(be.thread_arena());
    m->zero_grad();
    backend::Tensor ie = m->project(model::Part::Vision, vis.pooled.ptr<float>(), B, true);
    backend::Tensor te = m->project(model::Part::Text, txt.pooled.ptr<float>(), B, true);
    backend::Tensor di = be.thread_arena().alloc(DType::F32, {B, P}), dt = be.thread_arena().alloc(DType::F32, {B, P});
    auto r = be.clip_loss(ie, te, m->logit_scale_param().value, &di, &dt);
    const float dscale = static_cast<float>(r.dlogit_scale);
    be.upload(&dscale, m->logit_scale_param().grad);
    m->backward(model::Part::Vision, di);
    m->backward(model::Part::Text, dt);
    EXPECT_NEAR(r.loss, ref_scalar(ref, "loss", k), 2e-5) << "step " << k;
    if (k == 0) {
      EXPECT_CLOSE_TO_REF("grad_step0.visual", values(*m, "visual_projection.weight", true).data(),
                          ref.get("grad_step0.visual_projection.weight"), 5e-6);
      EXPECT_CLOSE_TO_REF("grad_step0.text", values(*m, "text_projection.weight", true).data(),
                          ref.get("grad_step0.text_projection.weight"), 5e-6);
      EXPECT_NEAR(values(*m, "logit_scale", true)[0], ref_scalar(ref, "grad_step0.logit_scale"), 5e-6);
    }
    double norm = opt.grad_norm();
    EXPECT_NEAR(norm, ref_scalar(ref, "grad_norm", k), 8e-5) << "step " << k;
    double lr = 5e-3 * lr_factor(Schedule::Linear, k, 6, 0);
    EXPECT_NEAR(lr, ref_scalar(ref, "lr", k), 1e-12);
    opt.step(lr, clip_coefficient(norm, max_grad_norm));
    EXPECT_NEAR(m->logit_scale(), ref_scalar(ref, "logit_scale_after", k), 3e-6) << "step " << k;
    if (k == 0) {
      EXPECT_CLOSE_TO_REF("step1.visual", values(*m, "visual_projection.weight").data(),
                          ref.get("step1.visual_projection.weight"), 2e-6);
      EXPECT_CLOSE_TO_REF("step1.text", values(*m, "text_projection.weight").data(),
                          ref.get("step1.text_projection.weight"), 2e-6);
    }
  }
  EXPECT_CLOSE_TO_REF("final.visual", values(*m, "visual_projection.weight").data(),
                      ref.get("final.visual_projection.weight"), 2e-6);
  EXPECT_CLOSE_TO_REF("final.text", values(*m, "text_projection.weight").data(),
                      ref.get("final.text_projection.weight"), 2e-6);
  EXPECT_NEAR(m->logit_scale(), ref_scalar(ref, "final.logit_scale"), 3e-6);
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

// HF's get_decay_parameter_names: no decay inside LayerNorm modules or for names matching
// bias | layernorm | rmsnorm | (^|\.)norm($|\.) | _norm($|\.) (CLIP's layer_norm1/2, pre_layrnorm,
// post_layernorm, final_layer_norm and RoBERTa's *.LayerNorm are LayerNorm modules).
bool hf_weight_decay(const std::string& name) {
  std::string n = name;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* sub : {"bias", "layernorm", "rmsnorm", "layer_norm", "layrnorm"})
    if (n.find(sub) != std::string::npos) return false;
  for (size_t p = n.find("norm"); p != std::string::npos; p = n.find("norm", p + 1)) {
    const bool end_ok = p + 4 == n.size() || n[p + 4] == '.';
    const bool start_ok = p == 0 || n[p - 1] == '.' || n[p - 1] == '_';
    if (start_ok && end_ok) return false;
  }
  return true;
}

// The trainer takes decay groups from what the model registers; they are HF's.
TEST(WeightDecay, ModelRegistersHfGroups) {
  EXPECT_TRUE(hf_weight_decay("logit_scale"));
  EXPECT_TRUE(hf_weight_decay("text_model.embeddings.word_embeddings.weight"));
  EXPECT_FALSE(hf_weight_decay("text_model.encoder.layer.0.attention.output.LayerNorm.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.pre_layrnorm.weight"));
  EXPECT_FALSE(hf_weight_decay("vision_model.encoder.layers.0.mlp.fc1.bias"));
  for (const char* name : {"tiny-clip", "tiny-clip-roberta"}) {
    model::LoadOptions o;
    o.train = true;
    auto m = model::ClipModel::load(data_path(std::string("models/") + name), o);
    int decayed = 0;
    for (const auto& p : m->params()) {
      EXPECT_EQ(p.decay, hf_weight_decay(p.name)) << p.name;
      decayed += p.decay;
    }
    EXPECT_GT(decayed, 10) << name;
  }
}

}  // namespace
}  // namespace clipkit::train
