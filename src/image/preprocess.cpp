// CLIPImageProcessor steps after decoding. Rescale/normalize is a 256-entry table per channel
// holding exactly the float32 results of the backend's arithmetic (see normalize_lut).
#include "image/preprocess.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "image/resample.h"

namespace clipkit::image {

namespace {

int64_t floor_div(int64_t a, int64_t b) {  // Python's //
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// A finite float from a JSON number (NaN/inf pixels would give NaN embeddings).
float finite_float(const nlohmann::json& v, const std::string& name, const std::string& what) {
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 3.4e38) fail("{}: {} is {}, not a finite number", name, what, json_text(v));
  return static_cast<float>(d);
}

void read_triplet(const nlohmann::json& j, const char* key, float out[3], const std::string& name) {
  if (!j.contains(key)) return;
  const auto& v = j[key];
  if (v.is_number()) {
    out[0] = out[1] = out[2] = finite_float(v, name, fmt::format("\"{}\"", key));
  } else if (v.is_array() && (v.size() == 3 || v.size() == 1)) {
    for (int c = 0; c < 3; ++c) {
      const auto& e = v[v.size() == 3 ? c : 0];
      if (!e.is_number()) fail("{}: \"{}\" must hold numbers", name, key);
      out[c] = finite_float(e, name, fmt::format("\"{}\"[{}]", key, c));
    }
  } else {
    fail("{}: \"{}\" must be a number or a list of 3 numbers", name, key);
  }
}

// A side length: an integer in 1..kMaxPreprocessSide.
int side(const nlohmann::json& v, const std::string& name, const std::string& what) {
  return static_cast<int>(json_integer(v, 1, kMaxPreprocessSide, name + ": " + what));
}

}  // namespace

// What rescale + normalize make of each uint8 value v, per channel, in float32 as each backend
// computes it.
//  pil (HF's numpy path): x = float32(double(v) * rescale_factor), then (x - mean) / std.
//  torchvision (TorchVisionBackend._rescale_and_normalize): with both steps on, mean and std are
//  float32 tensors scaled by float32(1 / rescale_factor) and the float32 image is normalized by
//  them, (float(v) - mean') / std'; rescale alone is float(v) * float32(rescale_factor).

void normalize_lut(const PreprocessConfig& c, float lut[3][256]) {
  const bool tv = c.backend == ImageBackend::Torchvision;
  for (int ch = 0; ch < 3; ++ch) {
    float mean = c.mean[ch], std = c.std[ch];
    if (tv && c.do_rescale && c.do_normalize) {
      const float inv = static_cast<float>(1.0 / c.rescale_factor);
      mean *= inv;
      std *= inv;
    }
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v);
      if (tv) {
        if (c.do_normalize) x = (x - mean) / std;
        else if (c.do_rescale) x *= static_cast<float>(c.rescale_factor);
      } else {
        if (c.do_rescale) x = static_cast<float>(static_cast<double>(v) * c.rescale_factor);
        if (c.do_normalize) x = (x - mean) / std;
      }
      lut[ch][v] = x;
    }
  }
}

const char* image_backend_name(ImageBackend b) { return b == ImageBackend::Torchvision ? "torchvision" : "pil"; }

ImageBackend image_backend_from_name(const std::string& name, const std::string& what) {
  if (name == "pil") return ImageBackend::Pil;
  if (name == "torchvision") return ImageBackend::Torchvision;
  fail("{}: unknown image backend \"{}\" (use pil or torchvision)", what, name);
}

void PreprocessConfig::check(const std::string& name) const {
  if (backend == ImageBackend::Torchvision && do_resize && resample != static_cast<int>(Resample::Bicubic))
    fail("{}: resample={} with the torchvision image backend: only bicubic (3) is reproduced (torchvision "
         "resizes a uint8 tensor natively only with bicubic on every CPU)",
         name, resample);
}

PreprocessConfig PreprocessConfig::clip_default(int size) {
  if (size <= 0 || size > kMaxPreprocessSide) fail("--size must be from 1 to {}, got {}", kMaxPreprocessSide, size);
  PreprocessConfig c;
  c.shortest_edge = c.crop_h = c.crop_w = size;
  return c;
}

