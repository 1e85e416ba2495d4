// Image deduplication: exact duplicates by content (hash, then byte-for-byte check), near
// duplicates by embedding similarity (exact blockwise range search, every pair verified in
// double), duplicate groups as connected components with a keep suggestion, and leakage across
// splits reported separately.
//
// The keep rule, in order (the report says which step decided each group):
//   1. a member of a protected (evaluation) split: leakage is removed from the training side;
//   2. lossless (PNG, BMP, lossless WebP) over lossy (JPEG, lossy WebP, GIF's 256 colours);
//   3. the larger original resolution: an upscaled copy counts at the resolution it was made from
//      (it holds no detail beyond it, see holds_no_detail_beyond), and loses to its source;
//   4. the older file (modification time), then the shorter path, then the first path.
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
#include "image/image.h"
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
  std::string format;     // "jpeg", "png", ... ("" = unknown)
  bool lossless = false;  // PNG, BMP, lossless WebP
  int64_t mtime = 0;      // modification time, seconds since 1970 (0 = unknown)
};

// Fills hash, bytes, format and lossless from a file's bytes, and mtime from the file.
void describe_file_bytes(const std::string& bytes, DedupItem* it);

// Does `big` hold any detail beyond a w x h version of itself? Compares the energy above w x h's
// Nyquist band (big minus big resized to w x h and back, bicubic) with the energy in the octave below
// it (the w x h version minus its half-size version, resized back). A copy upscaled from w x h has
// little above (measured on a photo and a generated scene: 0.08-0.09 for 2x and 1.5x bicubic
// upscales, 0.14-0.2 once saved as a q80/q70 JPEG); an image with real detail about as much as
// below (0.7-0.9; an image with a 1/f^3 spectrum, very soft, would sit near 0.5). True when the ratio
// is under 0.3. *ratio (optional) gets it (-1 when it cannot tell: flat image, or w x h not smaller
// than big).
bool holds_no_detail_beyond(const image::Image& big, int w, int h, double* ratio = nullptr);

// upscaled(big, small): item `big` holds no detail beyond item `small`'s resolution (false when
// unknown). files_upscale_probe decodes the items' files (each at most once) to answer.
using UpscaleProbe = std::function<bool(int64_t big, int64_t small)>;
UpscaleProbe files_upscale_probe(const std::vector<DedupItem>& items);

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
  std::string keep_reason;       // which step of the keep rule chose `keep`, in words
  std::vector<std::vector<int64_t>> identical;  // near groups: sets of byte-identical members
  std::vector<int64_t> upscaled;                // members that are upscaled copies of a smaller member
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

// `same_bytes(i, j)` confirms a hash match byte for byte (null: trust the hash); `upscaled` tells
// upscaled copies apart for the keep rule (null: resolution counts as it is).
// emb: [N, D] L2-normalized rows aligned with items.
DedupResult find_duplicates(const std::vector<DedupItem>& items, const float* emb, int64_t D, const DedupOptions& o,
                            const std::function<bool(int64_t, int64_t)>& same_bytes = nullptr,
                            const UpscaleProbe& upscaled = nullptr);

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

// {"groups": [{"kind", "members": [paths], "keep": path, "keep_reason", "min_similarity",
//              "identical": [[paths]], "details": [{"path", "format", "lossless", "width", "height",
//              "bytes", "upscaled"}]}],
//  "cross_split": [{"members": [...], "splits": [...], "kind", "min_similarity"}], "images": N, ...}
nlohmann::json dedup_report_json(const DedupResult& r, const std::vector<DedupItem>& items, double threshold);
// A self-contained HTML gallery (thumbnails as base64 data URIs) of at most max_groups groups:
// clicking an image flips it between keep and remove, and "Export removals" saves the list.
std::string dedup_report_html(const DedupResult& r, const std::vector<DedupItem>& items, double threshold,
                              int max_groups = 500, int thumb = 160);

}  // namespace clipkit::apps
