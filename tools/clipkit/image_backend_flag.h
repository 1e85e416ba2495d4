// --image-backend pil|torchvision, taken by every command that preprocesses images.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "image/preprocess.h"

namespace clipkit::cli {

// Adds the option (default "pil") storing into `name`.
void add_image_backend_option(CLI::App& app, std::string& name);
// The parsed value as an ImageBackend.
image::ImageBackend image_backend(const std::string& name);

}  // namespace clipkit::cli
