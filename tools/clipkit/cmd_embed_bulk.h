// Bulk embedding into shards, shared by `clipkit embed --folder/--coco/--data/--shards` and
// `clipkit index`. Under `mpirun -np N` every rank lists the same inputs and makes its share of
// the output shards (pipeline/bulk_embed.h); rank 0 then writes the one manifest.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "pipeline/bulk_embed.h"
#include "dist/comm.h"

namespace clipkit::cli {

struct BulkInputs {
  std::string folder, coco, split, image_list;
  std::string data;                 // WebDataset shards (braces, globs, "::")
  std::string caption_key = "txt";  // with data: "txt" or a field of KEY.json
  std::vector<std::string> images;
  bool any() const { return !folder.empty() || !coco.empty() || !image_list.empty() || !data.empty() || !images.empty(); }
};

struct BulkFlags {
  int64_t shard_size = 10000;
  int decode_threads = -1;  // auto
  bool replace_other_runs = false;  // a work folder: shards of other inputs are replaced, not refused
  int64_t stop_after_shards = -1;  // hidden test hook
  int kill_rank = -1;              // hidden test hook: this rank SIGKILLs itself ...
  int64_t kill_after_batches = 0;  // ... after this many batches
};
void add_bulk_flags(CLI::App& app, BulkFlags& f);
// --caption-key, for commands reading WebDataset shards.
void add_caption_key_flag(CLI::App& app, std::string& key);

// The inputs, listed the same way on every rank; problems of WebDataset shards are printed; *dropped
// gets a line per kind of row a dataset loader left out, *dropped_rows their count.
std::vector<pipeline::BulkItem> list_bulk_inputs(const BulkInputs& in, std::vector<std::string>* dropped = nullptr,
                                                 int64_t* dropped_rows = nullptr);

// Compute threads for a process: `requested`, or when 0 under mpirun, the cores divided among
// the ranks on this host (so N ranks on one machine do not oversubscribe it).
int threads_per_rank(int requested);

// Embeds into out_dir (resuming), each rank of `comm` its share; lists skipped files on stderr (json:
// and prints the summary as JSON on stdout). Returns kOk, kSkippedInputs, or kError when stopped
// early (test hook) or when a rank failed.
int run_bulk_embed(const pipeline::Embedder& e, const BulkInputs& in, const std::string& out_dir, const BulkFlags& f,
                   const ComputeOptions& c, bool exif_transpose, dist::Comm& comm, bool json = false);

}  // namespace clipkit::cli
