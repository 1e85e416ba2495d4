#include "image_backend_flag.h"

namespace clipkit::cli {

void add_image_backend_option(CLI::App& app, std::string& name) {
  app.add_option("--image-backend", name,
                 "which HF CLIPImageProcessor to reproduce: pil (transformers 4, the released checkpoints) or "
                 "torchvision (transformers 5's default)")
      ->capture_default_str()
      ->check(CLI::IsMember({"pil", "torchvision"}));
}

image::ImageBackend image_backend(const std::string& name) { return image::image_backend_from_name(name, "--image-backend"); }

}  // namespace clipkit::cli
