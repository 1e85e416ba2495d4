// HF-format checkpoint folders written by training: every tensor of the source checkpoint, with
// the trained ones replaced, plus config/tokenizer/preprocessor files, so HF loads it unchanged.
#pragma once
#include <map>
#include <string>

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

template <typename Fill>
void write_dir_atomic(const std::string& dir, Fill&& fill) {
  std::string tmp = dir + ".tmp";
  fill(tmp);
  rename_dir_atomic(tmp, dir);
}

}  // namespace clipkit::train
