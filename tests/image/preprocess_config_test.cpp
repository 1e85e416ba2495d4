// preprocessor_config.json as outside input (issue 14): without a center crop HF keeps the aspect,
// so only images that keep the batch's shape can be embedded (others are refused one by one, never
// written past the batch's buffer); values that would give NaN pixels or unbounded buffers are
// refused naming the field.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "image/batch.h"
#include "image/preprocess.h"

namespace clipkit::image {
namespace {

Image gray(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.assign(static_cast<size_t>(w) * h * 3, 100);
  return im;
}

void expect_config_error(const std::string& json, const std::string& says) {
  try {
    PreprocessConfig::from_json_text(json, "preprocessor_config.json");
    ADD_FAILURE() << "no error for " << json.substr(0, 100);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("preprocessor_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(PreprocessConfig, WithoutCenterCropOnlyImagesKeepingTheBatchShapePass) {
  auto c = PreprocessConfig::from_json_text(R"({"size": {"shortest_edge": 8}, "do_center_crop": false})", "p.json");
  EXPECT_EQ(c.output_size(), (std::pair<int, int>{8, 8}));
  const size_t per = floats_per_image(c);
  ASSERT_EQ(per, 3u * 8 * 8);
  // a square image becomes 8x8, as HF's processor makes it: same values as with a crop of 8
  std::vector<float> out(per + 16, -7.f);
  preprocess(gray(20, 20), c, out.data());
  auto cropped = PreprocessConfig::from_json_text(R"({"size": {"shortest_edge": 8}, "crop_size": 8})", "p.json");
  std::vector<float> ref(per);
  preprocess(gray(20, 20), cropped, ref.data());
  EXPECT_TRUE(std::equal(ref.begin(), ref.end(), out.begin()));
  for (size_t i = per; i < out.size(); ++i) EXPECT_EQ(out[i], -7.f) << "written past the image at " << i;
  // another aspect ratio becomes 16x8: refused before anything is written (this overflowed the
  // batch buffer: "double free" in embed/compare/classify/retrieve)
  std::fill(out.begin(), out.end(), -7.f);
  try {
    preprocess(gray(20, 10), c, out.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a 20x10 image becomes 16x8 without a center crop"), std::string::npos)
        << e.what();
  }
  for (float v : out) EXPECT_EQ(v, -7.f);
  // a fixed resize keeps working without a crop; no resize and no crop cannot batch at all
  auto fixed = PreprocessConfig::from_json_text(R"({"size": {"height": 6, "width": 9}, "do_center_crop": false})", "p");
  EXPECT_EQ(floats_per_image(fixed), 3u * 6 * 9);
  std::vector<float> f(3 * 6 * 9);
  preprocess(gray(20, 10), fixed, f.data());
  auto none = PreprocessConfig::from_json_text(R"({"do_resize": false, "do_center_crop": false})", "p");
  EXPECT_THROW(floats_per_image(none), Error);
}

TEST(PreprocessConfig, ValuesThatBreakPixelsOrBuffersAreRefused) {
  expect_config_error(R"({"image_std": [0.2, 0, 0.2]})", "\"image_std\"[1] is 0");
  expect_config_error(R"({"image_std": 1e39})", "not a finite number");
  expect_config_error(R"({"image_mean": [1, 2, 1e300]})", "not a finite number");
  expect_config_error(R"({"rescale_factor": 1e300})", "not a finite number");
  expect_config_error(R"({"crop_size": 2147483647})", "crop_size must be an integer from 1 to 8192");
  expect_config_error(R"({"crop_size": {"height": 4294967297, "width": 4}})", "crop_size.height");
  expect_config_error(R"({"size": {"shortest_edge": 1e30}})", "size.shortest_edge");
  expect_config_error(R"({"size": {"height": -4, "width": 4}})", "size.height");
  expect_config_error(R"({"size": 0})", "size must be");
  expect_config_error("{\"size\": " + std::string(300000, '[') + "}", "deeper than 128");
  // what HF writes still loads
  auto c = PreprocessConfig::from_json_text(
      R"({"crop_size": {"height": 224, "width": 224}, "do_center_crop": true, "do_normalize": true, "do_resize": true,
          "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
          "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}})",
      "p");
  EXPECT_EQ(c.crop_h, 224);
  // a std of 0 is harmless when nothing is normalized
  EXPECT_NO_THROW(PreprocessConfig::from_json_text(R"({"image_std": 0, "do_normalize": false})", "p"));
}

}  // namespace
}  // namespace clipkit::image
