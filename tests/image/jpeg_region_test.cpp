// JPEG decoding of only the pixels preprocessing reads (DecodeOptions::needed): the pixels inside
// the region equal a full decode's bit for bit, for every sampling layout libjpeg-turbo has a
// fancy upsampler for, progressive files, restart markers, odd sizes and the shared images; and
// preprocess() gives the same floats either way for every preprocessor setting.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/error.h"
#include "image/encode.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "reference_data.h"

namespace clipkit::image {
namespace {

namespace fs = std::filesystem;
using testing::data_dir;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Layout {
  const char* name;
  int components, h_samp, v_samp;  // the luma's sampling factors (chroma 1x1)
  bool progressive;
  int restart_rows;
};

// A w x h picture with smooth gradients, sharp edges and noise in every channel (the chroma must
// vary for the upsampling to matter), encoded in the given layout.
std::vector<uint8_t> encode(int w, int h, const Layout& l, uint32_t seed) {
  std::mt19937 rng(seed);
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        int v = (x * (3 + c) + y * (5 - c)) % 256;
        if (((x / 7) + (y / 5) + c) % 3 == 0) v = 255 - v;
        v += static_cast<int>(rng() % 41) - 20;
        im.rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
  JpegEncoding e;
  e.quality = 90;
  e.grayscale = l.components == 1;
  e.luma_h = l.h_samp;
  e.luma_v = l.v_samp;
  e.progressive = l.progressive;
  e.restart_rows = l.restart_rows;
  return encode_jpeg(im, e);
}

// Pixels of `got` inside r that differ from `want`'s; reports the first.
int differences_inside(const Image& got, const Image& want, const PixelRect& r, const std::string& what) {
  EXPECT_EQ(got.width, want.width) << what;
  EXPECT_EQ(got.height, want.height) << what;
  if (got.width != want.width || got.height != want.height) return -1;
  int diffs = 0;
  for (int y = r.y0; y < r.y1; ++y)
    for (int x = r.x0; x < r.x1; ++x)
      for (int c = 0; c < 3; ++c) {
        const size_t i = (static_cast<size_t>(y) * want.width + x) * 3 + c;
        if (got.rgb[i] != want.rgb[i] && diffs++ == 0)
          ADD_FAILURE() << what << ": pixel (" << x << ", " << y << ") channel " << c << ": " << int(got.rgb[i])
                        << " vs " << int(want.rgb[i]);
      }
  return diffs;
}

// Random rectangles inside a w x h image, and the ones touching each edge and corner.
std::vector<PixelRect> rects_for(int w, int h, std::mt19937& rng) {
  std::vector<PixelRect> rs = {{0, 0, w, h}, {0, 0, 1, 1}, {w - 1, h - 1, w, h}, {w / 2, 0, w, h / 3},
                               {0, h / 2, w / 3, h}, {w / 3, h / 3, w / 3 + 1, h / 3 + 1}};
  for (int i = 0; i < 24; ++i) {
    const int x0 = static_cast<int>(rng() % w), y0 = static_cast<int>(rng() % h);
    rs.push_back({x0, y0, x0 + 1 + static_cast<int>(rng() % (w - x0)), y0 + 1 + static_cast<int>(rng() % (h - y0))});
  }
  return rs;
}

void check_regions(const std::vector<uint8_t>& bytes, const std::string& name, std::mt19937& rng) {
  const Image full = decode_memory(bytes.data(), bytes.size(), name);
  for (const PixelRect& r : rects_for(full.width, full.height, rng)) {
    DecodeOptions o;
    o.needed = [r](int, int) { return r; };
    const Image part = decode_memory(bytes.data(), bytes.size(), name, o);
    EXPECT_EQ(differences_inside(part, full, r,
                                 name + " region [" + std::to_string(r.x0) + ", " + std::to_string(r.x1) + ") x [" +
                                     std::to_string(r.y0) + ", " + std::to_string(r.y1) + ")"),
              0);
  }
}

TEST(JpegRegion, EveryLayoutDecodesTheRegionAsAFullDecode) {
  const Layout layouts[] = {
      {"4:2:0", 3, 2, 2, false, 0}, {"4:2:2", 3, 2, 1, false, 0},     {"4:4:0", 3, 1, 2, false, 0},
      {"4:4:4", 3, 1, 1, false, 0}, {"4:1:1", 3, 4, 1, false, 0},     {"4:2:0 4x", 3, 4, 2, false, 0},
      {"gray", 1, 1, 1, false, 0},  {"4:2:0 progressive", 3, 2, 2, true, 0},
      {"4:2:2 progressive", 3, 2, 1, true, 0}, {"4:2:0 restart", 3, 2, 2, false, 1},
  };
  const int sizes[][2] = {{61, 43}, {640, 480}, {427, 640}, {17, 300}, {300, 17}, {1, 1}, {33, 97}};
  std::mt19937 rng(7);
  uint32_t seed = 1;
  for (const Layout& l : layouts)
    for (const auto& s : sizes) {
      const std::string name = std::string(l.name) + " " + std::to_string(s[0]) + "x" + std::to_string(s[1]);
      SCOPED_TRACE(name);
      check_regions(encode(s[0], s[1], l, seed++), name, rng);
    }
}

std::vector<std::string> shared_jpegs() {
  std::vector<std::string> out;
  for (const char* dir : {"/images", "/images/extra", "/datasets/coco-tiny/train2017", "/datasets/coco-tiny/val2017"})
    for (const auto& e : fs::directory_iterator(data_dir() + dir))
      if (e.path().extension() == ".jpg") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(JpegRegion, SharedJpegsDecodeTheRegionAsAFullDecode) {
  std::mt19937 rng(11);
  int checked = 0;
  for (const std::string& path : shared_jpegs()) {
    const auto bytes = read_bytes(path);
    if (sniff_format(bytes.data(), bytes.size()) != Format::Jpeg) continue;  // (mislabeled_png.jpg)
    SCOPED_TRACE(path);
    check_regions(bytes, path, rng);
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

PreprocessConfig config(int shortest, int crop_h, int crop_w, ImageBackend b = ImageBackend::Pil) {
  PreprocessConfig c;
  c.shortest_edge = shortest;
  c.crop_h = crop_h;
  c.crop_w = crop_w;
  c.backend = b;
  return c;
}

TEST(JpegRegion, PreprocessGivesTheSameFloatsForEverySetting) {
  std::vector<std::pair<std::string, PreprocessConfig>> configs = {
      {"CLIP 224", config(224, 224, 224)},
      {"CLIP 224 torchvision", config(224, 224, 224, ImageBackend::Torchvision)},
      {"336", config(336, 336, 336)},
      {"crop wider than the resize (padding)", config(64, 48, 400)},
      {"small non-square crop", config(300, 20, 260)},
      {"bilinear 96", config(96, 96, 96)},
  };
  configs.back().second.resample = 2;
  PreprocessConfig fixed = config(224, 224, 224);
  fixed.resize_h = 200;
  fixed.resize_w = 150;
  fixed.crop_h = 120;
  fixed.crop_w = 150;
  configs.emplace_back("fixed 200x150 resize, crop 120x150", fixed);
  PreprocessConfig no_resize = config(224, 100, 90);
  no_resize.do_resize = false;
  configs.emplace_back("crop without resize", no_resize);
  int checked = 0;
  for (const std::string& path : shared_jpegs()) {
    const auto bytes = read_bytes(path);
    if (sniff_format(bytes.data(), bytes.size()) != Format::Jpeg) continue;
    const Image full = decode_memory(bytes.data(), bytes.size(), path);
    for (const auto& [what, c] : configs) {
      SCOPED_TRACE(path + ", " + what);
      const Image part = decode_memory(bytes.data(), bytes.size(), path, decode_options_for(c));
      const auto [h, w] = c.output_size();
      std::vector<float> a(static_cast<size_t>(3) * h * w), b(a.size());
      preprocess(full, c, a.data());
      preprocess(part, c, b.data());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
      ++checked;
    }
  }
  EXPECT_GE(checked, 20 * static_cast<int>(configs.size()));
}

// The region skips decoding, not reading: a file cut short below (or above) the region fails as
// a full decode does, as Pillow's "image file is truncated" does.
TEST(JpegRegion, TruncationOutsideTheRegionStillFails) {
  // 480x1200: the 224 crop of its 224x560 resize reads rows ~[350, 850); the cut loses the last ~10%
  const auto bytes = encode(480, 1200, {"4:2:0", 3, 2, 2, false, 0}, 3);
  const PreprocessConfig c = config(224, 224, 224);
  const PixelRect r = preprocess_source(480, 1200, c);
  EXPECT_LT(r.y1, 900);
  EXPECT_GT(r.y0, 300);
  const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() * 9 / 10));
  for (const DecodeOptions& o : {DecodeOptions{}, decode_options_for(c)}) {
    try {
      decode_memory(cut.data(), cut.size(), "cut.jpg", o);
      ADD_FAILURE() << "a truncated JPEG decoded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.jpg: truncated JPEG"), std::string::npos) << e.what();
    }
  }
  // and a region that needs no rows at all (a crop entirely in the padding) still reads them
  DecodeOptions none;
  none.needed = [](int, int) { return PixelRect{}; };
  EXPECT_THROW(decode_memory(cut.data(), cut.size(), "cut.jpg", none), Error);
  const Image whole = decode_memory(bytes.data(), bytes.size(), "whole.jpg", none);
  EXPECT_EQ(whole.width, 480);
  EXPECT_EQ(whole.height, 1200);
}

// With EXIF orientation applied the region would be in the rotated frame: the whole image decodes.
TEST(JpegRegion, ExifTransposeDecodesEverything) {
  const std::string path = data_dir() + "/images/exif_orientation6.jpg";
  DecodeOptions o;
  o.exif_transpose = true;
  const Image full = decode_file(path, o);
  const Image part = decode_file(path, decode_options_for(config(32, 32, 32), o));
  EXPECT_EQ(part.width, full.width);
  EXPECT_EQ(part.rgb, full.rgb);
}

// The opt-in DCT downscaling decodes a smaller image than the one the region is planned on: the
// whole (downscaled) image decodes.
TEST(JpegRegion, DctDownscaledDecodesEverything) {
  const std::string path = data_dir() + "/images/retina.jpg";  // 1000x1000: 1/8 keeps 125 >= 100
  DecodeOptions fast;
  fast.dct_downscale_target = 100;
  const Image full = decode_file(path, fast);
  ASSERT_EQ(full.width, 125);
  const Image part = decode_file(path, decode_options_for(config(100, 100, 100), fast));
  EXPECT_EQ(part.width, full.width);
  EXPECT_EQ(part.height, full.height);
  EXPECT_EQ(part.rgb, full.rgb);
}

}  // namespace
}  // namespace clipkit::image
