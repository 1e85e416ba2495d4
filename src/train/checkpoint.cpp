#include "train/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "pipeline/processor_files.h"

namespace clipkit::train {
namespace fs = std::filesystem;

void write_hf_checkpoint(const std::string& src, const std::string& dir, const std::map<std::string, Tensor>& replaced) {
  fs::create_directories(dir);
  Checkpoint ck(src);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : ck.tensors()) {
    auto it = replaced.find(name);
    if (it == replaced.end()) {
      out.emplace_back(name, t);
      continue;
    }
    if (it->second.shape != t.shape && !(t.shape.empty() && it->second.numel() == 1))
      fail("internal error: trained tensor {} has shape {}, checkpoint {}", name, shape_str(it->second.shape), shape_str(t.shape));
    Tensor r = it->second;
    r.shape = t.shape;
    out.emplace_back(name, r);
  }
  for (auto& [name, t] : replaced)
    if (!ck.has(name)) out.emplace_back(name, t);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), out, {{"format", "pt"}});
  for (const char* f : {"config.json", "preprocessor_config.json"}) {
    fs::path p = fs::path(src) / f;
    if (fs::exists(p)) write_file_atomic((fs::path(dir) / f).string(), read_file(p.string()));
  }
  try {
    pipeline::copy_tokenizer_files(src, dir);
  } catch (const Error&) {
    // a model folder without tokenizer files stays without them
  }
}

void rename_dir_atomic(const std::string& tmp, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir)) {
    std::string old = dir + ".old";
    fs::remove_all(old, ec);
    fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, dir);
  }
}

}  // namespace clipkit::train
