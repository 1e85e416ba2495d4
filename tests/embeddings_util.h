// Embeddings folders for index tests: clustered unit vectors written with EmbeddingsWriter.
#pragma once
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "pipeline/bulk_embed.h"

namespace clipkit::test {

inline pipeline::ModelIdentity synthetic_model(int64_t dim) {
  pipeline::ModelIdentity m;
  m.dir = "/models/synthetic";
  m.config_hash = "c0ffee";
  m.weights_hash = "beef";
  m.dim = dim;
  return m;
}

// n unit rows of dimension d around `clusters` random centres (deterministic for a seed).
inline std::vector<float> clustered_rows(int64_t n, int64_t d, int64_t clusters, uint32_t seed, float noise = 0.4f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> c(static_cast<size_t>(clusters * d)), x(static_cast<size_t>(n * d));
  for (auto& v : c) v = nd(g);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = static_cast<int64_t>(g() % static_cast<uint32_t>(clusters));
    double s = 0;
    for (int64_t j = 0; j < d; ++j) {
      float& v = x[static_cast<size_t>(i * d + j)];
      v = c[static_cast<size_t>(k * d + j)] + noise * nd(g) * std::sqrt(static_cast<float>(d)) / 4;
      s += double(v) * v;
    }
    for (int64_t j = 0; j < d; ++j) x[static_cast<size_t>(i * d + j)] /= static_cast<float>(std::sqrt(s));
  }
  return x;
}

// An embeddings folder of x [n, d]; row i is "/synthetic/img-<i>.jpg" with content hash `hash(i)`.
inline void write_embeddings(const std::string& dir, const std::vector<float>& x, int64_t d, int64_t shard_size,
                             uint64_t (*hash)(int64_t) = nullptr) {
  pipeline::EmbeddingsWriter w(dir, synthetic_model(d), d, shard_size);
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  std::vector<nlohmann::json> rows;
  for (int64_t i = 0; i < n; ++i) {
    nlohmann::json r = {{"path", "/synthetic/img-" + std::to_string(i) + ".jpg"},
                        {"relpath", "img-" + std::to_string(i) + ".jpg"},
                        {"split", i % 5 == 0 ? "val" : "train"}};
    if (hash) r["content_hash"] = fmt::format("{:016x}", hash(i));
    rows.push_back(std::move(r));
  }
  w.add(x.data(), n, rows);
  w.finish();
}

}  // namespace clipkit::test