PreprocessConfig PreprocessConfig::from_json_text(const std::string& text, const std::string& name) {
  nlohmann::json j;
  std::string why;
  if (!try_parse_json(text, &j, &why)) fail("{}: invalid JSON: {}", name, why);
  if (!j.is_object()) fail("{}: expected a JSON object", name);
  PreprocessConfig c;
  try {
    auto flag = [&](const char* key, bool& dst) {
      if (j.contains(key) && !j[key].is_null()) dst = j[key].get<bool>();
    };
    flag("do_resize", c.do_resize);
    flag("do_center_crop", c.do_center_crop);
    flag("do_rescale", c.do_rescale);
    flag("do_normalize", c.do_normalize);
    flag("do_convert_rgb", c.do_convert_rgb);
    if (j.contains("size") && !j["size"].is_null()) {
      const auto& s = j["size"];
      if (s.is_number()) {
        c.shortest_edge = side(s, name, "size");
      } else if (s.is_object() && s.contains("shortest_edge")) {
        c.shortest_edge = side(s["shortest_edge"], name, "size.shortest_edge");
        if (s.contains("longest_edge") && !s["longest_edge"].is_null())
          fail("{}: size.longest_edge is not supported", name);
      } else if (s.is_object() && s.contains("height") && s.contains("width")) {
        c.resize_h = side(s["height"], name, "size.height");
        c.resize_w = side(s["width"], name, "size.width");
      } else {
        fail("{}: unsupported \"size\": {}", name, json_text(s));
      }
    }
    if (j.contains("crop_size") && !j["crop_size"].is_null()) {
      const auto& s = j["crop_size"];
      if (s.is_number()) {
        c.crop_h = c.crop_w = side(s, name, "crop_size");
      } else if (s.is_object() && s.contains("height") && s.contains("width")) {
        c.crop_h = side(s["height"], name, "crop_size.height");
        c.crop_w = side(s["width"], name, "crop_size.width");
      } else {
        fail("{}: unsupported \"crop_size\": {}", name, json_text(s));
      }
    }
    if (j.contains("resample") && !j["resample"].is_null())
      c.resample = static_cast<int>(json_integer(j["resample"], INT32_MIN, INT32_MAX, name + ": \"resample\""));
    if (!resample_supported(c.resample))
      fail("{}: resample={} is not supported (use 1..5: LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING)", name, c.resample);
    if (j.contains("rescale_factor") && !j["rescale_factor"].is_null())
      c.rescale_factor = finite_float(j["rescale_factor"], name, "\"rescale_factor\"");
    read_triplet(j, "image_mean", c.mean, name);
    read_triplet(j, "image_std", c.std, name);
    for (int ch = 0; ch < 3; ++ch)
      if (c.do_normalize && c.std[ch] == 0)
        fail("{}: \"image_std\"[{}] is 0: normalizing divides by it", name, ch);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad preprocessor config: {}", name, e.what());
  }
  return c;
}

PreprocessConfig PreprocessConfig::from_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open preprocessor config", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return from_json_text(ss.str(), path);
}

void shortest_edge_size(int width, int height, int shortest_edge, int* new_w, int* new_h) {
  const bool w_short = width <= height;
  const int64_t s = w_short ? width : height, l = w_short ? height : width;
  // int(S * long / short): true division in double, then truncation.
  const double v = static_cast<double>(static_cast<int64_t>(shortest_edge) * l) / static_cast<double>(s);
  if (v > 2147483647.0) fail("resized image size is too large ({}x{} at shortest edge {})", width, height, shortest_edge);
  const int nl = static_cast<int>(v);
  *new_w = w_short ? shortest_edge : nl;
  *new_h = w_short ? nl : shortest_edge;
}

std::pair<int, int> PreprocessConfig::output_size() const {
  if (do_center_crop) return {crop_h, crop_w};
  if (do_resize && resize_h > 0) return {resize_h, resize_w};
  if (do_resize) return {shortest_edge, shortest_edge};
  return {0, 0};
}

Geometry plan_geometry(int width, int height, const PreprocessConfig& c) {
  Geometry g;
  g.resized_w = width;
  g.resized_h = height;
  if (c.do_resize) {
    if (c.resize_h > 0) g.resized_w = c.resize_w, g.resized_h = c.resize_h;
    else shortest_edge_size(width, height, c.shortest_edge, &g.resized_w, &g.resized_h);
  }
  if (c.do_center_crop) {
    const int64_t dh = static_cast<int64_t>(g.resized_h) - c.crop_h, dw = static_cast<int64_t>(g.resized_w) - c.crop_w;
    const bool tv = c.backend == ImageBackend::Torchvision;  // int((size - crop) / 2.0) after its padding
    g.crop_top = static_cast<int>(tv ? dh / 2 : floor_div(dh, 2));
    g.crop_left = static_cast<int>(tv ? dw / 2 : floor_div(dw, 2));
    g.out_w = c.crop_w;
    g.out_h = c.crop_h;
  } else {
    g.out_w = g.resized_w;
    g.out_h = g.resized_h;
  }
  return g;
}

