#include "apps/synthetic.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "core/error.h"
#include "image/encode.h"
#include "image/resample.h"

namespace clipkit::apps::synthetic {
namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t next() {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  double uni() { return double(next() >> 11) / double(1ull << 53); }
  int range(int a, int b) { return a + static_cast<int>(uni() * (b - a + 1)); }
};

uint8_t clamp8(double v) { return static_cast<uint8_t>(std::clamp(v, 0.0, 255.0)); }

}  // namespace

image::Image scene(uint64_t seed, int w, int h, uint64_t variant) {
  Rng pal(seed);
  image::Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  // Palette from a hue spread by the golden ratio over seeds, so different scenes differ in colour
  // (what a random-weight encoder can still see) while "similar" variants share it.
  const double hue = std::fmod(double(seed % 1000003) * 0.6180339887, 1.0);
  auto hsv = [](double h, double s, double v, double* out) {
    h = std::fmod(h + 1.0, 1.0) * 6;
    const int i = static_cast<int>(h);
    const double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    const double tab[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; ++c) out[c] = 255 * tab[i % 6][c];
  };
  double c0[3], c1[3];
  hsv(hue, 0.8, 0.95, c0);
  hsv(hue + 0.12, 0.6, 0.35, c1);
  double ang = pal.uni() * 6.2832, freq = 0.02 + pal.uni() * 0.1;
  if (variant) {  // same palette, different composition
    Rng v(variant * 0x2545F4914F6CDD1Dull + seed);
    ang += 1.5 + v.uni() * 3.0;
    freq = 0.02 + v.uni() * 0.1;
    std::swap(c0, c1);
  }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double u = (x * std::cos(ang) + y * std::sin(ang)) / std::max(w, h) * 0.7 + 0.3 * 0.5;
      u = std::clamp(u, 0.0, 1.0);
      double tex = 18 * std::sin(freq * x + 2 * std::sin(freq * y));
      for (int c = 0; c < 3; ++c) im.rgb[(size_t(y) * w + x) * 3 + c] = clamp8(c0[c] * (1 - u) + c1[c] * u + tex);
    }
  Rng shp(variant == 0 ? seed ^ 0xABCDEF : (seed * 1000003ull) ^ (variant * 0x51ED27ull));
  const int n = shp.range(4, 9);
  for (int k = 0; k < n; ++k) {
    double cd[3];
    hsv(hue + (pal.uni() - 0.5) * 0.3, 0.3 + 0.7 * pal.uni(), 0.2 + 0.8 * pal.uni(), cd);
    uint8_t col[3] = {clamp8(cd[0]), clamp8(cd[1]), clamp8(cd[2])};
    const bool circle = shp.uni() < 0.5;
    const int cx = shp.range(0, w - 1), cy = shp.range(0, h - 1);
    const int r = shp.range(std::max(2, std::min(w, h) / 12), std::max(3, std::min(w, h) / 4));
    for (int y = std::max(0, cy - r); y < std::min(h, cy + r); ++y)
      for (int x = std::max(0, cx - r); x < std::min(w, cx + r); ++x) {
        if (circle && (x - cx) * (x - cx) + (y - cy) * (y - cy) > r * r) continue;
        for (int c = 0; c < 3; ++c) im.rgb[(size_t(y) * w + x) * 3 + c] = col[c];
      }
  }
  return im;
}

image::Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b, uint64_t noise_seed) {
  image::Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  Rng rng(noise_seed + 1);
  const uint8_t col[3] = {r, g, b};
  for (size_t i = 0; i < size_t(w) * h; ++i) {
    int n = noise_seed ? rng.range(-6, 6) : 0;
    for (int c = 0; c < 3; ++c) im.rgb[i * 3 + c] = clamp8(col[c] + n);
  }
  return im;
}

image::Image resized(const image::Image& im, int w, int h) { return image::resized(im, w, h, image::Resample::Bicubic); }

image::Image cropped(const image::Image& im, double keep) {
  const int w = std::max(1, static_cast<int>(im.width * keep)), h = std::max(1, static_cast<int>(im.height * keep));
  const int x0 = (im.width - w) / 2, y0 = (im.height - h) / 2;
  image::Image o;
  o.width = w;
  o.height = h;
  o.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    std::copy_n(im.rgb.data() + (size_t(y + y0) * im.width + x0) * 3, size_t(w) * 3, o.rgb.data() + size_t(y) * w * 3);
  return o;
}

image::Image flipped(const image::Image& im) {
  image::Image o = im;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      for (int c = 0; c < 3; ++c)
        o.rgb[(size_t(y) * im.width + x) * 3 + c] = im.rgb[(size_t(y) * im.width + (im.width - 1 - x)) * 3 + c];
  return o;
}

image::Image colour_shifted(const image::Image& im, int dr, int dg, int db) {
  image::Image o = im;
  const int d[3] = {dr, dg, db};
  for (size_t i = 0; i < o.rgb.size(); ++i) o.rgb[i] = clamp8(double(o.rgb[i]) + d[i % 3]);
  return o;
}

image::Image recompressed(const image::Image& im, int quality) {
  auto j = image::encode_jpeg(im, quality);
  return image::decode_memory(j.data(), j.size(), "recompressed");
}

void write_jpeg(const std::string& path, const image::Image& im, int quality) {
  auto j = image::encode_jpeg(im, quality);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(j.data()), static_cast<std::streamsize>(j.size()));
  if (!f) fail("{}: cannot write", path);
}

DedupSet make_dedup_set(const std::string& dir, int families, int copies, int w, int h, uint64_t seed) {
  std::filesystem::create_directories(dir);
  DedupSet s;
  static const char* kinds[] = {"exact", "resized", "recompressed", "cropped", "flipped", "colour_shifted"};
  int next_family = families;
  for (int f = 0; f < families; ++f) {
    const uint64_t sd = seed * 7919 + static_cast<uint64_t>(f);
    image::Image im = scene(sd, w, h);
    auto add = [&](const std::string& kind, int fam) {
      s.files.push_back(fmt::format("{}/f{:05d}_{}.jpg", dir, f, kind));
      s.family.push_back(fam);
      s.transform.push_back(kind);
      return s.files.back();
    };
    const std::string orig = add("original", f);
    write_jpeg(orig, im, 92);
    for (int c = 0; c < copies; ++c) {
      const std::string k = kinds[c % 6];
      const std::string p = add(c < 6 ? k : fmt::format("{}{}", k, c / 6), f);
      if (k == "exact") std::filesystem::copy_file(orig, p, std::filesystem::copy_options::overwrite_existing);
      else if (k == "resized") write_jpeg(p, resized(im, w * 3 / 4 + c / 6 * 8, h * 3 / 4 + c / 6 * 6), 90);
      else if (k == "recompressed") write_jpeg(p, im, 35 - c / 6 * 5);
      else if (k == "cropped") write_jpeg(p, cropped(im, 0.9 - 0.02 * (c / 6)), 90);
      else if (k == "flipped") write_jpeg(p, flipped(im), 90);
      else write_jpeg(p, colour_shifted(im, 12 + c / 6 * 4, -6, 8), 90);
    }
    write_jpeg(add("similar", next_family++), scene(sd, w, h, 1 + static_cast<uint64_t>(f)), 92);
  }
  return s;
}

}  // namespace clipkit::apps::synthetic
