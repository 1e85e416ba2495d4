// HF-format checkpoint folders written by training: every tensor of the source checkpoint, with
// the trained ones replaced, plus config/tokenizer/preprocessor files, so HF loads it unchanged.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace clipkit::train {

// Writes `dir` (created if needed); each file is written atomically.
void write_hf_checkpoint(const std::string& src_model_dir, const std::string& dir,
                         const std::map<std::string, Tensor>& replaced);

// Writes `dir` as a whole: built in a temporary sibling folder, then renamed into place, so a
// crash never leaves a half-written checkpoint under the final name. `fill` writes the files.
template <typename Fill>
void write_dir_atomic(const std::string& dir, Fill&& fill);

void rename_dir_atomic(const std::string& tmp, const std::string& dir);  // replaces an existing dir

// Training checkpoints: OUT/checkpoint-<step>/ holds the HF checkpoint with the trained tensors,
// optimizer.safetensors (the AdamW moments) and trainer_state.json (`state` + global_step).
// Written atomically; then, with save_total_limit N > 0, the oldest checkpoint-* folders beyond
// N are deleted (HF's rotation; the newest is always kept).
void save_checkpoint(const std::string& out, const std::string& model_dir, int64_t step,
                     const std::map<std::string, Tensor>& trained,
                     const std::vector<std::pair<std::string, Tensor>>& optimizer_state, nlohmann::json state,
                     int save_total_limit);
// The newest complete checkpoint-<step> folder in out, or "".
std::string latest_checkpoint(const std::string& out);
// The checkpoint folders of out by step, oldest first.
std::vector<std::pair<int64_t, std::string>> checkpoints(const std::string& out);

template <typename Fill>
void write_dir_atomic(const std::string& dir, Fill&& fill) {
  std::string tmp = dir + ".tmp";
  fill(tmp);
  rename_dir_atomic(tmp, dir);
}

}  // namespace clipkit::train
