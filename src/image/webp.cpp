// WebP (lossy and lossless, still images) through libwebp. Pillow decodes to RGBA/RGBX without
// premultiplication and convert("RGB") drops alpha, which is exactly libwebp's MODE_RGB output.
#include <webp/decode.h>

#include <cstring>

#include "core/error.h"
#include "image/decode_internal.h"

namespace clipkit::image::detail {
namespace {

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// Orientation from an "EXIF" chunk of an extended (VP8X) RIFF container, or 1.
int webp_orientation(const uint8_t* d, size_t n) {
  size_t pos = 12;
  while (pos + 8 <= n) {
    uint32_t len = le32(d + pos + 4);
    size_t body = pos + 8;
    if (len > n - body) break;
    if (std::memcmp(d + pos, "EXIF", 4) == 0) {
      const uint8_t* e = d + body;
      size_t en = len;
      if (en >= 6 && std::memcmp(e, "Exif\0\0", 6) == 0) e += 6, en -= 6;
      return exif_orientation(e, en);
    }
    pos = body + len + (len & 1);
  }
  return 1;
}

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated WebP data (premature end of file)";
    default: return "error";
  }
}

}  // namespace

Image decode_webp(const uint8_t* data, size_t n, DecodeContext& ctx) {
  WebPBitstreamFeatures f;
  VP8StatusCode st = WebPGetFeatures(data, n, &f);
  if (st != VP8_STATUS_OK) fail("{}: invalid or corrupt WebP: {}", ctx.name, status_text(st));
  if (f.has_animation) fail("{}: unsupported: animated WebP", ctx.name);
  check_dimensions(f.width, f.height, ctx);
  Image img;
  img.width = f.width;
  img.height = f.height;
  img.rgb.resize(static_cast<size_t>(f.width) * f.height * 3);
  WebPDecoderConfig cfg;
  if (!WebPInitDecoderConfig(&cfg)) fail("{}: libwebp version mismatch", ctx.name);
  cfg.output.colorspace = MODE_RGB;
  cfg.output.is_external_memory = 1;
  cfg.output.u.RGBA.rgba = img.rgb.data();
  cfg.output.u.RGBA.stride = f.width * 3;
  cfg.output.u.RGBA.size = img.rgb.size();
  st = WebPDecode(data, n, &cfg);
  WebPFreeDecBuffer(&cfg.output);
  if (st != VP8_STATUS_OK) fail("{}: invalid or corrupt WebP: {}", ctx.name, status_text(st));
  if (ctx.opts.exif_transpose) ctx.orientation = webp_orientation(data, n);
  return img;
}

}  // namespace clipkit::image::detail
