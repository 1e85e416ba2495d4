// LoadOptions::vision/text (a job loads only the tower it needs), LoadOptions::check_finite
// (weights holding NaN are refused, the loaded parts' tensors only) and LoadOptions::map_weights
// (a model loaded to run reads its weights from the mapped checkpoint).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "test_util.h"

namespace clipkit::model {
namespace {

using test::data_path;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_same(const clipkit::Tensor& a, const clipkit::Tensor& b) {
  ASSERT_EQ(a.shape, b.shape);
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes()), 0);
}

class LoadTowers : public ::testing::TestWithParam<const char*> {};

// One tower alone embeds what the whole model embeds, bit for bit; the other tower is absent and
// says why; the model still describes itself whole.
TEST_P(LoadTowers, OneTowerEmbedsAsTheWholeModelAndTheOtherSaysItWasNotLoaded) {
  const std::string dir = data_path(std::string("models/") + GetParam());
  const SafeTensorsFile ref(data_path(std::string("reference/models/") + GetParam() + ".safetensors"));
  const clipkit::Tensor& px = ref.get("pixel_values");
  const clipkit::Tensor& ids64 = ref.get("input_ids");
  const clipkit::Tensor& mask64 = ref.get("attention_mask");
  std::vector<int32_t> ids, mask;
  for (int64_t i = 0; i < ids64.numel(); ++i) {
    ids.push_back(static_cast<int32_t>(ids64.ptr<int64_t>()[i]));
    mask.push_back(static_cast<int32_t>(mask64.ptr<int64_t>()[i]));
  }
  const int64_t N = px.dim(0), B = ids64.dim(0), L = ids64.dim(1);

  LoadOptions o;
  o.device = test::test_device();
  auto whole = ClipModel::load(dir, o);
  LoadOptions vo = o, to = o;
  vo.text = false;
  to.vision = false;
  auto vision = ClipModel::load(dir, vo);
  auto text = ClipModel::load(dir, to);

  EXPECT_TRUE(vision->has_vision());
  EXPECT_FALSE(vision->has_text());
  EXPECT_FALSE(text->has_vision());
  EXPECT_TRUE(text->has_text());
  EXPECT_EQ(vision->architecture(), whole->architecture());
  EXPECT_EQ(text->architecture(), whole->architecture());
  EXPECT_EQ(vision->embed_dim(), whole->embed_dim());
  EXPECT_EQ(vision->logit_scale(), whole->logit_scale());
  EXPECT_EQ(text->logit_scale(), whole->logit_scale());
  EXPECT_EQ(vision->text_param_count(), 0);
  EXPECT_EQ(vision->vision_param_count(), whole->vision_param_count());
  EXPECT_EQ(text->vision_param_count(), 0);
  EXPECT_EQ(text->text_param_count(), whole->text_param_count());

  expect_same(vision->image_features(px.ptr<float>(), N), whole->image_features(px.ptr<float>(), N));
  expect_same(text->text_features(ids.data(), mask.data(), B, L), whole->text_features(ids.data(), mask.data(), B, L));

  const std::string no_text = error_of([&] { vision->text_features(ids.data(), mask.data(), B, L); });
  EXPECT_NE(no_text.find("the text tower was not loaded"), std::string::npos) << no_text;
  EXPECT_NE(no_text.find(dir), std::string::npos) << no_text;
  const std::string no_vision = error_of([&] { text->image_features(px.ptr<float>(), N); });
  EXPECT_NE(no_vision.find("the vision tower was not loaded"), std::string::npos) << no_vision;
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LoadTowers, ::testing::Values("tiny-clip", "tiny-clip-roberta"));

// The file behind the mapping holding address p in this process ("", "[heap]" for anonymous memory).
std::string mapped_file_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    const auto dash = range.find('-');
    const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16), hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (a >= lo && a < hi) return path;
  }
  return "";
}

