#include "train/checkpoint.h"

#include <algorithm>
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

void save_checkpoint(const std::string& out, const std::string& model_dir, int64_t step,
                     const std::map<std::string, Tensor>& trained,
                     const std::vector<std::pair<std::string, Tensor>>& optimizer_state, nlohmann::json state,
                     int save_total_limit) {
  write_dir_atomic((fs::path(out) / ("checkpoint-" + std::to_string(step))).string(), [&](const std::string& tmp) {
    write_hf_checkpoint(model_dir, tmp, trained);
    write_safetensors(tmp + "/optimizer.safetensors", optimizer_state, {{"step", std::to_string(step)}});
    state["global_step"] = step;
    write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
  });
  if (save_total_limit <= 0) return;
  auto all = checkpoints(out);
  for (size_t i = 0; i + static_cast<size_t>(save_total_limit) < all.size(); ++i) fs::remove_all(all[i].second);
}

std::vector<std::pair<int64_t, std::string>> checkpoints(const std::string& out) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(out)) return found;
  for (auto& e : fs::directory_iterator(out)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("checkpoint-", 0) != 0 || n.find_first_not_of("0123456789", 11) != std::string::npos ||
        n.size() == 11 || !fs::exists(e.path() / "trainer_state.json"))
      continue;
    found.emplace_back(std::stoll(n.substr(11)), e.path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string latest_checkpoint(const std::string& out) {
  auto all = checkpoints(out);
  return all.empty() ? "" : all.back().second;
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
