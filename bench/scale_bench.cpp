// The scale path's figures (issue 19): indexes of millions of clustered 512-d vectors built from
// embedding shards in bounded memory, and near-duplicate search over a million vectors.
//
//   scale_bench gen DIR N [--planted P] [--dim D] [--seed S]
//       DIR/emb: an embeddings folder of N clustered unit vectors (100,000 rows per shard), written
//       in bounded memory; DIR/queries.npy: 1,000 held-out queries of the same distribution (not
//       indexed). --planted P: P near-duplicate pairs (cosine 0.96-0.995, DIR/planted.json).
//   scale_bench run OUT.json CMD...
//       runs CMD (a clipkit command), records wall time and the child's peak RSS (wait4).
//   scale_bench eval DIR INDEX [--threads T]
//       recall@10 of INDEX on the held-out queries against exact search (a streamed pass over
//       DIR/emb), p50/p99 latency with 1 and 8 concurrent queries (one thread each), index size.
//   scale_bench planted DIR REPORT.json
//       how many planted pairs `clipkit dedup` put in one group.
//
// The data: 16,384 clusters; a vector = centre (unit) + 0.5 x a point of its cluster's own random
// 16-dimensional subspace + 0.1 x isotropic noise, normalized. Like CLIP embeddings it has a low
// intrinsic dimension: nearest neighbours sit at cosine ~0.9, a cluster at ~0.8, the rest at ~0.
// Everything prints one JSON object on stdout.
#include <fcntl.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <faiss/utils/distances.h>

#include "core/error.h"
#include "core/parallel.h"
#include "index/library.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "pipeline/bulk_embed.h"
#include "pipeline/embedding_rows.h"

using namespace clipkit;
namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_ = std::chrono::steady_clock;

namespace {

constexpr int64_t kClusters = 16384, kRank = 16, kShard = 100000, kQueries = 1000;

double since(clock_::time_point t) { return std::chrono::duration<double>(clock_::now() - t).count(); }

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Generator {
  int64_t d;
  std::vector<float> centre, basis;  // [K, d], [K, r, d]
  explicit Generator(int64_t dim, uint64_t seed) : d(dim) {
    centre.resize(static_cast<size_t>(kClusters * d));
    basis.resize(static_cast<size_t>(kClusters * kRank * d));
    parallel_for(kClusters, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        std::mt19937_64 g(mix(seed * 1000003 + static_cast<uint64_t>(k)));
        std::normal_distribution<float> nd;
        float* c = centre.data() + k * d;
        double s = 0;
        for (int64_t j = 0; j < d; ++j) {
          c[j] = nd(g);
          s += double(c[j]) * c[j];
        }
        for (int64_t j = 0; j < d; ++j) c[j] /= static_cast<float>(std::sqrt(s));
        float* B = basis.data() + k * kRank * d;
        for (int64_t j = 0; j < kRank * d; ++j) B[j] = nd(g) / std::sqrt(static_cast<float>(d));
      }
    });
  }
  // row i of the stream with this seed
  void row(uint64_t seed, int64_t i, float* x) const {
    std::mt19937_64 g(mix(seed ^ mix(static_cast<uint64_t>(i))));
    std::normal_distribution<float> nd;
    const int64_t k = static_cast<int64_t>(g() % kClusters);
    const float* c = centre.data() + k * d;
    const float* B = basis.data() + k * kRank * d;
    float z[kRank];
    for (auto& v : z) v = nd(g) / std::sqrt(static_cast<float>(kRank));
    for (int64_t j = 0; j < d; ++j) x[j] = c[j] + 0.1f * nd(g) / std::sqrt(static_cast<float>(d));
    for (int64_t r = 0; r < kRank; ++r)
      for (int64_t j = 0; j < d; ++j) x[j] += 0.5f * z[r] * B[r * d + j];
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(x[j]) * x[j];
    for (int64_t j = 0; j < d; ++j) x[j] /= static_cast<float>(std::sqrt(s));
  }
};

