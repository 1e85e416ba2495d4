// The torchvision image backend against torchvision itself, on every image of tests/data/images
// (tests/data/reference/torchvision/make_torchvision_refs.py writes the references and says how):
//  - torch 2.6 / torchvision 0.21 (Debian 13): the native uint8 resize transformers 5 runs on CPU
//    (PyTorch >= 2.1, the same kernel as PyTorch 2.11): crop and pixel values identical;
//  - torch 1.13 / torchvision 0.14 (Debian 12): that torchvision resizes uint8 in float32 and
//    rounds once at the end; a float model of it here accounts for the difference.
#include <gtest/gtest.h>

#include <algorithm>
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

// PyTorch 1.13's float32 antialiased bicubic as torchvision 0.14 runs it on a uint8 image: the
// image as float32; ATen's generic separable kernel (the same coordinates as the uint8 kernel, but
// scale, centers and normalized weights in float32; Keys' cubic evaluated in double); the width
// pass kept in float32 (no rounding, no clamping), then the height pass; clamp to 0..255 and
// round half to even once. `raw` receives the values before that rounding.
std::vector<uint8_t> torch113_resize(const Image& im, int nw, int nh, std::vector<float>* raw) {
  struct Axis {
    int ks = 0;
    std::vector<int64_t> first, count;
    std::vector<float> w;
  };
  auto axis = [](int64_t in, int64_t out) {
    Axis a;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const float support = scale >= 1.0 ? static_cast<float>(2.0 * scale) : 2.0f;
    const float invscale = scale >= 1.0 ? static_cast<float>(1.0 / scale) : 1.0f;
    a.ks = static_cast<int>(std::ceil(support)) * 2 + 1;
    a.first.resize(out);
    a.count.resize(out);
    a.w.assign(static_cast<size_t>(out) * a.ks, 0.0f);
    for (int64_t i = 0; i < out; ++i) {
      const float center = static_cast<float>(scale * (i + 0.5));
      const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - xmin;
      float* w = &a.w[static_cast<size_t>(i) * a.ks];
      float total = 0;
      for (int64_t j = 0; j < n; ++j) {
        double x = std::fabs(static_cast<double>(static_cast<float>(((static_cast<float>(j + xmin) - center) + 0.5) * invscale)));
        constexpr double c = -0.5;
        w[j] = static_cast<float>(x < 1.0 ? ((c + 2) * x - (c + 3)) * x * x + 1
                                          : x < 2.0 ? ((c * x - 5 * c) * x + 8 * c) * x - 4 * c : 0.0);
        total += w[j];
      }
      for (int64_t j = 0; j < n; ++j)
        if (total != 0.0f) w[j] /= total;
      a.first[i] = xmin;
      a.count[i] = n;
    }
    return a;
  };
  const int w = im.width, h = im.height;
  const Axis ax = axis(w, nw), ay = axis(h, nh);
  auto sum = [](const Axis& a, int64_t o, auto at) {
    const float* k = &a.w[static_cast<size_t>(o) * a.ks];
    float v = at(a.first[o]) * k[0];
    for (int64_t j = 1; j < a.count[o]; ++j) v += at(a.first[o] + j) * k[j];
    return v;
  };
  std::vector<float> tmp(static_cast<size_t>(h) * nw * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < nw; ++x)
      for (int c = 0; c < 3; ++c)
        tmp[(static_cast<size_t>(y) * nw + x) * 3 + c] =
            sum(ax, x, [&](int64_t s) { return static_cast<float>(im.rgb[(static_cast<size_t>(y) * w + s) * 3 + c]); });
  std::vector<uint8_t> out(static_cast<size_t>(nh) * nw * 3);
  raw->resize(out.size());
  for (int y = 0; y < nh; ++y)
    for (int x = 0; x < nw; ++x)
      for (int c = 0; c < 3; ++c) {
        const size_t i = (static_cast<size_t>(y) * nw + x) * 3 + c;
        (*raw)[i] = sum(ay, y, [&](int64_t s) { return tmp[(static_cast<size_t>(s) * nw + x) * 3 + c]; });
        out[i] = static_cast<uint8_t>(std::nearbyint(std::clamp((*raw)[i], 0.0f, 255.0f)));
      }
  return out;
}

// torchvision 0.14 (PyTorch 1.13) resizes in float32; the uint8 kernel of PyTorch >= 2.1 rounds and
// clamps the width pass to uint8 and uses fixed-point weights. The float model above reproduces
// torchvision 0.14 except at values within 1e-4 of a .5 rounding tie (float32 summation details of
// Debian's build), which pins the version difference on the resize kernel alone.
TEST(TorchvisionBackend, Torch113DiffersByItsFloatResize) {
  const auto ref = testing::load_reference("torch-1.13.0a0.safetensors", "torchvision");
  ASSERT_EQ(ref.metadata.at("torchvision").substr(0, 4), "0.14");
  int64_t values = 0, ours_differ = 0, ours_max = 0, model_differ = 0;
  for (const auto& cs : cases_of(ref)) {
    const CaseResult r = run_case(cs, ref);
    values += r.values;
    ours_differ += r.differing;
    ours_max = std::max(ours_max, r.max_diff);

    Image img = decode_file(testing::data_dir() + "/images/" + cs["image"].get<std::string>());
    PreprocessConfig cfg = PreprocessConfig::clip_default(cs["crop"].get<int>());
    cfg.shortest_edge = cs["shortest_edge"].get<int>();
    cfg.backend = ImageBackend::Torchvision;
    const Geometry g = plan_geometry(img.width, img.height, cfg);
    std::vector<float> raw;
    const bool same = g.resized_w == img.width && g.resized_h == img.height;
    const std::vector<uint8_t> rs = same ? img.rgb : torch113_resize(img, g.resized_w, g.resized_h, &raw);
    const auto& want = ref.tensors.at(cs["name"].get<std::string>());
    const int C = cfg.crop_h;
    for (int y = 0; y < C; ++y)
      for (int x = 0; x < C; ++x)
        for (int c = 0; c < 3; ++c) {
          const int sy = y + g.crop_top, sx = x + g.crop_left;
          const bool in = sy >= 0 && sx >= 0 && sy < g.resized_h && sx < g.resized_w;
          const size_t si = (static_cast<size_t>(sy) * g.resized_w + sx) * 3 + c;
          const int v = in ? rs[si] : 0;
          if (v == want.bytes[(static_cast<size_t>(y) * C + x) * 3 + c]) continue;
          ++model_differ;
          ASSERT_TRUE(in && !same) << cs["name"];
          const float f = raw[si];
          EXPECT_LT(std::fabs(f - std::floor(f) - 0.5f), 1e-4f) << cs["name"] << ": " << f << " is no rounding tie";
        }
  }
  EXPECT_LT(model_differ * 10000, values);  // under 0.01%: only ties
  // rescale + normalize: the same arithmetic in both versions
  const auto now = testing::load_reference("torch-2.6.0.safetensors", "torchvision");
  EXPECT_EQ(ref.tensors.at("values").bytes, now.tensors.at("values").bytes);
  EXPECT_GT(ours_differ, 0);                // the versions really differ
  std::printf("torch 1.13 vs the uint8 kernel: %lld of %lld values differ (max %lld levels); the float model: %lld\n",
              static_cast<long long>(ours_differ), static_cast<long long>(values), static_cast<long long>(ours_max),
              static_cast<long long>(model_differ));
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