namespace {

// The part of the resized image the output shows: output (y, x) = resized(y + crop_top,
// x + crop_left) inside the resized image, else 0 (padding).
PixelRect kept_window(const Geometry& g) {
  return {std::max(0, g.crop_left), std::max(0, g.crop_top), std::min(g.resized_w, g.crop_left + g.out_w),
          std::min(g.resized_h, g.crop_top + g.out_h)};
}

ResampleImpl resample_impl(const PreprocessConfig& c) {
  return c.backend == ImageBackend::Torchvision ? ResampleImpl::AtenUint8 : ResampleImpl::Pillow;
}

}  // namespace

PixelRect preprocess_source(int width, int height, const PreprocessConfig& c) {
  const Geometry g = plan_geometry(width, height, c);
  const PixelRect k = kept_window(g);
  if (k.empty()) return {};
  return resize_window_source(width, height, g.resized_w, g.resized_h, static_cast<Resample>(c.resample), k.x0, k.y0,
                              k.x1 - k.x0, k.y1 - k.y0, resample_impl(c));
}

DecodeOptions decode_options_for(const PreprocessConfig& c, DecodeOptions o) {
  if (resample_supported(c.resample))
    o.needed = [c](int width, int height) { return preprocess_source(width, height, c); };
  return o;
}

void resize_and_crop(const Image& img, const PreprocessConfig& c, uint8_t* out) {
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3)
    fail("preprocess: invalid image ({}x{}, {} bytes)", img.width, img.height, img.rgb.size());
  const Geometry g = plan_geometry(img.width, img.height, c);
  const size_t stride = static_cast<size_t>(g.out_w) * 3;
  const PixelRect k = kept_window(g);
  const int x0 = k.x0, x1 = k.x1, y0 = k.y0, y1 = k.y1;
  const bool padded = x0 - g.crop_left > 0 || y0 - g.crop_top > 0 || x1 - g.crop_left < g.out_w ||
                      y1 - g.crop_top < g.out_h;
  if (padded) std::fill(out, out + stride * g.out_h, uint8_t{0});
  if (x1 <= x0 || y1 <= y0) return;
  uint8_t* dst = out + static_cast<size_t>(y0 - g.crop_top) * stride + static_cast<size_t>(x0 - g.crop_left) * 3;
  c.check("preprocess");
  resize_window(img.rgb.data(), img.width, img.height, g.resized_w, g.resized_h, static_cast<Resample>(c.resample),
                x0, y0, x1 - x0, y1 - y0, dst, stride, resample_impl(c));
}

void preprocess(const Image& img, const PreprocessConfig& c, float* out) {
  const Geometry g = plan_geometry(img.width, img.height, c);
  const auto [h, w] = c.output_size();
  if (g.out_h != h || g.out_w != w)
    fail("a {}x{} image becomes {}x{} without a center crop (do_center_crop: false), but a batch needs {}x{}: "
         "only images that keep that shape can be embedded with this preprocessor config",
         img.width, img.height, g.out_w, g.out_h, w, h);
  const size_t plane = static_cast<size_t>(g.out_w) * g.out_h;
  std::vector<uint8_t> hwc(plane * 3);
  resize_and_crop(img, c, hwc.data());
  float lut[3][256];
  normalize_lut(c, lut);
  float* r = out;
  float* gp = out + plane;
  float* b = out + 2 * plane;
  const uint8_t* s = hwc.data();
  for (size_t i = 0; i < plane; ++i) {
    r[i] = lut[0][s[3 * i]];
    gp[i] = lut[1][s[3 * i + 1]];
    b[i] = lut[2][s[3 * i + 2]];
  }
}

void load_and_preprocess(const std::string& path, const PreprocessConfig& c, float* out, const DecodeOptions& o) {
  Image img = decode_file(path, decode_options_for(c, o));
  try {
    preprocess(img, c, out);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace clipkit::image
