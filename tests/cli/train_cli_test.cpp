// clipkit compose / train / eval end to end on the tiny checkpoints and coco-tiny:
// learning, exact resume, data-parallel equivalence, HF-format output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "cli_util.h"
#include "train_cli_util.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "test_util.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;
using test::data_path;
using test::run_clipkit;
using test::have_mpirun;
using test::max_diff;
using test::run_clipkit_mpi;

const std::string kCoco = data_path("datasets/coco-tiny");
const std::string kDual = data_path("models/tiny-clip-roberta");

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

const char* kTrained[] = {"visual_projection.weight", "text_projection.weight", "logit_scale"};

TEST(TrainCli, ProjectionTrainingLearnsAndWritesHfCheckpoint) {
  auto dir = test::temp_dir("train_learn");
  auto r = run_clipkit("train --model " + kDual + " --data " + kCoco + " --out " + dir + "/out --freeze-vision --freeze-text"
                       " --epochs 3 --batch-size 32 --lr 1e-3 --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = read_metrics(dir + "/out/metrics.jsonl");
  ASSERT_GT(m.size(), 4u);
  nlohmann::json before, after;
  for (auto& j : m)
    if (j.contains("split")) (before.is_null() ? before : after) = j;
  ASSERT_FALSE(before.is_null());
  ASSERT_FALSE(after.is_null());
  std::printf("  val loss %.4f -> %.4f, t2i R@10 %.3f -> %.3f, i2t R@10 %.3f -> %.3f\n", before["loss"].get<double>(),
              after["loss"].get<double>(), before["t2i_r10"].get<double>(), after["t2i_r10"].get<double>(),
              before["i2t_r10"].get<double>(), after["i2t_r10"].get<double>());
  EXPECT_LT(after["loss"].get<double>(), before["loss"].get<double>() - 0.1);
  EXPECT_GT(after["t2i_r10"].get<double>() + after["i2t_r10"].get<double>(),
            before["t2i_r10"].get<double>() + before["i2t_r10"].get<double>());
  // the output folder is a complete HF checkpoint that clipkit (and HF) load
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json"})
    EXPECT_TRUE(fs::exists(dir + "/out/" + f)) << f;
  EXPECT_TRUE(fs::exists(dir + "/out/checkpoint-72/optimizer.safetensors"));
  auto model = model::ClipModel::load(dir + "/out");
  EXPECT_NE(model->logit_scale(), 2.6592f);
  // towers are unchanged: every tower tensor equals the source checkpoint's
  SafeTensorsFile src(kDual + "/model.safetensors"), dst(dir + "/out/model.safetensors");
  EXPECT_EQ(src.tensors().size(), dst.tensors().size());
  EXPECT_EQ(max_diff(kDual + "/model.safetensors", dir + "/out/model.safetensors",
                     "text_model.encoder.layer.0.attention.self.query.weight"), 0.0);
  // clipkit eval on the trained model reproduces the last eval line
  r = run_clipkit("eval --model " + dir + "/out --data " + kCoco + " --split val --batch-size 32 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto ev = nlohmann::json::parse(r.out);
  EXPECT_NEAR(ev["loss"].get<double>(), after["loss"].get<double>(), 1e-4);
  EXPECT_NEAR(ev["t2i_r1"].get<double>(), after["t2i_r1"].get<double>(), 1e-9);
  fs::remove_all(dir);
}

TEST(TrainCli, ResumeReachesTheSameWeights) {
  auto dir = test::temp_dir("train_resume");
  std::string common = "train --model " + kDual + " --data " + kCoco + " --freeze-vision --freeze-text --epochs 2"
                       " --batch-size 64 --lr 2e-3 --weight-decay 0.1 --warmup-steps 3 --no-eval --threads 2 --cache-dir " +
                       dir + "/cache --out ";
  auto r = run_clipkit(common + dir + "/a");
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_clipkit(common + dir + "/b --save-steps 5 --stop-after-steps 7");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/b/checkpoint-5"));
  EXPECT_FALSE(fs::exists(dir + "/b/model.safetensors"));
  r = run_clipkit(common + dir + "/b --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  for (const char* t : kTrained)
    EXPECT_EQ(max_diff(dir + "/a/model.safetensors", dir + "/b/model.safetensors", t), 0.0) << t;
  // metrics.jsonl: steps 6 and 7, logged by the stopped run and run again, appear once (issue 14)
  auto steps = [](const std::string& path) {
    std::vector<int64_t> s;
    for (auto& j : read_metrics(path)) s.push_back(j.value("step", int64_t{-1}));
    return s;
  };
  EXPECT_EQ(steps(dir + "/b/metrics.jsonl"), steps(dir + "/a/metrics.jsonl"));
  fs::remove_all(dir);
}

TEST(TrainCli, TwoProcessesEqualOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  auto dir = test::temp_dir("train_mpi");
  std::string common = " train --model " + kDual + " --data " + kCoco + " --freeze-vision --freeze-text --max-steps 6"
                       " --batch-size 30 --lr 5e-3 --weight-decay 0.1 --no-shuffle --no-eval --cache-dir " + dir + "/cache --out ";
  auto r = run_clipkit(common + dir + "/one --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(run_clipkit_mpi(2, common + dir + "/two --threads 1", dir + "/mpi.log"), 0) << read_file(dir + "/mpi.log");
  for (const char* t : kTrained) {
    double d = max_diff(dir + "/one/model.safetensors", dir + "/two/model.safetensors", t);
    std::printf("  %s: max |1 proc - 2 procs| = %.3g\n", t, d);
    EXPECT_LT(d, 2e-6) << t;
  }
  auto m1 = read_metrics(dir + "/one/metrics.jsonl"), m2 = read_metrics(dir + "/two/metrics.jsonl");
  ASSERT_EQ(m1.size(), m2.size());
  for (size_t i = 0; i < m1.size(); ++i) EXPECT_NEAR(m1[i]["loss"].get<double>(), m2[i]["loss"].get<double>(), 1e-5);
  fs::remove_all(dir);
}

// HF's save_total_limit: at most N checkpoint-* folders, the oldest deleted first, the newest
// kept; the final model is written, and --resume continues from what is left.
TEST(TrainCli, SaveTotalLimitKeepsTheNewestCheckpoints) {
  auto dir = test::temp_dir("train_limit");
  std::string common = "train --model " + kDual + " --data " + kCoco + " --freeze-vision --freeze-text --max-steps 10"
                       " --batch-size 16 --no-eval --threads 2 --save-steps 3 --cache-dir " + dir + "/cache --out " + dir;
  auto r = run_clipkit(common + "/a --save-total-limit 2");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> left;
  for (auto& e : fs::directory_iterator(dir + "/a"))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"checkpoint-10", "checkpoint-9"}));  // saved: 3, 6, 9, 10
  EXPECT_TRUE(fs::exists(dir + "/a/model.safetensors"));
  r = run_clipkit(common + "/b --save-total-limit 1 --stop-after-steps 7");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/b/checkpoint-6"));
  EXPECT_FALSE(fs::exists(dir + "/b/checkpoint-3"));
  r = run_clipkit(common + "/b --save-total-limit 1 --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  for (const char* t : kTrained)
    EXPECT_EQ(max_diff(dir + "/a/model.safetensors", dir + "/b/model.safetensors", t), 0.0) << t;
  fs::remove_all(dir);
}

// --epochs 0 takes no step and writes the model as it is (HF's Trainer with num_train_epochs=0
// followed by save_model); bad step counts are refused with a one-line reason.
TEST(TrainCli, ZeroEpochsWritesTheModelAndBadCountsAreRefused) {
  auto dir = test::temp_dir("train_zero");
  const std::string common = "train --model " + kDual + " --data " + kCoco + " --no-eval --threads 2 --out " + dir;
  auto r = run_clipkit(common + "/z --epochs 0 --freeze-vision --freeze-text");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("0 steps"), std::string::npos) << r.err;
  for (const char* t : kTrained)
    EXPECT_EQ(max_diff(kDual + "/model.safetensors", dir + "/z/model.safetensors", t), 0.0) << t;
  EXPECT_TRUE(model::ClipModel::load(dir + "/z") != nullptr);
  // values out of range are refused after parsing (exit 2); those only the trainer can judge, on load (exit 1)
  for (auto [flags, message, status] : {std::tuple{"--epochs -1", "--epochs must be ≥ 0, got -1", 2},
                                        {"--max-steps 0", "--max-steps must be ≥ 1, got 0", 1},
                                        {"--max-steps -5", "--max-steps must be ≥ -1, got -5", 2},
                                        {"--save-total-limit -1", "--save-total-limit must be ≥ 0", 2},
                                        {"--device tpu", "--device tpu: unknown device", 1}}) {
    r = run_clipkit(common + "/bad " + flags);
    EXPECT_EQ(r.status, status) << flags;
    EXPECT_NE(r.err.find(message), std::string::npos) << flags << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/bad/model.safetensors"));
  fs::remove_all(dir);
}

// eval/train --image-backend: the feature cache keeps the two preprocessings apart.
TEST(TrainCli, FeatureCacheKeyHoldsTheImageBackend) {
  auto dir = test::temp_dir("train_backend");
  const std::string common = "eval --model " + kDual + " --data " + kCoco + " --split val --json --cache-dir " + dir;
  auto pil = run_clipkit(common);
  ASSERT_EQ(pil.status, 0) << pil.err;
  auto again = run_clipkit(common + " --image-backend pil");
  ASSERT_EQ(again.status, 0) << again.err;
  auto tv = run_clipkit(common + " --image-backend torchvision");
  ASSERT_EQ(tv.status, 0) << tv.err;
  int caches = 0;
  for (auto& e : fs::directory_iterator(dir)) caches += e.path().filename().string().starts_with("features-");
  EXPECT_EQ(caches, 2);
  EXPECT_EQ(nlohmann::json::parse(pil.out)["loss"], nlohmann::json::parse(again.out)["loss"]);
  EXPECT_EQ(run_clipkit(common + " --image-backend opencv").status, 2);
  fs::remove_all(dir);
}

TEST(TrainCli, RefusesBadData) {
  auto dir = test::temp_dir("train_bad");
  auto r = run_clipkit("train --model " + kDual + " --data " + dir + "/missing --out " + dir + "/o");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  r = run_clipkit("train --model " + kDual + " --data " + dir + "/missing --out " + dir + "/o --freeze-vision --freeze-text");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// A RoBERTa checkpoint as HF hub folders have it (RobertaForMaskedLM keys "roberta.*" + lm_head),
// cut out of the dual encoder fixture, so composing it back must reproduce the reference outputs.
std::string make_roberta_checkpoint(const std::string& dir) {
  fs::create_directories(dir);
  Checkpoint ck(kDual);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : ck.tensors())
    if (n.rfind("text_model.", 0) == 0) out.emplace_back("roberta." + n.substr(11), t);
  out.emplace_back("lm_head.bias", Tensor::zeros(DType::F32, {50262}));
  write_safetensors(dir + "/model.safetensors", out);
  auto cfg = nlohmann::json::parse(read_file(kDual + "/config.json"))["text_config"];
  write_file_atomic(dir + "/config.json", cfg.dump());
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    write_file_atomic(dir + "/" + f, read_file(kDual + "/" + f));
  return dir;
}

TEST(ComposeCli, ClipVisionPlusRobertaMatchesReferences) {
  auto dir = test::temp_dir("compose");
  auto rob = make_roberta_checkpoint(dir + "/roberta");
  auto r = run_clipkit("compose --vision " + data_path("models/tiny-clip") + " --text " + rob + " --out " + dir +
                       "/dual --projection-dim 32 --seed 7");
  ASSERT_EQ(r.status, 0) << r.err;
  auto cfg = nlohmann::json::parse(read_file(dir + "/dual/config.json"));
  EXPECT_EQ(cfg["model_type"], "vision-text-dual-encoder");
  EXPECT_EQ(cfg["projection_dim"], 32);
  EXPECT_EQ(cfg["vision_config"]["model_type"], "clip_vision_model");
  EXPECT_EQ(cfg["text_config"]["model_type"], "roberta");
  for (const char* f : {"vocab.json", "merges.txt", "preprocessor_config.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(dir + "/dual/" + f)) << f;
  SafeTensorsFile st(dir + "/dual/model.safetensors");
  EXPECT_TRUE(st.has("vision_model.vision_model.embeddings.class_embedding"));
  EXPECT_TRUE(st.has("text_model.pooler.dense.weight"));
  EXPECT_FALSE(st.has("text_model.lm_head.bias"));
  EXPECT_EQ(st.get("visual_projection.weight").shape, (Shape{32, 128}));
  EXPECT_FLOAT_EQ(st.get("logit_scale").ptr<float>()[0], 2.6592f);
  // towers: outputs equal the references of the checkpoints they came from
  auto m = model::ClipModel::load(dir + "/dual");
  SafeTensorsFile vref(data_path("reference/models/tiny-clip.safetensors"));
  SafeTensorsFile tref(data_path("reference/models/tiny-clip-roberta.safetensors"));
  auto vis = m->vision_forward(vref.get("pixel_values").ptr<float>(), 4, false);
  EXPECT_CLOSE_TO_REF("image_pooler_output", vis.pooled.ptr<float>(), vref.get("image_pooler_output"), 3e-5);
  const Tensor& ids = tref.get("input_ids");
  const Tensor& mask = tref.get("attention_mask");
  std::vector<int32_t> id(ids.numel()), mk(ids.numel());
  for (int64_t i = 0; i < ids.numel(); ++i) id[i] = int32_t(ids.ptr<int64_t>()[i]), mk[i] = int32_t(mask.ptr<int64_t>()[i]);
  auto txt = m->text_forward(id.data(), mk.data(), ids.dim(0), ids.dim(1), false);
  EXPECT_CLOSE_TO_REF("text_pooler_output", txt.pooled.ptr<float>(), tref.get("text_pooler_output"), 3e-5);
  // the new projections follow nn.Linear's default init bound 1/sqrt(fan_in)
  Tensor vp = st.get("visual_projection.weight").to_f32();
  float mx = 0;
  for (int64_t i = 0; i < vp.numel(); ++i) mx = std::max(mx, std::fabs(vp.ptr<float>()[i]));
  EXPECT_LE(mx, 1.0f / std::sqrt(128.0f));
  EXPECT_GT(mx, 0.8f / std::sqrt(128.0f));
  r = run_clipkit("compose --vision " + rob + " --text " + rob + " --out " + dir + "/bad");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("vision tower must be"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
