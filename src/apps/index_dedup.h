// Duplicates among millions of images, in bounded memory: the candidates come from the index
// (a range search of every row, chunk by chunk) and from the content
// hashes the embedding run recorded (a streamed pass over the rows' metadata); every candidate
// pair is verified on the exact embeddings (float64 dot product), and only the images of verified
// pairs are kept. find_duplicates() (dedup.h) then groups those members (union-find across all
// shards), exactly as for a small set. Memory: one chunk of vectors, 16 bytes per row for the
// hashes, and the members.
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
  // IVF lists visited per row; 0: the index's nprobe, at most 8 -- a near copy lies in one of its
  // row's few nearest lists, so far fewer lists are needed than for a top-10 search (the scale
  // benchmark checks that every planted pair is found).
  int nprobe = 0;
  int64_t chunk = 16384;   // rows per range search
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
// this path reads for the exact vectors.
bool can_dedup_from_embeddings(const index::Library& lib);

// The nprobe dedup_candidates uses.
int dedup_nprobe(const index::Library& lib, const IndexDedupOptions& o);

IndexDedupScan dedup_candidates(const index::Library& lib, const IndexDedupOptions& o, Progress* p = nullptr);

}  // namespace clipkit::apps
