#include "apps/index_dedup.h"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>

#include "apps/similarity.h"
#include "core/error.h"
#include "core/json.h"
#include "io/tar_reader.h"
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
  if (json_integer_or(b, "rows", -1) != lib.info().count) return false;  // changed since (index add/remove)
  std::error_code ec;
  return fs::exists(fs::path(b["embeddings"].get<std::string>()) / "manifest.json", ec);
}

IndexDedupScan dedup_candidates(const index::Library& lib, const IndexDedupOptions& o, Progress* p) {
  if (!can_dedup_from_embeddings(lib))
    fail("{}: this index does not name its embeddings folder (rebuild it with `clipkit index build`)", lib.info().dir);
  const std::string emb_dir = lib.info().build["embeddings"].get<std::string>();
  const auto shards = pipeline::read_manifest(emb_dir);
  const pipeline::EmbeddingRows rows(shards);
  const int64_t N = rows.rows(), D = rows.dim();
  if (N != json_integer_or(lib.info().build, "rows", -1))
    fail("{}: holds {} rows, but the index {} was built from {} -- rebuild the index", emb_dir, N, lib.info().dir,
         json_integer_or(lib.info().build, "rows", -1));
  IndexDedupScan out;
  out.rows = N;
  out.margin = o.margin >= 0 ? o.margin : 2 * json_number_or(lib.info().build, "score_error_max", 0.0, lib.info().dir + "/index.json build");
  if (o.nprobe < 1) fail("dedup: nprobe must be at least 1, got {}", o.nprobe);
  const double lo = o.threshold - out.margin;
  std::vector<std::pair<int64_t, int64_t>> cand;  // (row, row), row < row
  auto add_pairs = [&](const std::vector<SimilarPair>& ps, const std::vector<int64_t>& ia,
                       const std::vector<int64_t>& ib) {
    for (auto& pr : ps) {
      const int64_t a = ia[static_cast<size_t>(pr.i)], b = ib[static_cast<size_t>(pr.j)];
      if (a != b && a >= 0 && b >= 0) cand.push_back({std::min(a, b), std::max(a, b)});
    }
  };
  const faiss::Index* raw = lib.vectors().raw();
  const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(raw);
  if (!ivf) {  // no lists: every row against every row
    std::vector<float> x(static_cast<size_t>(N * D));
    rows.read(0, N, x.data());
    std::vector<int64_t> ids(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) ids[static_cast<size_t>(i)] = i;
    add_pairs(range_pairs(x.data(), N, D, lo), ids, ids);
    if (p) p->add(N);
  } else {
    const int64_t L = static_cast<int64_t>(ivf->nlist), Di = ivf->d;
    const int64_t probes = std::min<int64_t>(o.nprobe, L);
    auto decode = [&](int64_t l, std::vector<float>* v, std::vector<int64_t>* ids) {  // a list's vectors
      const size_t n = ivf->invlists->list_size(static_cast<size_t>(l));
      v->resize(n * static_cast<size_t>(Di));
      ids->resize(n);
      faiss::InvertedLists::ScopedIds li(ivf->invlists, static_cast<size_t>(l));
      for (size_t k = 0; k < n; ++k) {
        (*ids)[k] = li[k];
        ivf->reconstruct_from_offset(l, static_cast<int64_t>(k), v->data() + k * static_cast<size_t>(Di));
      }
    };
    // pass 1: which other lists each row probes (its nearest centroids after its own)
    struct Visit {
      int64_t list, from, offset;
    };
    std::vector<Visit> visits;
    std::vector<float> v, dis;
    std::vector<int64_t> ids, near;
    if (probes > 1)
      for (int64_t l = 0; l < L; ++l) {
        decode(l, &v, &ids);
        const int64_t n = static_cast<int64_t>(ids.size());
        if (n == 0) continue;
        near.resize(static_cast<size_t>(n * probes));
        dis.resize(near.size());
        ivf->quantizer->search(n, v.data(), probes, dis.data(), near.data());
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < probes; ++j)
            if (const int64_t m = near[static_cast<size_t>(k * probes + j)]; m >= 0 && m != l) visits.push_back({m, l, k});
      }
    std::sort(visits.begin(), visits.end(), [](const Visit& a, const Visit& b) {
      return std::tie(a.list, a.from, a.offset) < std::tie(b.list, b.from, b.offset);
    });
    // pass 2: each list against itself and its visitors
    std::vector<float> q, one(static_cast<size_t>(Di));
    std::vector<int64_t> qids;
    size_t vi = 0;
    for (int64_t l = 0; l < L; ++l) {
      decode(l, &v, &ids);
      const int64_t n = static_cast<int64_t>(ids.size());
      add_pairs(range_pairs(v.data(), n, Di, lo), ids, ids);
      q.clear();
      qids.clear();
      for (; vi < visits.size() && visits[vi].list == l; ++vi) {
        const auto& w = visits[vi];
        ivf->reconstruct_from_offset(w.from, w.offset, one.data());
        q.insert(q.end(), one.begin(), one.end());
        faiss::InvertedLists::ScopedIds li(ivf->invlists, static_cast<size_t>(w.from));
        qids.push_back(li[static_cast<size_t>(w.offset)]);
      }
      if (!qids.empty() && n > 0)
        add_pairs(range_pairs_between(q.data(), static_cast<int64_t>(qids.size()), v.data(), n, Di, lo), qids, ids);
      if (p) p->add(n);
    }
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  out.candidate_pairs = static_cast<int64_t>(cand.size());

  // every candidate on the exact vectors
  std::vector<int64_t> members;
  std::vector<float> x;
  for (size_t c0 = 0; c0 < cand.size(); c0 += 65536) {
    const size_t c1 = std::min(cand.size(), c0 + 65536);
    std::vector<int64_t> need;
    for (size_t c = c0; c < c1; ++c) need.push_back(cand[c].first), need.push_back(cand[c].second);
    std::sort(need.begin(), need.end());
    need.erase(std::unique(need.begin(), need.end()), need.end());
    x.resize(need.size() * static_cast<size_t>(D));
    rows.read_rows(need, x.data());
    auto at = [&](int64_t r) {
      return x.data() + (std::lower_bound(need.begin(), need.end(), r) - need.begin()) * D;
    };
    for (size_t c = c0; c < c1; ++c)
      if (dot64(at(cand[c].first), at(cand[c].second), D) >= o.threshold) {
        ++out.verified_pairs;
        members.push_back(cand[c].first);
        members.push_back(cand[c].second);
      }
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
        try {  // format, losslessness and age for the keep rule (only duplicate groups' members are read)
          describe_file_bytes(io::read_path_bytes(r.path), &it);
        } catch (const Error&) {  // gone since it was embedded: compared as recorded
        }
        out.scan.items.push_back(std::move(it));
        out.records.push_back(std::move(r));
      },
      &members);
  if (out.records.size() != members.size()) fail("{}: metadata rows are missing", emb_dir);
  return out;
}

}  // namespace clipkit::apps
