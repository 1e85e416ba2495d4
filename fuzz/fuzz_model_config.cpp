// config.json (model/config.h) and preprocessor_config.json (image/preprocess.h) of an untrusted
// checkpoint; a preprocessor config that loads also preprocesses a small image.
#include "core/error.h"
#include "core/json.h"
#include "fuzz_util.h"
#include "image/batch.h"
#include "image/preprocess.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = clipkit::fuzz::as_view(data, size);
  try {
    clipkit::model::ModelConfig::from_json(clipkit::parse_json(text, "config.json"), "config.json");
  } catch (const clipkit::Error&) {
  }
  try {
    auto c = clipkit::image::PreprocessConfig::from_json_text(std::string(text), "preprocessor_config.json");
    const auto [h, w] = c.output_size();
    if (h > 0 && w > 0 && int64_t{h} * w <= 256 * 256) {
      clipkit::image::Image img;
      img.width = 7 + static_cast<int>(size % 50);
      img.height = 5 + static_cast<int>(size % 37);
      img.rgb.assign(static_cast<size_t>(img.width) * img.height * 3, static_cast<uint8_t>(size));
      std::vector<float> out(clipkit::image::floats_per_image(c));
      clipkit::image::preprocess(img, c, out.data());
    }
  } catch (const clipkit::Error&) {
  }
  return 0;
}
