// Per-format decoders behind decode_memory(). Each one converts to RGB exactly as Pillow 9.4's
// convert("RGB") does for the mode Pillow would open the file in, and throws clipkit::Error
// "<name>: <reason>" on bad input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "image/image.h"

namespace clipkit::image::detail {

// Everything a format decoder needs besides the bytes.
struct DecodeContext {
  const std::string& name;
  const DecodeOptions& opts;
  int orientation = 1;  // EXIF orientation found in the file (1 = none), filled by the decoder
};

// Throws when width*height exceeds the configured limit, or a dimension is not positive.
void check_dimensions(int64_t width, int64_t height, const DecodeContext& ctx);

Image decode_jpeg(const uint8_t* data, size_t n, DecodeContext& ctx);
Image decode_png(const uint8_t* data, size_t n, DecodeContext& ctx);
Image decode_webp(const uint8_t* data, size_t n, DecodeContext& ctx);
Image decode_gif(const uint8_t* data, size_t n, DecodeContext& ctx);
Image decode_bmp(const uint8_t* data, size_t n, DecodeContext& ctx);

// Orientation tag (1..8) from a TIFF-structured EXIF block (starting at "II"/"MM"), or 1.
int exif_orientation(const uint8_t* tiff, size_t n);

}  // namespace clipkit::image::detail
