// Exact similarity search over L2-normalized embeddings, for dedup and retrieval.
// range_pairs is blockwise brute force: B x B blocks of X X^T through oneDNN sgemm, a candidate
// wherever the fp32 product is within a small margin of the threshold, then every candidate
// re-scored in double. Nothing is left to an approximate neighbour graph: the result is exactly
// the set of pairs whose (double) cosine is >= threshold.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace clipkit::apps {

// Cosine similarity of two normalized rows, accumulated in double (the exact check of a candidate pair).
double dot_exact(const float* a, const float* b, int64_t D);

struct SimilarPair {
  int64_t i = 0, j = 0;  // i < j
  double score = 0;      // cosine, computed in double
};

// All pairs i < j of rows of X [N, D] with cosine >= threshold, sorted by (i, j).
std::vector<SimilarPair> range_pairs(const float* X, int64_t N, int64_t D, double threshold, int64_t block = 2048);

// All pairs (i in A, j in B) with cosine >= threshold, sorted by (i, j). (For an index of one split
// against another.)
std::vector<SimilarPair> range_pairs_between(const float* A, int64_t Na, const float* B, int64_t Nb, int64_t D,
                                             double threshold, int64_t block = 2048);

struct Hit {
  int64_t row = 0;
  double score = 0;
};
// The k rows of X most similar to q (best first, ties by row), among rows `keep(row)` accepts
// (null = all). Exact (one pass, scores in double).
std::vector<Hit> top_k(const float* X, int64_t N, int64_t D, const float* q, int64_t k,
                       const std::function<bool(int64_t)>& keep = nullptr);

}  // namespace clipkit::apps
