// Random and streamed access to a finished embeddings folder (bulk_embed.h) without loading it:
// rows are numbered 0..rows-1 in manifest order (shard by shard), the ids an index built from the
// folder gives them.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/bulk_embed.h"

namespace clipkit::pipeline {

class EmbeddingRows {
 public:
  // Reads each shard's .npy header; throws Error naming a shard that is not float32 [rows, dim].
  explicit EmbeddingRows(const EmbeddingShards& s);
  int64_t rows() const { return first_.back(); }
  int64_t dim() const { return dim_; }
  int64_t shards() const { return static_cast<int64_t>(npy_.size()); }
  int64_t shard_first_row(int64_t shard) const { return first_[static_cast<size_t>(shard)]; }
  int64_t shard_of(int64_t row) const;

  // x [n, dim] = rows [first, first + n) (may span shards).
  void read(int64_t first, int64_t n, float* x) const;
  // x [rows.size(), dim] = the given rows, ascending.
  void read_rows(const std::vector<int64_t>& sorted_rows, float* x) const;

 private:
  std::vector<std::string> npy_;
  std::vector<size_t> offset_;   // data offset in each .npy
  std::vector<int64_t> first_;   // first row of each shard, then the total
  int64_t dim_ = 0;
};

// Calls fn(row, record) for each row's JSON, in order, reading the .jsonl files line by line.
// With `wanted` (ascending rows), only those rows are parsed.
void for_each_record(const EmbeddingShards& s, const std::function<void(int64_t, nlohmann::json&)>& fn,
                     const std::vector<int64_t>* wanted = nullptr);

}  // namespace clipkit::pipeline
