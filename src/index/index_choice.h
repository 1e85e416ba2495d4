// Choosing an index structure for a memory budget, the way autofaiss does: estimate each
// candidate's size from its codes, take the best codes that fit, then choose the search setting
// (IVF nprobe) from measurements on held-out queries.
//
// Candidates, best first, for n vectors of dimension d:
//   n <= 50,000            IDMap,Flat                     exact                 4d + 8 bytes/vector
//   otherwise              IVF<L2>,Flat                   exact codes           4d + 8
//                          IVF<L4>,SQ8                    8-bit scalars         d + 8
//                          OPQ<m>,IVF<L4>,PQ<m>           m = d/2, d/4, ... d/32 bytes (m divides d), + 8
// L2 = choose_factory's list count (about 2 sqrt(n)); L4 = a power of two near 4 sqrt(n) (at
// least 256, at most 65536). Each estimate adds the coarse centroids (L * d * 4) and codebooks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace clipkit::index {

struct IndexChoice {
  std::string factory;
  int64_t code_bytes = 0;     // bytes per vector in the lists (codes + 8-byte id)
  int64_t memory_bytes = 0;   // estimated size of the whole index
  int64_t nlist = 0;          // 0: not an IVF
  std::string reason;         // "the largest codes within 4 GiB" ...
};

// The candidates for n x d, best codes first, with their estimated sizes.
std::vector<IndexChoice> index_candidates(int64_t n, int64_t d);
// The first candidate whose estimate fits max_bytes. Throws Error naming the smallest estimate
// when none fits.
IndexChoice choose_index(int64_t n, int64_t d, int64_t max_bytes);

// "8G", "512M", "1.5GiB", "100000" (bytes) -> bytes. Throws Error on anything else.
int64_t parse_size(const std::string& s);
std::string format_size(int64_t bytes);  // "1.36 GiB"

// One point of an nprobe sweep on held-out queries.
struct ProbePoint {
  int nprobe = 0;
  double recall = 0;      // recall@10 against exact search
  double p50_ms = 0, p99_ms = 0;  // single-thread latency per query
  double score_error = 0;         // largest |index score - exact score| among neighbours found
};
// The setting to keep from a sweep (ascending nprobe):
//   max_query_ms > 0: the best recall among points with p50 <= max_query_ms (the smallest nprobe
//                     within 0.001 of it); when none is fast enough, the fastest point.
//   otherwise:        the smallest nprobe with recall >= target_recall, else the best recall.
ProbePoint pick_nprobe(const std::vector<ProbePoint>& sweep, double max_query_ms, double target_recall);
// nprobe values to try: 1, 2, 4, 8, 12, 16, 24, 32, 48, ... up to nlist.
std::vector<int> nprobe_ladder(int64_t nlist);

}  // namespace clipkit::index
