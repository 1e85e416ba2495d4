// The one EXIF field we need: Orientation (tag 0x0112) in IFD0 of a TIFF-structured block.
#include "image/decode_internal.h"

namespace clipkit::image::detail {

int exif_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  auto u16 = [&](size_t at) -> uint32_t {
    return le ? t[at] | (t[at + 1] << 8) : (t[at] << 8) | t[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t {
    return le ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  if (u16(2) != 42) return 1;
  size_t ifd = u32(4);
  if (ifd > n || n - ifd < 2) return 1;
  uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    size_t e = ifd + 2 + static_cast<size_t>(i) * 12;
    if (e + 12 > n) break;
    if (u16(e) != 0x0112) continue;
    uint32_t type = u16(e + 2);
    uint32_t v = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : 1;  // SHORT (or a lenient LONG)
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
  }
  return 1;
}

}  // namespace clipkit::image::detail
