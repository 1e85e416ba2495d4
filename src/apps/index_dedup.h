// Duplicates among millions of images, in bounded memory.
//
// Near duplicates come from the index's inverted lists, which partition the vectors by their
// nearest centroid: a row's near copies lie in its own list or in one of the next nearest (its
// `nprobe` nearest lists). So each list is compared with itself and with the rows that probe it
// from other lists -- a range search per list, computed blockwise through sgemm on the vectors the
// list stores (decoded: exact for IVF-Flat, the codes' approximation for SQ/PQ, where candidates
// are taken from `threshold - margin`). Structures without lists compare all rows at once.
// Exact duplicates are equal content hashes, recorded by the embedding run and read in one
// streamed pass over the rows' metadata. Every candidate pair is verified on the exact embeddings
// (float64 dot product) and only the images of verified pairs are kept: find_duplicates() (dedup.h)
// then groups those members (union-find across all shards) exactly as for a small set. Memory: one
// list's vectors and its visitors, 16 bytes per row for the hashes and 24 per extra probe, and the
// members.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "apps/dedup.h"
#include "core/progress.h"
#include "index/library.h"

namespace clipkit::apps {

struct IndexDedupOptions {
  double threshold = kDefaultDedupThreshold;
  // Lists each row is compared with (its nearest first). A near copy sits in one of its row's
  // nearest lists, so far fewer are needed than for a top-10 search; the scale benchmark checks
  // that every planted pair is found at the default.
  int nprobe = 2;
  // Candidates are kept from `threshold - margin` (index scores of compressed codes are
  // approximate); < 0: twice the largest score error measured when the index was built.
  double margin = -1;
};

struct IndexDedupScan {
  ScanResult scan;                         // the members: items, exact embeddings [members, D]
  std::vector<index::ImageRecord> records;  // their records (id = row)
  int64_t rows = 0;                        // images in the index
  int64_t candidate_pairs = 0, verified_pairs = 0, hash_pairs = 0;
  double margin = 0;
};

// True when `lib` was built from an embeddings folder that is still there (shard_build.h), which
// this path reads for the exact vectors, and has not been changed since (index add/remove).
bool can_dedup_from_embeddings(const index::Library& lib);

IndexDedupScan dedup_candidates(const index::Library& lib, const IndexDedupOptions& o, Progress* p = nullptr);

}  // namespace clipkit::apps
