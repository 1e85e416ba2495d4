// One image decoder (FUZZ_FORMAT: jpeg, png, webp, gif or bmp; built once per format): inputs
// get the format's signature when they lack it, so the fuzzer explores inside that decoder. An
// image that decodes is also preprocessed, as every consumer does, and decoded again with only the
// pixels preprocessing reads (DecodeOptions::needed), which must give the same result.
#include <cstring>

#include "core/error.h"
#include "fuzz_util.h"
#include "image/image.h"
#include "image/preprocess.h"

namespace {

#define CLIPKIT_STR2(x) #x
#define CLIPKIT_STR(x) CLIPKIT_STR2(x)

std::string with_signature(std::string_view in) {
  const std::string f = CLIPKIT_STR(FUZZ_FORMAT);
  std::string sig = f == "jpeg" ? "\xFF\xD8\xFF" : f == "png" ? "\x89PNG\r\n\x1A\n" : f == "gif" ? "GIF89a" : f == "bmp" ? "BM" : "";
  if (f == "webp") {
    if (in.size() >= 12 && in.substr(0, 4) == "RIFF" && in.substr(8, 4) == "WEBP") return std::string(in);
    return "RIFF" + std::string(in.substr(0, std::min<size_t>(4, in.size()))) + "WEBP" +
           std::string(in.substr(std::min<size_t>(4, in.size())));
  }
  if (in.substr(0, sig.size()) == sig) return std::string(in);
  return sig + std::string(in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = with_signature(clipkit::fuzz::as_view(data, size));
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  clipkit::image::DecodeOptions o;
  o.max_pixels = 4'000'000;  // the fuzzer's memory; the limit itself is what is checked before decoding
  o.exif_transpose = size % 2 == 1;
  const auto c = clipkit::image::PreprocessConfig::clip_default(16);
  std::vector<float> out(3 * 16 * 16), region_out(out.size());
  bool whole_ok = true;
  try {
    auto img = clipkit::image::decode_memory(p, bytes.size(), "fuzz", o);
    clipkit::image::preprocess(img, c, out.data());
  } catch (const clipkit::Error&) {
    whole_ok = false;
  }
  if (o.exif_transpose) return 0;
  // Decoding only what the crop reads (DecodeOptions::needed) must agree with the whole decode:
  // the same pixels to preprocess, the same inputs refused.
  bool region_ok = true;
  try {
    auto img = clipkit::image::decode_memory(p, bytes.size(), "fuzz", clipkit::image::decode_options_for(c, o));
    clipkit::image::preprocess(img, c, region_out.data());
  } catch (const clipkit::Error&) {
    region_ok = false;
  }
  if (region_ok != whole_ok) __builtin_trap();
  if (whole_ok && std::memcmp(out.data(), region_out.data(), out.size() * sizeof(float)) != 0) __builtin_trap();
  return 0;
}
