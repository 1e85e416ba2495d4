#include "apps/similarity.h"

#include <algorithm>
#include <omp.h>

#include "core/error.h"
#include "backend/cpu/gemm.h"

namespace clipkit::apps {
namespace {

// fp32 sgemm of unit vectors differs from the exact dot product by far less than this.
constexpr double kMargin = 1e-3;

// Candidates of one block product C [na, nb] (rows a0.., cols b0..), verified exactly.
void scan_block(const float* C, int64_t na, int64_t nb, int64_t a0, int64_t b0, bool upper_only, const float* A,
                const float* B, int64_t D, double threshold, std::vector<std::vector<SimilarPair>>& per_thread) {
  const float cut = static_cast<float>(threshold - kMargin);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t r = 0; r < na; ++r) {
    auto& out = per_thread[static_cast<size_t>(omp_get_thread_num())];
    const float* row = C + r * nb;
    for (int64_t c = 0; c < nb; ++c) {
      if (row[c] < cut) continue;
      const int64_t i = a0 + r, j = b0 + c;
      if (upper_only && j <= i) continue;
      double s = dot_exact(A + i * D, B + j * D, D);
      if (s >= threshold) out.push_back({i, j, s});
    }
  }
}

std::vector<SimilarPair> run(const float* A, int64_t Na, const float* B, int64_t Nb, int64_t D, double threshold,
                             int64_t block, bool self) {
  if (block <= 0) fail("range search: block size must be positive, got {}", block);
  std::vector<std::vector<SimilarPair>> per_thread(static_cast<size_t>(omp_get_max_threads()));
  std::vector<float> C(static_cast<size_t>(std::min(block, Na) * std::min(block, Nb)));
  for (int64_t a0 = 0; a0 < Na; a0 += block) {
    const int64_t na = std::min(block, Na - a0);
    for (int64_t b0 = self ? a0 : 0; b0 < Nb; b0 += block) {
      const int64_t nb = std::min(block, Nb - b0);
      // C [na, nb] = A[a0:] @ B[b0:]^T
      backend::cpu::sgemm(false, true, na, nb, D, 1.f, A + a0 * D, D, B + b0 * D, D, 0.f, C.data(), nb);
      scan_block(C.data(), na, nb, a0, b0, self && a0 == b0, A, B, D, threshold, per_thread);
    }
  }
  std::vector<SimilarPair> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end(), [](const SimilarPair& x, const SimilarPair& y) {
    return x.i != y.i ? x.i < y.i : x.j < y.j;
  });
  return all;
}

}  // namespace

double dot_exact(const float* a, const float* b, int64_t D) {
  double s = 0;
  for (int64_t d = 0; d < D; ++d) s += static_cast<double>(a[d]) * b[d];
  return s;
}

std::vector<SimilarPair> range_pairs(const float* X, int64_t N, int64_t D, double threshold, int64_t block) {
  return run(X, N, X, N, D, threshold, block, true);
}

std::vector<SimilarPair> range_pairs_between(const float* A, int64_t Na, const float* B, int64_t Nb, int64_t D,
                                             double threshold, int64_t block) {
  return run(A, Na, B, Nb, D, threshold, block, false);
}

std::vector<Hit> top_k(const float* X, int64_t N, int64_t D, const float* q, int64_t k,
                       const std::function<bool(int64_t)>& keep) {
  std::vector<Hit> hits;
  std::vector<double> s(static_cast<size_t>(N));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) s[static_cast<size_t>(i)] = dot_exact(X + i * D, q, D);
  for (int64_t i = 0; i < N; ++i)
    if (!keep || keep(i)) hits.push_back({i, s[static_cast<size_t>(i)]});
  auto better = [](const Hit& a, const Hit& b) { return a.score != b.score ? a.score > b.score : a.row < b.row; };
  const size_t kk = static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(k, static_cast<int64_t>(hits.size()))));
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(kk), hits.end(), better);
  hits.resize(kk);
  return hits;
}

}  // namespace clipkit::apps
