// The torchvision image backend against torchvision itself, on every image of tests/data/images
// (tests/data/reference/torchvision/make_torchvision_refs.py writes the references and says how):
//  - torch 2.6 / torchvision 0.21 (Debian 13): the native uint8 resize transformers 5 runs on CPU
//    (PyTorch >= 2.1, the same kernel as PyTorch 2.11): crop and pixel values identical;
//  - torch 1.13 / torchvision 0.14 (Debian 12): that torchvision resizes uint8 in float32 and
//    rounds once at the end, so values differ by at most one level where the integer kernel's
//    intermediate uint8 rounding or fixed-point weights land on the other side of .5.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "reference_data.h"

namespace clipkit::image {
namespace {

struct CaseResult {
  int64_t values = 0, differing = 0, max_diff = 0;
  double max_pixel_err = 0;  // our pixel_values against the reference's value table applied to its crop
};

// Runs the torchvision backend on one reference case and compares its uint8 crop.
CaseResult run_case(const nlohmann::json& cs, const testing::RefFile& ref) {
  const std::string name = cs["name"];
  Image img = decode_file(testing::data_dir() + "/images/" + cs["image"].get<std::string>());
  PreprocessConfig cfg = PreprocessConfig::clip_default(cs["crop"].get<int>());
  cfg.shortest_edge = cs["shortest_edge"].get<int>();
  cfg.backend = ImageBackend::Torchvision;
  const Geometry g = plan_geometry(img.width, img.height, cfg);
  EXPECT_EQ(g.resized_w, cs["resized_width"].get<int>()) << name;
  EXPECT_EQ(g.resized_h, cs["resized_height"].get<int>()) << name;

  const int C = cfg.crop_h;
  const auto& want = ref.tensors.at(name);
  EXPECT_EQ(want.shape, (std::vector<int64_t>{C, C, 3})) << name;
  std::vector<uint8_t> crop(static_cast<size_t>(C) * C * 3);
  resize_and_crop(img, cfg, crop.data());
  CaseResult r;
  r.values = static_cast<int64_t>(crop.size());
  for (size_t i = 0; i < crop.size(); ++i) {
    const int d = std::abs(int(crop[i]) - int(want.bytes[i]));
    r.differing += d != 0;
    r.max_diff = std::max<int64_t>(r.max_diff, d);
  }
  std::vector<float> px(static_cast<size_t>(3) * C * C);
  preprocess(img, cfg, px.data());
  const float* table = ref.tensors.at("values").f32();
  for (int ch = 0; ch < 3; ++ch)
    for (size_t p = 0; p < static_cast<size_t>(C) * C; ++p) {
      const float expect = table[ch * 256 + want.bytes[p * 3 + ch]];
      r.max_pixel_err = std::max(r.max_pixel_err, std::fabs(double(px[ch * C * C + p]) - expect));
    }
  return r;
}

nlohmann::json cases_of(const testing::RefFile& ref) { return nlohmann::json::parse(ref.metadata.at("cases")); }

TEST(TorchvisionBackend, EqualsNativeUint8ResizeOfTorch26OnEveryImage) {
  const auto ref = testing::load_reference("torch-2.6.0.safetensors", "torchvision");
  ASSERT_EQ(ref.metadata.at("torchvision").substr(0, 4), "0.21");
  const auto cases = cases_of(ref);
  EXPECT_EQ(cases.size(), 96u);  // 24 images at 224 and at 61 -> 64 (padding), 48 (with extra/) at 64
  for (const auto& cs : cases) {
    const CaseResult r = run_case(cs, ref);
    EXPECT_EQ(r.differing, 0) << cs["name"] << ": " << r.differing << " of " << r.values << " values differ";
    EXPECT_LE(r.max_pixel_err, 1e-6) << cs["name"];
  }
}

TEST(TorchvisionBackend, DiffersFromTorch113FloatResizeByRoundingOnly) {
  const auto ref = testing::load_reference("torch-1.13.0a0.safetensors", "torchvision");
  ASSERT_EQ(ref.metadata.at("torchvision").substr(0, 4), "0.14");
  int64_t values = 0, differing = 0, max_diff = 0;
  for (const auto& cs : cases_of(ref)) {
    const CaseResult r = run_case(cs, ref);
    values += r.values;
    differing += r.differing;
    max_diff = std::max(max_diff, r.max_diff);
    EXPECT_LE(r.max_pixel_err, 1e-6) << cs["name"];  // the same normalize arithmetic in both versions
  }
  EXPECT_LE(max_diff, 1);
  EXPECT_GT(differing, 0);                // the versions really differ ...
  EXPECT_LT(differing * 100, values * 2);  // ... on under 2% of the values
  std::printf("torch 1.13 float path vs the uint8 path: %lld of %lld values differ (max %lld level)\n",
              static_cast<long long>(differing), static_cast<long long>(values), static_cast<long long>(max_diff));
}

TEST(TorchvisionBackend, CropOffsetsTruncateTowardZero) {
  PreprocessConfig c = PreprocessConfig::clip_default(64);
  c.shortest_edge = 61;  // 61 x 91 resized; crop 64: 3 rows of padding, 27 columns cropped
  Geometry pil = plan_geometry(61, 91, c);
  c.backend = ImageBackend::Torchvision;
  Geometry tv = plan_geometry(61, 91, c);
  EXPECT_EQ(pil.crop_left, -2);  // HF's numpy crop pads ceil(3 / 2) before
  EXPECT_EQ(tv.crop_left, -1);   // torchvision pads floor(3 / 2) before
  EXPECT_EQ(pil.crop_top, 13);
  EXPECT_EQ(tv.crop_top, 13);
}

TEST(TorchvisionBackend, NamesAndUnsupportedSettingsAreErrors) {
  EXPECT_EQ(image_backend_from_name("pil", "--image-backend"), ImageBackend::Pil);
  EXPECT_EQ(image_backend_from_name("torchvision", "--image-backend"), ImageBackend::Torchvision);
  EXPECT_STREQ(image_backend_name(ImageBackend::Torchvision), "torchvision");
  try {
    image_backend_from_name("opencv", "--image-backend");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--image-backend"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("torchvision"), std::string::npos) << e.what();
  }
  PreprocessConfig c = PreprocessConfig::clip_default(32);
  c.resample = 2;
  c.check("cfg.json");  // bilinear is fine with Pillow
  c.backend = ImageBackend::Torchvision;
  EXPECT_THROW(c.check("cfg.json"), Error);
  Image img;
  img.width = img.height = 40;
  img.rgb.assign(40 * 40 * 3, 7);
  std::vector<float> out(3 * 32 * 32);
  EXPECT_THROW(preprocess(img, c, out.data()), Error);
}

}  // namespace
}  // namespace clipkit::image
