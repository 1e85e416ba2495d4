#include "apps/thumbnail.h"

#include <algorithm>

#include "core/base64.h"
#include "core/error.h"
#include "image/encode.h"
#include "image/resample.h"
#include "io/tar_reader.h"

namespace clipkit::apps {

image::Image fit_within(const image::Image& img, int max_side) {
  const int m = std::max(img.width, img.height);
  if (m <= max_side || max_side <= 0) return img;
  return image::resized(img, std::max(1, static_cast<int>(int64_t(img.width) * max_side / m)),
                       std::max(1, static_cast<int>(int64_t(img.height) * max_side / m)), image::Resample::Bilinear);
}

std::string thumbnail_data_uri(const image::Image& img, int max_side, int quality) {
  auto jpg = image::encode_jpeg(fit_within(img, max_side), quality);
  return "data:image/jpeg;base64," + base64_encode(jpg.data(), jpg.size());
}

std::string thumbnail_data_uri(const std::string& path, int max_side, int quality) {
  const std::string bytes = io::read_path_bytes(path);  // a file, or a member of a .tar shard
  return thumbnail_data_uri(image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path),
                            max_side, quality);
}

}  // namespace clipkit::apps