// Loaded to run, the CPU reads the weights where the mapped checkpoint holds them (no copy; the
// mapping outlives the loader), and embeds exactly what a model with copied weights embeds; with
// map_weights false (a server) or to train, every weight is the model's own memory.
TEST_P(LoadTowers, WeightsOfAModelLoadedToRunAreReadFromTheMappedCheckpoint) {
  const std::string dir = data_path(std::string("models/") + GetParam());
  const SafeTensorsFile ref(data_path(std::string("reference/models/") + GetParam() + ".safetensors"));
  const clipkit::Tensor& px = ref.get("pixel_values");
  LoadOptions o;
  o.device = test::test_device();
  LoadOptions copied = o, trains = o;
  copied.map_weights = false;
  trains.train = true;
  auto mapped = ClipModel::load(dir, o), own = ClipModel::load(dir, copied), trained = ClipModel::load(dir, trains);
  expect_same(mapped->image_features(px.ptr<float>(), px.dim(0)), own->image_features(px.ptr<float>(), px.dim(0)));
  if (o.device != "cpu") GTEST_SKIP() << "other devices copy weights to device memory";
  const std::string file = std::filesystem::canonical(dir + "/model.safetensors").string();
  int64_t in_file = 0;
  for (const auto& p : mapped->params()) in_file += mapped_file_of(p.value.data()) == file;
  EXPECT_GT(in_file, static_cast<int64_t>(mapped->params().size()) / 2);  // (the fused q/k/v are copies)
  for (const auto& p : own->params()) EXPECT_NE(mapped_file_of(p.value.data()), file) << p.name;
  for (const auto& p : trained->params()) EXPECT_NE(mapped_file_of(p.value.data()), file) << p.name;
}

// A copy of tiny-clip-roberta whose first float tensor named `part`* holds a NaN; returns its name.
std::string corrupt_copy(const std::string& dir, const std::string& part) {
  namespace fs = std::filesystem;
  const std::string src = data_path("models/tiny-clip-roberta");
  fs::create_directories(dir);
  for (auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "model.safetensors") fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
  const SafeTensorsFile w(src + "/model.safetensors");
  std::vector<std::pair<std::string, clipkit::Tensor>> ts;
  std::string bad;
  for (auto& [name, t] : w.tensors()) {
    clipkit::Tensor c = clipkit::Tensor::empty(t.dtype, t.shape);
    std::memcpy(c.data, t.data, t.nbytes());
    if (bad.empty() && t.dtype == DType::F32 && name.starts_with(part)) {
      c.ptr<float>()[0] = std::nanf("");
      bad = name;
    }
    ts.emplace_back(name, c);
  }
  write_safetensors(dir + "/model.safetensors", ts);
  return bad;
}

// NaN in the text tower: refused (naming the tensor) by a load that takes the text tower, loaded
// by one that leaves it on disk, and by one that asks for no check.
TEST(LoadChecks, NonFiniteWeightsAreRefusedInTheLoadedTowersOnly) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("clipkit_load_towers_nan_" + std::to_string(::getpid()))).string();
  const std::string bad = corrupt_copy(dir + "/m", "text_model.");
  ASSERT_FALSE(bad.empty());
  LoadOptions o;
  o.device = test::test_device();
  const std::string e = error_of([&] { ClipModel::load(dir + "/m", o); });
  EXPECT_NE(e.find("\"" + bad + "\" holds NaN"), std::string::npos) << e;
  LoadOptions vo = o;
  vo.text = false;
  EXPECT_TRUE(ClipModel::load(dir + "/m", vo)->has_vision());
  LoadOptions to = o;
  to.vision = false;
  EXPECT_NE(error_of([&] { ClipModel::load(dir + "/m", to); }).find(bad), std::string::npos);
  LoadOptions unchecked = o;
  unchecked.check_finite = false;
  EXPECT_TRUE(ClipModel::load(dir + "/m", unchecked)->has_text());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace clipkit::model
