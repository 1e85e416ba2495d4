// Format sniffing, file reading and the common checks around the per-format decoders.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "core/error.h"
#include "image/decode_internal.h"
#include "image/image.h"
#include "io/tar_reader.h"

namespace clipkit::image {

const char* format_name(Format f) {
  switch (f) {
    case Format::Jpeg: return "JPEG";
    case Format::Png: return "PNG";
    case Format::Webp: return "WebP";
    case Format::Gif: return "GIF";
    case Format::Bmp: return "BMP";
    default: return "unknown";
  }
}

Format sniff_format(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(d + at, magic, len) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return Format::Jpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return Format::Png;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return Format::Webp;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::Gif;
  if (starts("BM", 2)) return Format::Bmp;
  return Format::Unknown;
}

namespace {

// Names formats we recognise but do not decode, for a clearer error than "not an image".
const char* known_unsupported(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(d + at, magic, len) == 0;
  };
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return "TIFF";
  if (starts("ftypheic", 8, 4) || starts("ftypheix", 8, 4) || starts("ftypmif1", 8, 4)) return "HEIF";
  if (starts("ftypavif", 8, 4)) return "AVIF";
  if (starts("\0\0\1\0", 4)) return "ICO";
  if (starts("8BPS", 4)) return "PSD";
  if (starts("\xFF\x0A", 2) || starts("\0\0\0\x0CJXL ", 8)) return "JPEG XL";
  if (starts("%PDF", 4)) return "PDF";
  return nullptr;
}

}  // namespace

namespace detail {

void check_dimensions(int64_t width, int64_t height, const DecodeContext& ctx) {
  if (width <= 0 || height <= 0) fail("{}: invalid image size {}x{}", ctx.name, width, height);
  int64_t limit = ctx.opts.max_pixels;
  if (limit > 0 && width * height > limit)
    fail("{}: image size {}x{} = {} pixels exceeds the limit of {} pixels (possible decompression bomb)", ctx.name,
         width, height, width * height, limit);
}

}  // namespace detail

void apply_orientation(Image& img, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  const int w = img.width, h = img.height;
  const bool swap = orientation >= 5;
  const int ow = swap ? h : w, oh = swap ? w : h;
  std::vector<uint8_t> out(img.rgb.size());
  for (int oy = 0; oy < oh; ++oy) {
    for (int ox = 0; ox < ow; ++ox) {
      int ix = ox, iy = oy;
      switch (orientation) {
        case 2: ix = w - 1 - ox; break;                          // FLIP_LEFT_RIGHT
        case 3: ix = w - 1 - ox; iy = h - 1 - oy; break;         // ROTATE_180
        case 4: iy = h - 1 - oy; break;                          // FLIP_TOP_BOTTOM
        case 5: ix = oy; iy = ox; break;                         // TRANSPOSE
        case 6: ix = oy; iy = h - 1 - ox; break;                 // ROTATE_270 (90 deg clockwise)
        case 7: ix = w - 1 - oy; iy = h - 1 - ox; break;         // TRANSVERSE
        case 8: ix = w - 1 - oy; iy = ox; break;                 // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* s = &img.rgb[(static_cast<size_t>(iy) * w + ix) * 3];
      uint8_t* d = &out[(static_cast<size_t>(oy) * ow + ox) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  img.rgb.swap(out);
  img.width = ow;
  img.height = oh;
}

Image decode_memory(const uint8_t* data, size_t n, const std::string& name, const DecodeOptions& o) {
  if (n == 0) fail("{}: empty file (0 bytes), not an image", name);
  detail::DecodeContext ctx{name, o};
  Image img;
  switch (sniff_format(data, n)) {
    case Format::Jpeg: img = detail::decode_jpeg(data, n, ctx); break;
    case Format::Png: img = detail::decode_png(data, n, ctx); break;
    case Format::Webp: img = detail::decode_webp(data, n, ctx); break;
    case Format::Gif: img = detail::decode_gif(data, n, ctx); break;
    case Format::Bmp: img = detail::decode_bmp(data, n, ctx); break;
    case Format::Unknown:
      if (const char* f = known_unsupported(data, n))
        fail("{}: unsupported image format {} (supported: JPEG, PNG, WebP, GIF, BMP)", name, f);
      fail("{}: not a recognized image file (no JPEG, PNG, WebP, GIF or BMP signature)", name);
  }
  if (o.exif_transpose) apply_orientation(img, ctx.orientation);
  return img;
}

Image decode_file(const std::string& path, const DecodeOptions& o) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    std::string archive, member;
    if (!io::split_archive_path(path, &archive, &member)) fail("{}: cannot open: {}", path, std::strerror(err));
    const std::string bytes = io::read_path_bytes(path);  // a member of a WebDataset shard
    return decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, o);
  }
  if (S_ISDIR(st.st_mode)) fail("{}: is a directory, not an image", path);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::vector<uint8_t> buf;
  uint8_t chunk[1 << 16];
  size_t got;
  if (st.st_size > 0) buf.reserve(static_cast<size_t>(st.st_size));
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) buf.insert(buf.end(), chunk, chunk + got);
  bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) fail("{}: read error", path);
  return decode_memory(buf.data(), buf.size(), path, o);
}

}  // namespace clipkit::image
