// Search latency of the library's approximate index at scale (default 1M vectors of dim 512):
// clustered unit vectors (a mixture like real embeddings), the structure choose_factory() picks,
// nprobe calibrated as `clipkit index build` does, then single-query latency p50/p99 and
// recall@10 against exact search. Prints one JSON object.
//   index_bench [N] [DIM] [QUERIES] [THREADS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "core/parallel.h"
#include "index/vector_index.h"

using namespace clipkit;
using clock_ = std::chrono::steady_clock;

static double secs(clock_::time_point a, clock_::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000000, d = argc > 2 ? std::atoll(argv[2]) : 512,
                nq = argc > 3 ? std::atoll(argv[3]) : 1000;
  set_num_threads(argc > 4 ? std::atoi(argv[4]) : 0);
  const int64_t nc = 4096, k = 10;
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> centers(static_cast<size_t>(nc * d));
  for (auto& c : centers) c = nd(g);
  auto make = [&](int64_t m, uint32_t seed) {
    std::vector<float> x(static_cast<size_t>(m * d));
    parallel_for(m, [&](int64_t b, int64_t e) {
      std::mt19937 r(seed + static_cast<uint32_t>(b));
      std::normal_distribution<float> z(0.f, 0.5f);
      std::uniform_int_distribution<int64_t> pick(0, nc - 1);
      for (int64_t i = b; i < e; ++i) {
        const int64_t c = pick(r);
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += std::pow(x[i * d + j] = centers[c * d + j] + z(r), 2);
        for (int64_t j = 0; j < d; ++j) x[i * d + j] /= static_cast<float>(std::sqrt(s));
      }
    });
    return x;
  };
  auto t0 = clock_::now();
  auto x = make(n, 7), q = make(nq, 99991);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  auto t1 = clock_::now();
  const std::string factory = index::choose_factory(n, d);
  auto v = index::VectorIndex::create(d, factory);
  v->add(x.data(), ids.data(), n);
  auto t2 = clock_::now();
  const auto p = v->calibrate(x.data(), ids.data(), n);
  auto t3 = clock_::now();
  // single-query latency, as the service searches: one OpenMP thread per request thread
  const int threads = num_threads();
  set_num_threads(1);
  std::vector<double> lat;
  std::vector<float> sc(static_cast<size_t>(nq * k));
  std::vector<int64_t> got(static_cast<size_t>(nq * k));
  for (int64_t i = 0; i < nq; ++i) {
    auto a = clock_::now();
    v->search(q.data() + i * d, 1, k, sc.data() + i * k, got.data() + i * k, p);
    lat.push_back(secs(a, clock_::now()) * 1e3);
  }
  std::sort(lat.begin(), lat.end());
  set_num_threads(threads);
  const int64_t nt = std::min<int64_t>(nq, 200);
  std::vector<int64_t> truth(static_cast<size_t>(nt * k));
  auto t4 = clock_::now();
  index::brute_force_search(x.data(), n, d, q.data(), nt, k, truth.data());
  auto t5 = clock_::now();
  int64_t hit = 0;
  for (int64_t i = 0; i < nt; ++i) {
    std::set<int64_t> w(truth.begin() + i * k, truth.begin() + (i + 1) * k);
    for (int64_t j = 0; j < k; ++j) hit += w.count(got[static_cast<size_t>(i * k + j)]);
  }
  std::printf(
      "{\"n\": %lld, \"dim\": %lld, \"factory\": \"%s\", \"nprobe\": %d, \"threads\": %d, \"queries\": %lld,"
      " \"data_s\": %.1f, \"build_s\": %.1f, \"calibrate_s\": %.1f, \"search_ms_p50\": %.3f, \"search_ms_p99\": %.3f,"
      " \"search_ms_mean\": %.3f, \"recall_at_10\": %.4f, \"exact_ms_per_query_batched\": %.2f}\n",
      static_cast<long long>(n), static_cast<long long>(d), factory.c_str(), p.nprobe, threads,
      static_cast<long long>(nq), secs(t0, t1), secs(t1, t2), secs(t2, t3), lat[lat.size() / 2],
      lat[std::min(lat.size() - 1, lat.size() * 99 / 100)], [&] {
        double s = 0;
        for (double l : lat) s += l;
        return s / static_cast<double>(lat.size());
      }(),
      static_cast<double>(hit) / static_cast<double>(nt * k), secs(t4, t5) * 1e3 / static_cast<double>(nt));
  return 0;
}
