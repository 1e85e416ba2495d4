// Image decoding that reproduces what Pillow 9.4's Image.open(...).convert("RGB") gives, so the
// pixels fed to CLIP match the ones Hugging Face's CLIPImageProcessor sees. The format is found
// from the file's content (magic bytes), never from its name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clipkit::image {

// HWC RGB uint8, rows top to bottom, no padding: rgb.size() == width * height * 3.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Pixels [x0, x1) x [y0, y1) of an image.
struct PixelRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};

struct DecodeOptions {
  // Apply the EXIF Orientation tag (as PIL.ImageOps.exif_transpose). Off by default: HF's
  // processor does not rotate the images it is given.
  bool exif_transpose = false;
  // Decompression-bomb limit on width*height, checked from the header before any pixel is
  // decoded. Pillow raises DecompressionBombError above 2 * MAX_IMAGE_PIXELS = 178956970.
  // <= 0 disables the check.
  int64_t max_pixels = 178956970;
  // > 0 enables the opt-in JPEG fast path: libjpeg's DCT-domain downscaling by 1/2, 1/4 or 1/8
  // (the largest factor that keeps the shortest edge >= this target). Not bit-exact with Pillow.
  int dct_downscale_target = 0;
  // Set by decode_for_preprocess(): the pixels the caller will read, given the image's size. A
  // decoder that can skip the others may (JPEG: libjpeg-turbo's row skipping and column cropping,
  // with a margin so the pixels inside equal a full decode's bit for bit); skipped pixels are 0.
  // The whole file is still read, so a truncated or corrupt one fails as before. Ignored with
  // exif_transpose or dct_downscale_target.
  std::function<PixelRect(int width, int height)> needed;
};

enum class Format { Unknown, Jpeg, Png, Webp, Gif, Bmp };
const char* format_name(Format f);
// The format from the first bytes of a file (needs at most 16 bytes).
Format sniff_format(const uint8_t* data, size_t n);

// A path is a file, or a member of a .tar archive named through it ("shards/00000.tar/KEY.jpg",
// io::read_path_bytes). Throw clipkit::Error "<path>: <reason>" on any bad input (unreadable,
// empty, truncated, unsupported, corrupt, over the pixel limit).
Image decode_file(const std::string& path, const DecodeOptions& o = {});
Image decode_memory(const uint8_t* data, size_t n, const std::string& name_for_errors,
                    const DecodeOptions& o = {});

// EXIF orientation (1..8) applied to an image in place, as PIL.ImageOps.exif_transpose.
void apply_orientation(Image& img, int orientation);

}  // namespace clipkit::image
