// PNG through libpng, converted to RGB the way Pillow 9.4 opens and converts each PNG type:
//   gray 1/2/4/8 bit -> "1"/"L" (values scaled to 0..255), gray 16 -> "I" then CLAMPED to 0..255,
//   16-bit RGB/RGBA/LA -> most significant byte, alpha dropped (no compositing),
//   palette -> lookup, tRNS ignored. Gamma/ICC chunks are ignored, as Pillow does.
#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "image/decode_internal.h"

namespace clipkit::image::detail {
namespace {

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = {0};
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  ~PngState() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", msg);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, size_t len) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (s->size - s->pos < len) png_error(png, "truncated PNG data (premature end of file)");
  std::memcpy(out, s->data + s->pos, len);
  s->pos += len;
}

// All libpng calls happen here; only `s` and `img` (in memory) are used after a longjmp.
bool run_png(PngState& s, DecodeContext& ctx, Image& img) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &s, on_read);
  png_set_user_limits(s.png, 0x7fffffff, 0x7fffffff);  // our own pixel limit applies instead
  png_read_info(s.png, s.info);
  png_uint_32 w32, h32;
  int depth, color, interlace;
  png_get_IHDR(s.png, s.info, &w32, &h32, &depth, &color, &interlace, nullptr, nullptr);
  check_dimensions(w32, h32, ctx);
  const int w = static_cast<int>(w32), h = static_cast<int>(h32);

  // Sample layout after the transforms below: `ch` samples of `bps` bytes per pixel.
  int ch = 0;
  switch (color) {
    case PNG_COLOR_TYPE_GRAY: ch = 1; if (depth < 8) png_set_expand_gray_1_2_4_to_8(s.png); break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: ch = 2; break;
    case PNG_COLOR_TYPE_RGB: ch = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: ch = 4; break;
    case PNG_COLOR_TYPE_PALETTE: ch = 1; if (depth < 8) png_set_packing(s.png); break;  // indices
    default: std::snprintf(s.message, sizeof s.message, "unsupported PNG color type %d", color); return false;
  }
  const int bps = depth == 16 ? 2 : 1;
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);

  // Palette: Pillow starts from a gray ramp and overwrites the entries the file defines.
  uint8_t pal[256][3];
  if (color == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = static_cast<uint8_t>(i);
    png_colorp p = nullptr;
    int np = 0;
    if (png_get_PLTE(s.png, s.info, &p, &np) & PNG_INFO_PLTE) {
      for (int i = 0; i < np && i < 256; ++i) {
        pal[i][0] = p[i].red;
        pal[i][1] = p[i].green;
        pal[i][2] = p[i].blue;
      }
    }
  }

  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  const size_t row_bytes = static_cast<size_t>(w) * ch * bps;
  const bool direct = ch == 3 && bps == 1;  // decode straight into the output
  if (!direct) s.raw.resize(row_bytes * h);
  s.rows.resize(h);
  for (int y = 0; y < h; ++y)
    s.rows[y] = direct ? img.rgb.data() + static_cast<size_t>(y) * w * 3 : s.raw.data() + y * row_bytes;
  png_read_image(s.png, s.rows.data());
  if (ctx.opts.exif_transpose) {
    png_read_end(s.png, s.info);
    png_uint_32 ne = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(s.png, s.info, &ne, &exif) && exif) ctx.orientation = exif_orientation(exif, ne);
  }
  if (direct) return true;

  for (int y = 0; y < h; ++y) {
    const uint8_t* src = s.rows[y];
    uint8_t* dst = img.rgb.data() + static_cast<size_t>(y) * w * 3;
    if (color == PNG_COLOR_TYPE_PALETTE) {
      for (int x = 0; x < w; ++x) std::memcpy(dst + 3 * x, pal[src[x]], 3);
    } else if (ch <= 2 && bps == 2 && ch == 1) {
      // 16-bit gray: mode "I", convert("RGB") clamps the value to 0..255.
      for (int x = 0; x < w; ++x) {
        int v = (src[2 * x] << 8) | src[2 * x + 1];
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = static_cast<uint8_t>(std::min(v, 255));
      }
    } else if (ch <= 2) {
      const int stride = ch * bps;  // gray (+alpha), first byte = MSB of gray
      for (int x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x * stride];
    } else {
      const int stride = ch * bps;  // RGB(A), 8 or 16 bit: the MSB of each of R, G, B
      for (int x = 0; x < w; ++x) {
        const uint8_t* p = src + x * stride;
        dst[3 * x] = p[0];
        dst[3 * x + 1] = p[bps];
        dst[3 * x + 2] = p[2 * bps];
      }
    }
  }
  return true;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t n, DecodeContext& ctx) {
  PngState s;
  s.data = data;
  s.size = n;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
  if (!s.png) fail("{}: out of memory", ctx.name);
  s.info = png_create_info_struct(s.png);
  if (!s.info) fail("{}: out of memory", ctx.name);
  Image img;
  if (!run_png(s, ctx, img)) {
    const std::string msg = s.message;
    if (msg.rfind("truncated", 0) == 0) fail("{}: {}", ctx.name, msg);
    fail("{}: invalid or corrupt PNG: {}", ctx.name, msg);
  }
  return img;
}

}  // namespace clipkit::image::detail
