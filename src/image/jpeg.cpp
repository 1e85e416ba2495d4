// JPEG through libjpeg-turbo with its default decode settings (JDCT_ISLOW, fancy upsampling),
// which are the settings Pillow uses, so the decoded pixels are identical. libjpeg reports
// fatal errors through error_exit; we longjmp out of the library and throw from C++ code.
#include <csetjmp>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "image/decode_internal.h"

namespace clipkit::image::detail {
namespace {

struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are ignored (as Pillow does), except running out of data: libjpeg would pad the image
// with gray, while Pillow raises "image file is truncated".
void on_message(j_common_ptr c, int level) {
  if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
    auto* e = reinterpret_cast<JpegErr*>(c->err);
    std::snprintf(e->message, sizeof e->message, "truncated JPEG data (premature end of file)");
    std::longjmp(e->jump, 1);
  }
}

enum class Kind { Gray, Rgb, Cmyk };

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErr err;
  bool created = false;
  Kind kind = Kind::Rgb;
  std::vector<uint8_t> scratch;  // one row of gray or CMYK samples (or of a row read past the region)
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// Pillow's cmyk2rgb after its "CMYK;I" unpacking: stored bytes are inverted first (Adobe
// convention), then X = clip(255 - K - MULDIV255(C, 255 - K)).
inline uint8_t cmyk_channel(uint8_t stored_c, uint8_t stored_k) {
  int c = 255 - stored_c, nk = stored_k;  // nk = 255 - K after inversion
  int t = c * nk + 128;
  int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

// The pixels to decode: the whole image, or DecodeOptions::needed widened by one iMCU (the largest
// sampling factor times 8 pixels) on every side. libjpeg-turbo crops columns at iMCU boundaries
// and upsamples the chroma at a cropped edge as at the image's edge (so pixels beside that edge
// may differ from a full decode's), and its fancy upsampling reaches one chroma sample (at most 4
// pixels) past a pixel; each block's IDCT is its own. The rows and columns inside the margin are
// therefore the full decode's bit for bit (JpegRegion tests compare every shared image).
// (After jpeg_start_decompress: in output pixels, which are the image's unless DCT-scaled.)
PixelRect decode_region(const jpeg_decompress_struct& ci, const DecodeOptions& o) {
  const int w = static_cast<int>(ci.output_width), h = static_cast<int>(ci.output_height);
  const PixelRect all{0, 0, w, h};
  if (!o.needed || o.exif_transpose || ci.output_width != ci.image_width || ci.output_height != ci.image_height)
    return all;
  PixelRect r = o.needed(w, h);
  if (r.empty()) return {0, 0, w, 0};  // no pixel read: every row skipped (still entropy-decoded)
  const int m = std::max(ci.max_h_samp_factor, ci.max_v_samp_factor) * DCTSIZE;
  r.x0 = std::clamp(r.x0 - m, 0, w);
  r.x1 = std::clamp(r.x1 + m, r.x0, w);
  r.y0 = std::clamp(r.y0 - m, 0, h);
  r.y1 = std::clamp(r.y1 + m, r.y0, h);
  if (r.x1 <= r.x0) r.x0 = 0, r.x1 = w;
  return r;
}

// Everything that may longjmp lives here; only `s` (by reference, in memory) survives a jump.
bool run_jpeg(JpegState& s, const uint8_t* data, size_t n, DecodeContext& ctx, Image& img) {
  jpeg_decompress_struct& ci = s.cinfo;
  if (setjmp(s.err.jump)) return false;
  jpeg_create_decompress(&ci);
  s.created = true;
  jpeg_mem_src(&ci, data, static_cast<unsigned long>(n));
  if (ctx.opts.exif_transpose) jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&ci, TRUE);
  check_dimensions(ci.image_width, ci.image_height, ctx);
  switch (ci.num_components) {
    case 1: s.kind = Kind::Gray; ci.out_color_space = JCS_GRAYSCALE; break;
    case 3: s.kind = Kind::Rgb; ci.out_color_space = JCS_RGB; break;
    case 4: s.kind = Kind::Cmyk; ci.out_color_space = JCS_CMYK; break;
    default:
      std::snprintf(s.err.message, sizeof s.err.message, "unsupported JPEG with %d color components",
                    ci.num_components);
      return false;
  }
  if (ctx.opts.dct_downscale_target > 0) {
    // Opt-in fast path: scale 1/d in the DCT domain, keeping the shortest edge >= target.
    int64_t shortest = std::min(ci.image_width, ci.image_height);
    for (int d : {8, 4, 2}) {
      if (shortest >= static_cast<int64_t>(ctx.opts.dct_downscale_target) * d) {
        ci.scale_num = 1;
        ci.scale_denom = d;
        break;
      }
    }
  }
  jpeg_start_decompress(&ci);
  const PixelRect region = decode_region(ci, ctx.opts);
  const int w = static_cast<int>(ci.output_width), h = static_cast<int>(ci.output_height);
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  // Columns [x0, x0 + cw) of rows [y0, y1); libjpeg widens a crop to whole iMCUs.
  JDIMENSION x0 = static_cast<JDIMENSION>(region.x0), cw = static_cast<JDIMENSION>(region.x1 - region.x0);
  if (cw < static_cast<JDIMENSION>(w)) jpeg_crop_scanline(&ci, &x0, &cw);
  const JDIMENSION y1 = static_cast<JDIMENSION>(region.y1);
  if (region.y0 > 0) jpeg_skip_scanlines(&ci, static_cast<JDIMENSION>(region.y0));
  if (s.kind != Kind::Rgb) s.scratch.resize(static_cast<size_t>(cw) * ci.output_components);
  while (ci.output_scanline < y1) {
    uint8_t* dst = img.rgb.data() + static_cast<size_t>(ci.output_scanline) * w * 3 + static_cast<size_t>(x0) * 3;
    if (s.kind == Kind::Rgb) {
      JSAMPROW rows[8];
      int k = 0;
      for (; k < 8 && ci.output_scanline + k < y1; ++k) rows[k] = dst + static_cast<size_t>(k) * w * 3;
      jpeg_read_scanlines(&ci, rows, k);
      continue;
    }
    JSAMPROW row = s.scratch.data();
    jpeg_read_scanlines(&ci, &row, 1);
    const uint8_t* src = s.scratch.data();
    if (s.kind == Kind::Gray) {
      for (JDIMENSION x = 0; x < cw; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
    } else {
      for (JDIMENSION x = 0; x < cw; ++x) {
        const uint8_t* p = src + 4 * x;
        dst[3 * x] = cmyk_channel(p[0], p[3]);
        dst[3 * x + 1] = cmyk_channel(p[1], p[3]);
        dst[3 * x + 2] = cmyk_channel(p[2], p[3]);
      }
    }
  }
  // The rows below the region: skipped rows are entropy-decoded without their IDCT, but a skip that
  // reaches the end reads nothing (libjpeg-turbo marks the end of the image), so the last row is
  // decoded: a file truncated or corrupt below the region fails as a full decode (and Pillow) would.
  if (ci.output_scanline < ci.output_height) {
    if (ci.output_height - ci.output_scanline > 1) jpeg_skip_scanlines(&ci, ci.output_height - ci.output_scanline - 1);
    s.scratch.resize(static_cast<size_t>(cw) * ci.output_components);
    JSAMPROW row = s.scratch.data();
    jpeg_read_scanlines(&ci, &row, 1);
  }
  if (ctx.opts.exif_transpose) {
    for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next) {
      if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
        ctx.orientation = exif_orientation(m->data + 6, m->data_length - 6);
        break;
      }
    }
  }
  // No jpeg_finish_decompress: all pixels are in; trailing garbage or a missing EOI after the
  // last scan does not change them.
  return true;
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t n, DecodeContext& ctx) {
  JpegState s;
  s.cinfo.err = jpeg_std_error(&s.err.pub);
  s.err.pub.error_exit = on_error;
  s.err.pub.emit_message = on_message;
  s.err.message[0] = '\0';
  Image img;
  if (!run_jpeg(s, data, n, ctx, img)) {
    const std::string msg = s.err.message;
    if (msg.rfind("truncated", 0) == 0) fail("{}: {}", ctx.name, msg);
    fail("{}: invalid or corrupt JPEG: {}", ctx.name, msg);
  }
  return img;
}

}  // namespace clipkit::image::detail
