// A copy of a test model folder with its config.json edited (the weights file is linked), for
// tests of how a config setting is honoured or refused.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace clipkit::model::testing {

// tests/data/models/<model> with `edit` applied to its config, in a temp folder named by `tag`.
inline std::string edited_copy(const std::string& model, const std::string& tag,
                               const std::function<void(nlohmann::json&)>& edit) {
  namespace fs = std::filesystem;
  const fs::path src = test::data_path("models/" + model);
  const fs::path dir = fs::temp_directory_path() / ("clipkit_edited_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::json cfg;
  std::ifstream(src / "config.json") >> cfg;
  edit(cfg);
  std::ofstream(dir / "config.json") << cfg.dump(2);
  fs::remove(dir / "model.safetensors");
  fs::create_symlink(fs::absolute(src / "model.safetensors"), dir / "model.safetensors");
  return dir.string();
}

}  // namespace clipkit::model::testing
