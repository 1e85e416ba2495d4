// BMP, parsed here (no library): OS/2 and Windows headers (12..124 bytes), 1/4/8-bit palette,
// 16-bit 5-5-5 / 5-6-5, 24-bit, 32-bit (alpha dropped), uncompressed, BITFIELDS, RLE8 and RLE4.
// Expansion of 5/6-bit fields follows Pillow's unpackers: v * 255 / 31 (or / 63), truncated.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "image/decode_internal.h"

namespace clipkit::image::detail {
namespace {

uint32_t le16(const uint8_t* p) { return p[0] | (p[1] << 8); }
uint32_t le32(const uint8_t* p) { return le16(p) | (le16(p + 2) << 16); }

// Byte index (0..3) of an 8-bit mask on a byte boundary, or -1.
int byte_of(uint32_t mask) {
  for (int b = 0; b < 4; ++b)
    if (mask == (0xFFu << (8 * b))) return b;
  return -1;
}

}  // namespace

Image decode_bmp(const uint8_t* d, size_t n, DecodeContext& ctx) {
  const std::string& name = ctx.name;
  if (n < 26) fail("{}: truncated BMP header", name);
  const uint32_t data_off = le32(d + 10), hsize = le32(d + 14);
  int64_t w, h;
  int bpp;
  uint32_t comp = 0, colors = 0;
  int pal_entry = 4;
  if (hsize == 12) {  // OS/2 1.x BITMAPCOREHEADER
    w = le16(d + 18);
    h = static_cast<int16_t>(le16(d + 20));
    bpp = static_cast<int>(le16(d + 24));
    pal_entry = 3;
  } else if (hsize >= 40 && hsize <= 124) {
    if (n < 14 + 40) fail("{}: truncated BMP header", name);
    w = static_cast<int32_t>(le32(d + 18));
    h = static_cast<int32_t>(le32(d + 22));
    bpp = static_cast<int>(le16(d + 28));
    comp = le32(d + 30);
    colors = le32(d + 46);
  } else {
    fail("{}: unsupported BMP header size {}", name, hsize);
  }
  const bool top_down = h < 0;
  if (top_down) h = -h;
  check_dimensions(w, h, ctx);

  // Channel masks for 16/32-bit images: BI_RGB defaults or BITFIELDS (after a 40-byte header,
  // or inside a V2+ header).
  uint32_t mask[3] = {0, 0, 0};
  if (bpp == 16) mask[0] = 0x7C00, mask[1] = 0x03E0, mask[2] = 0x001F;
  if (bpp == 32 || bpp == 24) mask[0] = 0xFF0000, mask[1] = 0xFF00, mask[2] = 0xFF;
  if (comp == 3 || comp == 6) {
    if (14 + 40 + 12 > n) fail("{}: truncated BMP header", name);
    for (int c = 0; c < 3; ++c) mask[c] = le32(d + 14 + 40 + 4 * c);
  } else if (comp != 0 && comp != 1 && comp != 2) {
    fail("{}: unsupported BMP compression {}", name, comp);
  }
  if ((comp == 1 && bpp != 8) || (comp == 2 && bpp != 4) || ((comp == 3 || comp == 6) && bpp != 16 && bpp != 32))
    fail("{}: invalid BMP: compression {} with {} bits per pixel", name, comp, bpp);
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    fail("{}: unsupported BMP bit depth {}", name, bpp);

  // Palette (BGR(X) entries after the header); Pillow's default for missing entries is a ramp.
  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = static_cast<uint8_t>(i);
  if (bpp <= 8) {
    size_t count = colors ? std::min<uint32_t>(colors, 256) : (1u << bpp);
    size_t at = 14 + hsize;
    for (size_t i = 0; i < count && at + (i + 1) * pal_entry <= n; ++i) {
      const uint8_t* e = d + at + i * pal_entry;
      pal[i][0] = e[2];
      pal[i][1] = e[1];
      pal[i][2] = e[0];
    }
  }
  if (data_off >= n) fail("{}: truncated BMP (no pixel data)", name);

  // Decode to indices (<= 8 bit) or straight to RGB; rows in file order, flipped at the end.
  Image img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.rgb.assign(static_cast<size_t>(w) * h * 3, 0);
  auto out_row = [&](int64_t file_row) {
    int64_t y = top_down ? file_row : h - 1 - file_row;
    return img.rgb.data() + static_cast<size_t>(y) * w * 3;
  };
  const uint8_t* src = d + data_off;
  const size_t avail = n - data_off;
  (void)avail;

  if (comp == 1 || comp == 2) {
    // RLE8 / RLE4 exactly as Pillow 9.4's BmpRleDecoder: indices are appended to one linear
    // buffer (file row order), an encoded run is cut at the row end, end-of-line pads to the next
    // row boundary, absolute runs are word-aligned by absolute file offset, and a delta consumes
    // two bytes more than it should (Pillow's behaviour, kept for parity).
    const size_t total = static_cast<size_t>(w) * h;
    std::vector<uint8_t> idx;
    idx.reserve(total);
    size_t p = data_off;  // absolute file offset
    int64_t x = 0;
    while (idx.size() < total) {
      if (p + 2 > n) break;
      int count = d[p], val = d[p + 1];
      p += 2;
      if (count > 0) {
        if (x + count > w) count = static_cast<int>(std::max<int64_t>(0, w - x));
        for (int i = 0; i < count; ++i) idx.push_back(static_cast<uint8_t>(comp == 1 ? val : (i % 2 == 0 ? val >> 4 : val & 15)));
        x += count;
      } else if (val == 0) {
        while (idx.size() % static_cast<size_t>(w) != 0) idx.push_back(0);
        x = 0;
      } else if (val == 1) {
        break;
      } else if (val == 2) {
        if (p + 2 > n) break;
        p += 2;
        if (p + 2 > n) fail("{}: truncated BMP RLE data (premature end of file)", name);
        const size_t right = d[p], up = d[p + 1];
        p += 2;
        idx.insert(idx.end(), right + up * static_cast<size_t>(w), 0);
        x = static_cast<int64_t>(idx.size() % static_cast<size_t>(w));
      } else {
        const size_t want = comp == 1 ? val : val / 2;
        const size_t got = std::min(want, n - p);
        for (size_t i = 0; i < got; ++i) {
          if (comp == 1) {
            idx.push_back(d[p + i]);
          } else {
            idx.push_back(d[p + i] >> 4);
            idx.push_back(d[p + i] & 15);
          }
        }
        p += got;
        if (got < want) break;
        x += val;
        if (p % 2 != 0) ++p;
      }
    }
    if (idx.size() < total) fail("{}: truncated BMP RLE data (not enough image data)", name);
    for (int64_t fy = 0; fy < h; ++fy) {
      uint8_t* o = out_row(fy);
      for (int64_t fx = 0; fx < w; ++fx) std::memcpy(o + 3 * fx, pal[idx[static_cast<size_t>(fy) * w + fx]], 3);
    }
    return img;
  }

  const size_t stride = ((static_cast<size_t>(w) * bpp + 31) / 32) * 4;
  if (stride * static_cast<size_t>(h) > avail) fail("{}: truncated BMP pixel data (premature end of file)", name);
  int byte_idx[3] = {-1, -1, -1};
  if (bpp == 32 || bpp == 24) {
    for (int c = 0; c < 3; ++c) byte_idx[c] = byte_of(mask[c]);
    if (byte_idx[0] < 0 || byte_idx[1] < 0 || byte_idx[2] < 0) fail("{}: unsupported BMP bitfields layout", name);
  }
  const bool is565 = mask[0] == 0xF800 && mask[1] == 0x07E0 && mask[2] == 0x001F;
  if (bpp == 16 && !is565 && !(mask[0] == 0x7C00 && mask[1] == 0x03E0 && mask[2] == 0x001F))
    fail("{}: unsupported BMP bitfields layout", name);

  for (int64_t fy = 0; fy < h; ++fy) {
    const uint8_t* s = src + static_cast<size_t>(fy) * stride;
    uint8_t* o = out_row(fy);
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* px = o + 3 * x;
      switch (bpp) {
        case 1: std::memcpy(px, pal[(s[x >> 3] >> (7 - (x & 7))) & 1], 3); break;
        case 4: std::memcpy(px, pal[(s[x >> 1] >> ((x & 1) ? 0 : 4)) & 15], 3); break;
        case 8: std::memcpy(px, pal[s[x]], 3); break;
        case 16: {
          uint32_t v = le16(s + 2 * x);
          if (is565) {
            px[0] = static_cast<uint8_t>(((v >> 11) & 31) * 255 / 31);
            px[1] = static_cast<uint8_t>(((v >> 5) & 63) * 255 / 63);
          } else {
            px[0] = static_cast<uint8_t>(((v >> 10) & 31) * 255 / 31);
            px[1] = static_cast<uint8_t>(((v >> 5) & 31) * 255 / 31);
          }
          px[2] = static_cast<uint8_t>((v & 31) * 255 / 31);
          break;
        }
        default: {  // 24 or 32: bytes little-endian, so mask byte b is byte b of the pixel
          const uint8_t* p = s + x * (bpp / 8);
          px[0] = p[byte_idx[0]];
          px[1] = p[byte_idx[1]];
          px[2] = p[byte_idx[2]];
        }
      }
    }
  }
  return img;
}

}  // namespace clipkit::image::detail
