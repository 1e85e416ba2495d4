// CLIPImageProcessor parity: every case of shared/reference/preprocess (copied, gzip-compressed,
// into tests/data/reference/preprocess): geometry, the uint8 crop (exact) and pixel_values (1e-6).
#include <gtest/gtest.h>

#include <cmath>

#include "image/image.h"
#include "image/preprocess.h"
#include "reference_data.h"

namespace clipkit::image {
namespace {

std::vector<std::string> case_files() {
  std::vector<std::string> out;
  const auto all = testing::load_cases();
  for (const auto& c : all["cases"]) out.push_back(c["file"]);
  return out;
}

class PreprocessReference : public ::testing::TestWithParam<std::string> {};

TEST_P(PreprocessReference, MatchesHuggingFace) {
  nlohmann::json cs;
  const auto all = testing::load_cases();
  for (const auto& c : all["cases"])
    if (c["file"] == GetParam()) cs = c;
  ASSERT_FALSE(cs.is_null());
  DecodeOptions o;
  o.exif_transpose = cs["exif_transposed"].get<bool>();
  Image img = decode_file(testing::data_dir() + "/images/" + cs["image"].get<std::string>(), o);

  PreprocessConfig cfg = PreprocessConfig::clip_default(cs["crop_size"].get<int>());
  cfg.shortest_edge = cs["shortest_edge"].get<int>();
  Geometry g = plan_geometry(img.width, img.height, cfg);
  EXPECT_EQ(g.resized_w, cs["resized_width"].get<int>());
  EXPECT_EQ(g.resized_h, cs["resized_height"].get<int>());
  EXPECT_EQ(g.crop_top, cs["crop_top"].get<int>());
  EXPECT_EQ(g.crop_left, cs["crop_left"].get<int>());

  auto ref = testing::load_reference(GetParam());
  const int C = cfg.crop_h;
  const auto& crop_ref = ref.tensors.at("cropped_u8");
  ASSERT_EQ(crop_ref.shape, (std::vector<int64_t>{C, C, 3}));
  std::vector<uint8_t> crop(static_cast<size_t>(C) * C * 3);
  resize_and_crop(img, cfg, crop.data());
  size_t diffs = 0;
  for (size_t i = 0; i < crop.size(); ++i) diffs += crop[i] != crop_ref.bytes[i];
  EXPECT_EQ(diffs, 0u) << "differing cropped_u8 values";

  const auto& pv = ref.tensors.at("pixel_values");
  ASSERT_EQ(pv.shape, (std::vector<int64_t>{3, C, C}));
  std::vector<float> out(static_cast<size_t>(3) * C * C);
  preprocess(img, cfg, out.data());
  double max_err = 0;
  for (size_t i = 0; i < out.size(); ++i) max_err = std::max(max_err, std::fabs(double(out[i]) - pv.f32()[i]));
  EXPECT_LE(max_err, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllCases, PreprocessReference, ::testing::ValuesIn(case_files()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           for (char& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

TEST(PreprocessReferenceSet, CoversEveryImageAtEverySize) {
  auto cs = testing::load_cases();
  EXPECT_EQ(cs["cases"].size(), 74u);  // 24 images x {224, 64, 61->64} + 2 EXIF-transposed
}

}  // namespace
}  // namespace clipkit::image
