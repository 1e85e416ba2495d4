// Bulk embedding into shards, shared by `clipkit embed --folder/--coco/--shards` and `clipkit index`.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "pipeline/bulk_embed.h"

namespace clipkit::cli {

struct BulkInputs {
  std::string folder, coco, split, image_list;
  std::vector<std::string> images;
  bool any() const { return !folder.empty() || !coco.empty() || !image_list.empty() || !images.empty(); }
};

struct BulkFlags {
  int64_t shard_size = 10000;
  int decode_threads = 1;
  bool replace_other_runs = false;  // a work folder: shards of other inputs are replaced, not refused
  int64_t stop_after_shards = -1;  // hidden test hook
};
void add_bulk_flags(CLI::App& app, BulkFlags& f);

// The inputs; *dropped gets a line per kind of row a dataset loader left out, *dropped_rows their count.
std::vector<pipeline::BulkItem> list_bulk_inputs(const BulkInputs& in, std::vector<std::string>* dropped = nullptr,
                                                 int64_t* dropped_rows = nullptr);

// Embeds into out_dir (resuming), lists skipped files on stderr (json: and prints the summary as
// JSON on stdout). Returns kOk, kSkippedInputs, or kError when stopped early by the test hook.
int run_bulk_embed(const pipeline::Embedder& e, const BulkInputs& in, const std::string& out_dir, const BulkFlags& f,
                   const ComputeOptions& c, bool exif_transpose, bool json = false);

}  // namespace clipkit::cli
