#include "image/encode.h"

#include <png.h>

#include <cstring>

#include "core/error.h"

namespace clipkit::image {

void write_png(const std::string& path, const Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    fail("{}: cannot write an empty or inconsistent {}x{} image", path, im.width, im.height);
  png_image pi;
  std::memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = static_cast<png_uint_32>(im.width);
  pi.height = static_cast<png_uint_32>(im.height);
  pi.format = PNG_FORMAT_RGB;
  // libpng's simplified API reports errors in the struct (no longjmp across our frames).
  if (!png_image_write_to_file(&pi, path.c_str(), 0, im.rgb.data(), 0, nullptr)) {
    std::string msg = pi.message;
    png_image_free(&pi);
    fail("{}: cannot write PNG: {}", path, msg);
  }
}

}  // namespace clipkit::image