// A near copy of x at cosine ~target (x unit): x + t * noise orthogonal to x, normalized.
void near_copy(const float* x, float* y, int64_t d, double cosine, std::mt19937_64& g) {
  std::normal_distribution<float> nd;
  double dot = 0, nn = 0;
  for (int64_t j = 0; j < d; ++j) y[j] = nd(g);
  for (int64_t j = 0; j < d; ++j) dot += double(y[j]) * x[j];
  for (int64_t j = 0; j < d; ++j) y[j] -= static_cast<float>(dot) * x[j];
  for (int64_t j = 0; j < d; ++j) nn += double(y[j]) * y[j];
  const double t = std::sqrt(1 / (cosine * cosine) - 1);  // |noise| = tan(angle)
  double s = 0;
  for (int64_t j = 0; j < d; ++j) {
    y[j] = x[j] + static_cast<float>(t / std::sqrt(nn)) * y[j];
    s += double(y[j]) * y[j];
  }
  for (int64_t j = 0; j < d; ++j) y[j] /= static_cast<float>(std::sqrt(s));
}

int gen(const std::string& dir, int64_t n, int64_t d, int64_t planted, uint64_t seed) {
  const auto t0 = clock_::now();
  fs::create_directories(dir);
  Generator G(d, seed);
  pipeline::ModelIdentity m;
  m.dir = "/synthetic/clustered-" + std::to_string(d);
  m.config_hash = fmt::format("{:016x}", seed);
  m.weights_hash = "synthetic";
  m.architecture = "synthetic";
  pipeline::EmbeddingsWriter w(dir + "/emb", m, d, kShard);
  // planted pairs: row a (random) gets a near copy at row b (random, a != b); rows are otherwise the stream
  std::map<int64_t, std::pair<int64_t, double>> copy_of;  // b -> (a, cosine)
  std::mt19937_64 pg(seed + 17);
  json pairs = json::array();
  std::set<int64_t> used;
  while (static_cast<int64_t>(copy_of.size()) < planted) {
    int64_t a = static_cast<int64_t>(pg() % static_cast<uint64_t>(n)), b = static_cast<int64_t>(pg() % static_cast<uint64_t>(n));
    if (a == b || used.count(a) || used.count(b)) continue;
    used.insert(a), used.insert(b);
    const double c = 0.96 + 0.035 * static_cast<double>(pg() % 1000) / 1000.0;
    copy_of[b] = {a, c};
    pairs.push_back({{"a", a}, {"b", b}, {"cosine", c}});
  }
  std::vector<float> x(static_cast<size_t>(kShard * d));
  std::vector<json> rows;
  for (int64_t s = 0; s < n; s += kShard) {
    const int64_t k = std::min(kShard, n - s);
    parallel_for(k, [&](int64_t b, int64_t e) {
      std::vector<float> src(static_cast<size_t>(d));
      for (int64_t i = b; i < e; ++i) {
        auto it = copy_of.find(s + i);
        if (it == copy_of.end()) {
          G.row(seed, s + i, x.data() + i * d);
        } else {
          G.row(seed, it->second.first, src.data());
          std::mt19937_64 g(mix(seed + static_cast<uint64_t>(s + i)));
          near_copy(src.data(), x.data() + i * d, d, it->second.second, g);
        }
      }
    });
    rows.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i)
      rows[static_cast<size_t>(i)] = {{"path", fmt::format("/synthetic/{:08d}.jpg", s + i)},
                                      {"relpath", fmt::format("{:08d}.jpg", s + i)}};
    w.add(x.data(), k, rows);
  }
  w.finish();
  Tensor q = Tensor::empty(DType::F32, {kQueries, d});
  for (int64_t i = 0; i < kQueries; ++i) G.row(seed + 999331, i, q.ptr<float>() + i * d);
  write_npy(dir + "/queries.npy", q);
  if (planted > 0) write_file_atomic(dir + "/planted.json", pairs.dump() + "\n");
  std::printf("%s\n", json{{"rows", n}, {"dim", d}, {"planted", planted}, {"seconds", since(t0)}}.dump().c_str());
  return 0;
}

