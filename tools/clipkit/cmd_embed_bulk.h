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
  int64_t stop_after_shards = -1;  // hidden test hook
};
void add_bulk_flags(CLI::App& app, BulkFlags& f);

std::vector<pipeline::BulkItem> list_bulk_inputs(const BulkInputs& in);

// Embeds into out_dir (resuming), lists skipped files on stderr (json: and prints the summary as
// JSON on stdout). Returns kOk, kSkippedInputs, or kError when stopped early by the test hook.
int run_bulk_embed(const pipeline::Embedder& e, const BulkInputs& in, const std::string& out_dir, const BulkFlags& f,
                   const ComputeOptions& c, bool exif_transpose, bool json = false);

}  // namespace clipkit::cli
