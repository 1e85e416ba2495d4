// int8 inference (per-channel int8 weights, per-token int8 activations) against the fp32 model:
// embeddings' cosine >= 0.99 on both tiny checkpoints and on a random ViT-B/32-shaped CLIP (12
// layers at full width; the bench quotes the ViT-B/32 figure on its own random checkpoint too).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "model/random_init.h"
#include "test_util.h"

namespace clipkit::model {
namespace {

using backend::Precision;

struct Batch {
  std::vector<float> pixels;
  std::vector<int32_t> ids, mask;
  int64_t N = 0, B = 0, L = 0;
};

// Random pixels (normalized range) and texts: BOS, random tokens, EOS (eos pooling finds it).
Batch random_batch(const ModelConfig& c, int64_t N, int64_t B, int64_t L, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> px(0.0f, 1.0f);
  Batch b{{}, {}, {}, N, B, L};
  const int64_t S = c.vision->image_size;
  b.pixels.resize(static_cast<size_t>(N * 3 * S * S));
  for (float& v : b.pixels) v = px(rng);
  const int32_t vocab = static_cast<int32_t>(c.text->vocab_size);
  std::uniform_int_distribution<int32_t> tok(3, vocab - 3);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < L; ++j) {
      b.ids.push_back(j == 0 ? vocab - 2 : j == L - 1 ? vocab - 1 : tok(rng));  // CLIP: 49406 BOS, 49407 EOS
      b.mask.push_back(1);
    }
  return b;
}

// The smallest image and text embedding cosine of int8 against fp32 on the same inputs.
std::pair<double, double> int8_cosines(const std::string& dir, const Batch& in) {
  auto f32 = ClipModel::load(dir, {Precision::F32, test::test_device()});
  auto i8 = ClipModel::load(dir, {Precision::INT8, test::test_device()});
  const double ci = test::min_row_cosine(i8->image_features(in.pixels.data(), in.N),
                                         f32->image_features(in.pixels.data(), in.N));
  const double ct = test::min_row_cosine(i8->text_features(in.ids.data(), in.mask.data(), in.B, in.L),
                                         f32->text_features(in.ids.data(), in.mask.data(), in.B, in.L));
  std::printf("  %s int8 vs fp32: min cosine image %.5f text %.5f\n", dir.c_str(), ci, ct);
  return {ci, ct};
}

TEST(Int8Quality, TinyCheckpointsCosine) {
  for (std::string name : {"tiny-clip", "tiny-clip-roberta"}) {
    SafeTensorsFile ref(test::data_path("reference/models/" + name + ".safetensors"));
    Batch in;
    const clipkit::Tensor& px = ref.get("pixel_values");
    in.N = px.dim(0);
    in.pixels.assign(px.ptr<float>(), px.ptr<float>() + px.numel());
    const clipkit::Tensor& ids = ref.get("input_ids");
    in.B = ids.dim(0);
    in.L = ids.dim(1);
    for (int64_t i = 0; i < ids.numel(); ++i) {
      in.ids.push_back(static_cast<int32_t>(ids.ptr<int64_t>()[i]));
      in.mask.push_back(static_cast<int32_t>(ref.get("attention_mask").ptr<int64_t>()[i]));
    }
    auto [ci, ct] = int8_cosines(test::data_path("models/" + name), in);
    EXPECT_GE(ci, 0.99) << name;
    EXPECT_GE(ct, 0.99) << name;
  }
}

TEST(Int8Quality, RandomVitB32Cosine) {
  if (test::test_device() != "cpu") GTEST_SKIP() << "int8 runs on the CPU backend";
  ModelConfig c = architecture_config("clip-vit-base-patch32");
  const auto dir = std::filesystem::temp_directory_path() / ("clipkit-int8-vitb32-" + std::to_string(getpid()));
  write_random_clip(c, dir.string(), 7);
  auto [ci, ct] = int8_cosines(dir.string(), random_batch(c, 2, 4, 16, 11));
  std::filesystem::remove_all(dir);
  EXPECT_GE(ci, 0.99);
  EXPECT_GE(ct, 0.99);
}

TEST(Int8Quality, TrainingRefusesInt8) {
  auto& be = backend::backend_for(test::test_device());
  EXPECT_THROW(be.prepare_weight(backend::WeightUse::Training, Precision::INT8), Error);
}

}  // namespace
}  // namespace clipkit::model
