#include "apps/index_dedup.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "pipeline/embedding_rows.h"

namespace clipkit::apps {

namespace fs = std::filesystem;

namespace {

double dot64(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

uint64_t parse_hash(const nlohmann::json& j) {
  auto it = j.find("content_hash");
  if (it == j.end() || !it->is_string()) return 0;
  try {
    return std::stoull(it->get<std::string>(), nullptr, 16);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

bool can_dedup_from_embeddings(const index::Library& lib) {
  const auto& b = lib.info().build;
  if (!b.contains("embeddings") || !b["embeddings"].is_string()) return false;
  std::error_code ec;
  return fs::exists(fs::path(b["embeddings"].get<std::string>()) / "manifest.json", ec);
}

int dedup_nprobe(const index::Library& lib, const IndexDedupOptions& o) {
  return o.nprobe ? o.nprobe : std::min(lib.info().params.nprobe, 8);
}

IndexDedupScan dedup_candidates(const index::Library& lib, const IndexDedupOptions& o, Progress* p) {
  if (!can_dedup_from_embeddings(lib))
    fail("{}: this index does not name its embeddings folder (rebuild it with `clipkit index build`)", lib.info().dir);
  const std::string emb_dir = lib.info().build["embeddings"].get<std::string>();
  const auto shards = pipeline::read_manifest(emb_dir);
  const pipeline::EmbeddingRows rows(shards);
  const int64_t N = rows.rows(), D = rows.dim();
  if (N != lib.info().build.value("rows", int64_t{-1}))
    fail("{}: holds {} rows, but the index {} was built from {} -- rebuild the index", emb_dir, N, lib.info().dir,
         lib.info().build.value("rows", int64_t{-1}));
  IndexDedupScan out;
  out.rows = N;
  out.margin = o.margin >= 0 ? o.margin : 2 * lib.info().build.value("score_error_max", 0.0);
  index::SearchParams sp;
  sp.nprobe = dedup_nprobe(lib, o);
  const float lo = static_cast<float>(o.threshold - out.margin);
  std::vector<int64_t> members;

  // near duplicates: the index's candidates, verified on the exact vectors
  std::vector<float> x, y;
  for (int64_t a = 0; a < N; a += o.chunk) {
    const int64_t n = std::min(o.chunk, N - a);
    x.resize(static_cast<size_t>(n * D));
    rows.read(a, n, x.data());
    std::vector<std::pair<int64_t, int64_t>> cand;  // (row in chunk, other row)
    lib.vectors().range_search(x.data(), n, lo, sp, [&](int64_t i, int64_t id, float) {
      if (id != a + i && id >= 0) cand.push_back({i, id});
    });
    out.candidate_pairs += static_cast<int64_t>(cand.size());
    std::vector<int64_t> others;
    for (auto& c : cand) others.push_back(c.second);
    std::sort(others.begin(), others.end());
    others.erase(std::unique(others.begin(), others.end()), others.end());
    y.resize(others.size() * static_cast<size_t>(D));
    rows.read_rows(others, y.data());
    for (auto& [i, id] : cand) {
      const size_t k = static_cast<size_t>(std::lower_bound(others.begin(), others.end(), id) - others.begin());
      if (dot64(x.data() + i * D, y.data() + k * static_cast<size_t>(D), D) >= o.threshold) {
        ++out.verified_pairs;
        members.push_back(a + i);
        members.push_back(id);
      }
    }
    if (p) p->add(n);
  }

  // exact duplicates: equal content hashes (confirmed byte for byte later, by find_duplicates)
  std::vector<std::pair<uint64_t, int64_t>> hashes;
  hashes.reserve(static_cast<size_t>(N));
  pipeline::for_each_record(shards, [&](int64_t row, nlohmann::json& j) {
    if (uint64_t h = parse_hash(j)) hashes.push_back({h, row});
  });
  std::sort(hashes.begin(), hashes.end());
  for (size_t i = 0; i < hashes.size();) {
    size_t j = i;
    while (j < hashes.size() && hashes[j].first == hashes[i].first) ++j;
    if (j - i > 1) {
      out.hash_pairs += static_cast<int64_t>((j - i) * (j - i - 1) / 2);
      for (size_t k = i; k < j; ++k) members.push_back(hashes[k].second);
    }
    i = j;
  }
  std::vector<std::pair<uint64_t, int64_t>>().swap(hashes);

  // the members: records, items, exact vectors
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  out.scan.emb = Tensor::empty(DType::F32, {static_cast<int64_t>(members.size()), D});
  rows.read_rows(members, out.scan.emb.ptr<float>());
  pipeline::for_each_record(
      shards,
      [&](int64_t row, nlohmann::json& j) {
        index::ImageRecord r = index::ImageRecord::from_json(j);
        r.id = row;
        DedupItem it;
        it.path = r.path;
        it.split = r.split;
        it.width = r.width;
        it.height = r.height;
        it.bytes = r.bytes;
        it.hash = parse_hash(j);
        out.scan.items.push_back(std::move(it));
        out.records.push_back(std::move(r));
      },
      &members);
  if (out.records.size() != members.size()) fail("{}: metadata rows are missing", emb_dir);
  return out;
}

}  // namespace clipkit::apps
