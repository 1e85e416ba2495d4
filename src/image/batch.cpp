#include "image/batch.h"

#include <omp.h>

#include "core/error.h"

namespace clipkit::image {

size_t floats_per_image(const PreprocessConfig& c) {
  const auto [h, w] = c.output_size();
  if (h <= 0 || w <= 0)
    fail("do_resize and do_center_crop are both false: every image keeps its own size, and a batch needs one size");
  return static_cast<size_t>(3) * static_cast<size_t>(h) * static_cast<size_t>(w);
}

std::vector<std::string> preprocess_files(const std::vector<std::string>& paths, const PreprocessConfig& c,
                                          const DecodeOptions& o, float* out) {
  const size_t per = floats_per_image(c);
  std::vector<std::string> errors(paths.size());
  const int64_t n = static_cast<int64_t>(paths.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      load_and_preprocess(paths[i], c, out + static_cast<size_t>(i) * per, o);
    } catch (const Error& e) {
      errors[i] = e.what();
      if (errors[i].empty()) errors[i] = paths[i] + ": unknown error";
    } catch (const std::bad_alloc&) {
      errors[i] = paths[i] + ": out of memory";
    }
  }
  return errors;
}

}  // namespace clipkit::image
