// Building an index from an embeddings folder (pipeline/bulk_embed.h) without holding its vectors:
// train on a sample, add the rows in chunks, measure recall on held-out queries, choose nprobe,
// write the library (library.h). Several processes (ranks) can share the adding and one merges.
//
// Rows keep their number in the embeddings folder as id (manifest order, embedding_rows.h). The
// rows are cut into parts of equal size (`part_rows`, at least one per rank); part p is added by
// rank p * ranks / parts, each into its own copy of the trained structure, saved under
// INDEX/shard-build/; rank 0 then merges the parts in order, so every inverted list holds its
// entries in row order whatever the number of ranks: the index equals a one-process build (for a
// fixed thread count, which FAISS training results depend on). Finished parts survive an
// interruption: the same command resumes.
//
// Recall@10 is measured on `heldout` rows spread over the data, each searched without itself
// (exact top-10 of the other rows, from a pass made while adding). The nprobe kept is the best
// recall within --max-query-ms (single-thread p50 latency), or without a time budget the smallest
// reaching `target_recall` (index_choice.h).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/progress.h"
#include "index/index_choice.h"
#include "index/vector_index.h"
#include "pipeline/bulk_embed.h"

namespace clipkit::index {

struct ShardBuildOptions {
  std::string factory;                          // "" = choose_index(rows, dim, max_memory)
  int64_t max_memory = int64_t{16} << 30;       // autofaiss's default budget
  bool on_disk = false;                         // IVF lists in a file read through mmap
  double max_query_ms = 0;                      // 0: no latency budget (smallest nprobe reaching target_recall)
  double target_recall = 0.95;
  int nprobe = 0;                               // > 0: keep this nprobe (still measured)
  int64_t heldout = 1000;                       // recall queries (capped at rows / 2)
  int64_t train_rows = 0;                       // 0: 64 per IVF list, at least 65,536, at most 1,048,576
  int64_t part_rows = 1'000'000;
  int64_t chunk_rows = 65536;
  bool overwrite = false;
  int rank = 0, ranks = 1;
  int64_t stop_after_parts = -1;  // test hook: stop (as if killed) after adding this many parts in this run
  // Collective agreement: every rank calls it at the same points with whether it succeeded and
  // gets whether all did (null: one process).
  std::function<bool(bool)> all_ok;
};

struct ShardBuildReport {
  int64_t rows = 0, parts = 0, parts_resumed = 0, heldout = 0;
  bool complete = false;         // the library was written (false: stopped early by the test hook)
  int64_t duplicate_paths = 0;   // rows whose path an earlier row has: indexed without metadata (never returned)
  IndexChoice choice;            // the structure (factory, estimated size, why)
  SearchParams params;
  ProbePoint chosen;             // recall and latency at the chosen nprobe
  std::vector<ProbePoint> sweep;
  int64_t memory_bytes = 0, disk_bytes = 0;
  double score_error_max = 0;    // largest |index score - exact score| among found neighbors
  double seconds_train = 0, seconds_add = 0, seconds_merge = 0, seconds_total = 0;
  nlohmann::json to_json() const;  // what index.json keeps as "build"
};

// Builds (or, with o.overwrite, rebuilds) the library at index_dir from the finished embeddings
// folder emb_dir. Rank 0 returns the report of the whole build; other ranks return theirs (parts).
ShardBuildReport build_index_from_embeddings(const std::string& index_dir, const std::string& emb_dir,
                                             const pipeline::ModelIdentity& model, const ShardBuildOptions& o,
                                             Progress* p = nullptr);

// recall@10 and latency of `v` over held-out queries q [m, D] (rows qid, searched without
// themselves) against exact neighbours truth / truth_scores [m, 11] (best first, self included
// when it ranks), for each nprobe of the ladder until the budget or target is met.
std::vector<ProbePoint> sweep_nprobe(const VectorIndex& v, const float* q, const int64_t* qid, int64_t m,
                                     const int64_t* truth, const float* truth_scores, double max_query_ms,
                                     double target_recall, int fixed_nprobe);

}  // namespace clipkit::index
