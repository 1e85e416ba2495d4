// GIF (first frame) through giflib, as Pillow 9.4 loads frame 0: mode "P" (or "L" without any
// colour table), canvas = logical screen grown to contain the frame, pixels outside the frame
// = the frame's transparency index if it has one, else index 0; convert("RGB") = palette lookup.
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "image/decode_internal.h"

namespace clipkit::image::detail {
namespace {

struct Reader {
  const uint8_t* data;
  size_t size, pos;
};

int read_fn(GifFileType* g, GifByteType* out, int len) {
  auto* r = static_cast<Reader*>(g->UserData);
  size_t take = std::min(static_cast<size_t>(len < 0 ? 0 : len), r->size - r->pos);
  std::memcpy(out, r->data + r->pos, take);
  r->pos += take;
  return static_cast<int>(take);
}

struct GifCloser {
  GifFileType* g;
  ~GifCloser() {
    int err;
    if (g) DGifCloseFile(g, &err);
  }
};

// giflib's message for an error code; GifErrorString returns null for codes it does not know
// (found by fuzz/fuzz_image.cpp: a null argument made the error message itself throw).
std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s ? s : fmt::format("unknown giflib error {}", code);
}

}  // namespace

Image decode_gif(const uint8_t* data, size_t n, DecodeContext& ctx) {
  Reader r{data, n, 0};
  int err = 0;
  GifFileType* g = DGifOpen(&r, read_fn, &err);
  if (!g) fail("{}: invalid or corrupt GIF: {}", ctx.name, gif_error(err));
  GifCloser closer{g};
  auto gif_fail = [&]() {
    if (g->Error == D_GIF_ERR_READ_FAILED) fail("{}: truncated GIF data (premature end of file)", ctx.name);
    fail("{}: invalid or corrupt GIF: {}", ctx.name, gif_error(g->Error));
  };
  int transparency = -1;
  for (;;) {
    GifRecordType rec;
    if (DGifGetRecordType(g, &rec) == GIF_ERROR) gif_fail();
    if (rec == TERMINATE_RECORD_TYPE) fail("{}: GIF contains no image", ctx.name);
    if (rec == EXTENSION_RECORD_TYPE) {
      int code;
      GifByteType* ext;
      if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) gif_fail();
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4 && (ext[1] & 1)) transparency = ext[4];
      while (ext) {
        if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) gif_fail();
      }
      continue;
    }
    if (rec != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(g) == GIF_ERROR) gif_fail();
    break;
  }
  const GifImageDesc& d = g->Image;
  const int64_t x0 = d.Left, y0 = d.Top, fw = d.Width, fh = d.Height;
  const int64_t W = std::max<int64_t>(g->SWidth, x0 + fw), H = std::max<int64_t>(g->SHeight, y0 + fh);
  check_dimensions(W, H, ctx);
  if (fw <= 0 || fh <= 0) fail("{}: invalid GIF frame size {}x{}", ctx.name, fw, fh);

  // Gray ramp where the colour table has no entry (Pillow's palette default).
  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = static_cast<uint8_t>(i);
  const ColorMapObject* cmap = d.ColorMap ? d.ColorMap : g->SColorMap;
  if (cmap) {
    for (int i = 0; i < cmap->ColorCount && i < 256; ++i) {
      pal[i][0] = cmap->Colors[i].Red;
      pal[i][1] = cmap->Colors[i].Green;
      pal[i][2] = cmap->Colors[i].Blue;
    }
  }
  std::vector<uint8_t> idx(static_cast<size_t>(W) * H, static_cast<uint8_t>(transparency >= 0 ? transparency : 0));
  std::vector<uint8_t> line(fw);
  // Interlaced frames arrive in four passes: rows 0,8,..; 4,12,..; 2,6,..; 1,3,..
  static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
  const int passes = d.Interlace ? 4 : 1;
  for (int p = 0; p < passes; ++p) {
    const int y_begin = d.Interlace ? start[p] : 0, y_step = d.Interlace ? step[p] : 1;
    for (int64_t y = y_begin; y < fh; y += y_step) {
      if (DGifGetLine(g, line.data(), static_cast<int>(fw)) == GIF_ERROR) gif_fail();
      std::memcpy(&idx[static_cast<size_t>(y0 + y) * W + x0], line.data(), fw);
    }
  }
  Image img;
  img.width = static_cast<int>(W);
  img.height = static_cast<int>(H);
  img.rgb.resize(static_cast<size_t>(W) * H * 3);
  for (size_t i = 0; i < idx.size(); ++i) std::memcpy(&img.rgb[3 * i], pal[idx[i]], 3);
  return img;
}

}  // namespace clipkit::image::detail