int run(const std::string& out, std::vector<char*> argv) {
  argv.push_back(nullptr);
  const auto t0 = clock_::now();
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[0], argv.data());
    std::perror("exec");
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  const double secs = since(t0);
  json j = {{"command", [&] {
              std::string s;
              for (char* a : argv)
                if (a) s += std::string(s.empty() ? "" : " ") + a;
              return s;
            }()},
            {"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1},
            {"seconds", secs},
            {"peak_rss_bytes", static_cast<int64_t>(ru.ru_maxrss) * 1024},
            {"peak_rss_gib", static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0)}};
  write_file_atomic(out, j.dump(1) + "\n");
  std::printf("%s\n", j.dump().c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int64_t dir_bytes(const std::string& dir, const std::string& prefix) {
  int64_t b = 0;
  for (auto& e : fs::directory_iterator(dir))
    if (!e.is_symlink() && e.is_regular_file() && e.path().filename().string().starts_with(prefix))
      b += static_cast<int64_t>(e.file_size());
  return b;
}

int eval(const std::string& dir, const std::string& index_dir) {
  auto lib = index::Library::open(index_dir);
  Tensor q = read_npy(dir + "/queries.npy");
  const int64_t nq = q.dim(0), d = q.dim(1), k = 10;
  // exact top-10 over the whole folder, streamed
  auto shards = pipeline::read_manifest(dir + "/emb");
  pipeline::EmbeddingRows rows(shards);
  std::vector<float> best(static_cast<size_t>(nq * k), -1e30f), sc(static_cast<size_t>(nq * k));
  std::vector<int64_t> bid(static_cast<size_t>(nq * k), -1), id(static_cast<size_t>(nq * k));
  const auto te = clock_::now();
  std::vector<float> x;
  for (int64_t a = 0; a < rows.rows(); a += 262144) {
    const int64_t n = std::min<int64_t>(262144, rows.rows() - a);
    x.resize(static_cast<size_t>(n * d));
    rows.read(a, n, x.data());
    faiss::knn_inner_product(q.ptr<float>(), x.data(), static_cast<size_t>(d), static_cast<size_t>(nq),
                             static_cast<size_t>(n), static_cast<size_t>(k), sc.data(), id.data());
    for (int64_t i = 0; i < nq; ++i) {
      std::vector<std::pair<float, int64_t>> c;
      for (int64_t j = 0; j < k; ++j) {
        c.push_back({best[static_cast<size_t>(i * k + j)], bid[static_cast<size_t>(i * k + j)]});
        if (id[static_cast<size_t>(i * k + j)] >= 0) c.push_back({sc[static_cast<size_t>(i * k + j)], id[static_cast<size_t>(i * k + j)] + a});
      }
      std::partial_sort(c.begin(), c.begin() + k, c.end(), [](auto& u, auto& v) { return u.first > v.first; });
      for (int64_t j = 0; j < k; ++j) best[static_cast<size_t>(i * k + j)] = c[static_cast<size_t>(j)].first, bid[static_cast<size_t>(i * k + j)] = c[static_cast<size_t>(j)].second;
    }
  }
  const double exact_s = since(te);
  // the index, as configured (its chosen nprobe)
  std::vector<int64_t> got(static_cast<size_t>(nq * k));
  lib->vectors().search(q.ptr<float>(), nq, k, sc.data(), got.data(), lib->info().params);
  int64_t hit = 0;
  for (int64_t i = 0; i < nq; ++i) {
    std::set<int64_t> want(bid.begin() + i * k, bid.begin() + (i + 1) * k);
    for (int64_t j = 0; j < k; ++j) hit += want.count(got[static_cast<size_t>(i * k + j)]);
  }
  // latency: C concurrent clients, each one query at a time on one thread
  auto latency = [&](int clients) {
    std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
    std::atomic<int64_t> next{0};
    std::vector<std::thread> th;
    const auto t = clock_::now();
    for (int c = 0; c < clients; ++c)
      th.emplace_back([&, c] {
        omp_set_num_threads(1);
        std::vector<float> s(static_cast<size_t>(k));
        std::vector<int64_t> l(static_cast<size_t>(k));
        for (int64_t i; (i = next++) < nq;) {
          auto a = clock_::now();
          lib->vectors().search(q.ptr<float>() + i * d, 1, k, s.data(), l.data(), lib->info().params);
          lat[static_cast<size_t>(c)].push_back(since(a) * 1e3);
        }
      });
    for (auto& x2 : th) x2.join();
    const double wall = since(t);
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    return json{{"clients", clients},
                {"p50_ms", all[all.size() / 2]},
                {"p99_ms", all[std::min(all.size() - 1, all.size() * 99 / 100)]},
                {"queries_per_s", static_cast<double>(nq) / wall}};
  };
  latency(1);  // warm the caches (on-disk lists: the page cache)
  json out = {{"index", index_dir},
              {"rows", rows.rows()},
              {"factory", lib->info().factory},
              {"nprobe", lib->info().params.nprobe},
              {"heldout_queries", nq},
              {"recall_at_10", static_cast<double>(hit) / static_cast<double>(nq * k)},
              {"build_recall_at_10", lib->info().build.value("recall_at_10", 0.0)},
              {"index_files_bytes", dir_bytes(index_dir, "index.")},
              {"metadata_bytes", dir_bytes(index_dir, "meta.")},
              {"memory_bytes", lib->info().build.value("memory_bytes", int64_t{0})},
              {"disk_bytes", lib->info().build.value("disk_bytes", int64_t{0})},
              {"exact_search_seconds", exact_s},
              {"latency", {latency(1), latency(8)}},
              {"threads", num_threads()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int planted(const std::string& dir, const std::string& report) {
  auto pairs = json::parse(read_file(dir + "/planted.json"));
  auto r = json::parse(read_file(report));
  std::map<std::string, int64_t> group_of;
  int64_t g = 0;
  for (auto& grp : r["groups"]) {
    for (auto& m : grp["members"]) group_of[m.get<std::string>()] = g;
    ++g;
  }
  int64_t found = 0;
  for (auto& p : pairs) {
    auto a = group_of.find(fmt::format("/synthetic/{:08d}.jpg", p["a"].get<int64_t>()));
    auto b = group_of.find(fmt::format("/synthetic/{:08d}.jpg", p["b"].get<int64_t>()));
    found += a != group_of.end() && b != group_of.end() && a->second == b->second;
  }
  std::printf("%s\n", json{{"planted_pairs", pairs.size()}, {"found", found}, {"groups", g},
                           {"images", r["images"]}, {"near_pairs", r["summary"]["near_pairs"]}}
                          .dump()
                          .c_str());
  return found == static_cast<int64_t>(pairs.size()) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> a(argv + 1, argv + argc);
    auto flag = [&](const std::string& name, int64_t def) {
      for (size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == name) return static_cast<int64_t>(std::stoll(a[i + 1]));
      return def;
    };
    if (a.size() >= 3 && a[0] == "gen")
      return gen(a[1], std::stoll(a[2]), flag("--dim", 512), flag("--planted", 0), static_cast<uint64_t>(flag("--seed", 1)));
    if (a.size() >= 3 && a[0] == "run") return run(a[1], std::vector<char*>(argv + 3, argv + argc));
    if (a.size() >= 3 && a[0] == "eval") {
      set_num_threads(static_cast<int>(flag("--threads", 0)));
      return eval(a[1], a[2]);
    }
    if (a.size() >= 3 && a[0] == "planted") return planted(a[1], a[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale_bench: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: scale_bench gen DIR N [--planted P] [--dim D] | run OUT.json CMD... | eval DIR INDEX | "
                       "planted DIR REPORT.json\n");
  return 2;
}
