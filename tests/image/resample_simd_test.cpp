// The SIMD resampling passes (blocks of 16 rows transposed, 32-bit integer sums) against the
// scalar code, which the reference tests tie to Pillow and torchvision: equal bytes for every
// filter, both arithmetics, down- and upscaling, windows at the edges and sizes that are not
// multiples of 16.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "image/resample.h"

namespace clipkit::image {
namespace {

struct ScalarResample {
  ScalarResample() { resample_simd_disabled_for_testing = true; }
  ~ScalarResample() { resample_simd_disabled_for_testing = false; }
};

std::vector<uint8_t> run(const std::vector<uint8_t>& src, int w, int h, int nw, int nh, Resample f, int wx, int wy,
                         int ww, int wh, ResampleImpl impl, bool scalar) {
  const size_t stride = static_cast<size_t>(ww) * 3 + 5;  // a destination stride wider than the window
  std::vector<uint8_t> out(stride * wh, 0xAB);
  std::optional<ScalarResample> off;
  if (scalar) off.emplace();
  resize_window(src.data(), w, h, nw, nh, f, wx, wy, ww, wh, out.data(), stride, impl);
  return out;
}

TEST(ResampleSimd, EqualsScalarCode) {
  std::mt19937 rng(7);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int it = 0; it < 300; ++it) {
    const int w = uni(1, 90), h = uni(1, 90);
    std::vector<uint8_t> src(static_cast<size_t>(w) * h * 3);
    // Mostly extremes: saturation of the negative lobes is where a wrong clamp would show.
    for (auto& v : src) v = uni(0, 3) == 0 ? static_cast<uint8_t>(uni(0, 255)) : (uni(0, 1) ? 0 : 255);
    const int nw = uni(1, 70), nh = uni(1, 70);
    const int wx = uni(0, nw - 1), wy = uni(0, nh - 1);
    const int ww = uni(1, nw - wx), wh = uni(1, nh - wy);
    const bool aten = uni(0, 3) == 0;
    const Resample f = aten ? Resample::Bicubic : static_cast<Resample>(uni(1, 5));
    const ResampleImpl impl = aten ? ResampleImpl::AtenUint8 : ResampleImpl::Pillow;
    const auto a = run(src, w, h, nw, nh, f, wx, wy, ww, wh, impl, false);
    const auto b = run(src, w, h, nw, nh, f, wx, wy, ww, wh, impl, true);
    ASSERT_EQ(a, b) << w << "x" << h << " -> " << nw << "x" << nh << " window " << wx << "," << wy << " " << ww << "x"
                    << wh << " filter " << static_cast<int>(f) << (aten ? " aten" : " pillow");
  }
}

TEST(ResampleSimd, ClipSizedImagesEqualScalarCode) {  // the shapes preprocessing runs most
  std::mt19937 rng(11);
  for (auto [w, h] : {std::pair{640, 480}, {480, 640}, {500, 375}, {612, 612}, {1024, 683}}) {
    std::vector<uint8_t> src(static_cast<size_t>(w) * h * 3);
    for (auto& v : src) v = static_cast<uint8_t>(rng());
    const int nw = w < h ? 224 : w * 224 / h, nh = w < h ? h * 224 / w : 224;
    for (auto impl : {ResampleImpl::Pillow, ResampleImpl::AtenUint8}) {
      const int wx = (nw - 224) / 2, wy = (nh - 224) / 2;
      EXPECT_EQ(run(src, w, h, nw, nh, Resample::Bicubic, wx, wy, 224, 224, impl, false),
                run(src, w, h, nw, nh, Resample::Bicubic, wx, wy, 224, 224, impl, true))
          << w << "x" << h;
    }
  }
}

}  // namespace
}  // namespace clipkit::image
