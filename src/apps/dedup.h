// Image deduplication: exact duplicates by content (hash, then byte-for-byte check), near
// duplicates by embedding similarity (exact blockwise range search, every pair verified in
// double), duplicate groups as connected components with a keep suggestion, and leakage across
// splits reported separately.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/encoder.h"
#include "apps/similarity.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/tensor.h"
#include "pipeline/embedder.h"

namespace clipkit::apps {

// Default near-duplicate cosine threshold, meant for trained CLIP models (ViT-B/32 and up): resized,
// recompressed, flipped and lightly cropped copies sit above it, distinct photos of one scene below.
constexpr double kDefaultDedupThreshold = 0.95;

struct DedupItem {
  std::string path;
  std::string split;  // "" without --split
  uint64_t hash = 0;  // content hash of the file's bytes (0 = unknown: never an exact duplicate)
  int64_t bytes = 0;
  int width = 0, height = 0;
};

struct DedupOptions {
  double threshold = kDefaultDedupThreshold;
  // Splits whose members are kept in preference to others in the same group (eval data is what
  // leakage spoils, so the training copy is the one to drop).
  std::vector<std::string> protected_splits = {"val", "validation", "test", "eval", "dev"};
  int64_t block = 2048;  // range-search block size
};

struct DupGroup {
  std::string kind;              // "exact" (all members byte-identical) | "near"
  std::vector<int64_t> members;  // item indices, ascending
  int64_t keep = -1;             // suggested item to keep; the others are suggested removals
  double min_similarity = 1;     // lowest cosine between any two members (exact pairs count 1)
};

struct CrossSplit {
  std::string kind;
  std::vector<int64_t> members;     // item indices of one group that spans splits
  std::vector<std::string> splits;  // the split of each member (parallel to members)
  double min_similarity = 1;
};

struct DedupResult {
  int64_t images = 0;
  int64_t exact_pairs = 0;          // byte-identical pairs
  std::vector<SimilarPair> near;    // verified pairs with cosine >= threshold (includes exact copies)
  std::vector<DupGroup> groups;     // sorted by first member
  std::vector<CrossSplit> cross_split;
  std::vector<int64_t> removals() const;  // every member but the keep, over all groups, ascending
};

// `same_bytes(i, j)` confirms a hash match byte for byte (null: trust the hash).
// emb: [N, D] L2-normalized rows aligned with items.
DedupResult find_duplicates(const std::vector<DedupItem>& items, const float* emb, int64_t D, const DedupOptions& o,
                            const std::function<bool(int64_t, int64_t)>& same_bytes = nullptr);

// The content hash of core/hash.h (not cryptographic: matches are confirmed byte for byte).
using clipkit::content_hash;
// Byte-for-byte equality of two files (or shard members, see io::read_path_bytes).
bool files_equal(const std::string& a, const std::string& b);

// Image files under dir (recursive; by extension: jpg jpeg png webp gif bmp), sorted.
std::vector<std::string> list_image_files(const std::string& dir);

struct ScanInput {
  std::string path, split;
  int64_t offset = -1, size = -1;  // a member of a WebDataset shard: where its bytes are (path = SHARD/MEMBER)
};
struct ScanResult {
  std::vector<DedupItem> items;  // the readable inputs, in input order
  Tensor emb;                    // [items, D]
  std::vector<pipeline::SkippedInput> skipped;
};
// Reads, hashes, decodes (threaded) and embeds the files in chunks of `chunk` images.
ScanResult scan_images(const std::vector<ScanInput>& inputs, const Encoder& enc, int chunk = 64,
                       Progress* p = nullptr);

// {"groups": [{"kind", "members": [paths], "keep": path, "min_similarity"}],
//  "cross_split": [{"members": [...], "splits": [...], "kind", "min_similarity"}], "images": N, ...}
nlohmann::json dedup_report_json(const DedupResult& r, const std::vector<DedupItem>& items, double threshold);
// A self-contained HTML gallery (thumbnails as base64 data URIs) of at most max_groups groups.
std::string dedup_report_html(const DedupResult& r, const std::vector<DedupItem>& items, double threshold,
                              int max_groups = 500, int thumb = 160);

}  // namespace clipkit::apps
