#include "index/shard_build.h"

#include <faiss/IVFlib.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <filesystem>

#include "core/error.h"
#include "core/hash.h"
#include "core/parallel.h"
#include "index/library.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "pipeline/embedding_rows.h"

namespace clipkit::index {

namespace fs = std::filesystem;
using clock_ = std::chrono::steady_clock;

namespace {

constexpr int64_t kTop = 10, kK = kTop + 1;  // recall@10, plus the query itself

double since(clock_::time_point t) { return std::chrono::duration<double>(clock_::now() - t).count(); }

struct Plan {
  int64_t n = 0, d = 0;
  IndexChoice choice;
  std::vector<int64_t> part_begin;  // parts + 1 boundaries
  std::vector<int64_t> train, queries;
  std::string key;
  int64_t parts() const { return static_cast<int64_t>(part_begin.size()) - 1; }
  int rank_of(int64_t p, int ranks) const { return static_cast<int>(p * ranks / parts()); }
};

Plan make_plan(const pipeline::EmbeddingRows& rows, const std::string& manifest_text, const ShardBuildOptions& o) {
  Plan pl;
  pl.n = rows.rows();
  pl.d = rows.dim();
  if (pl.n == 0) fail("the embeddings folder holds no rows: nothing to index");
  if (o.factory.empty()) {
    pl.choice = choose_index(pl.n, pl.d, o.max_memory);
  } else {
    pl.choice.factory = o.factory;
    pl.choice.reason = "given";
  }
  auto probe = VectorIndex::create(pl.d, pl.choice.factory);  // validates the string; tells nlist
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(probe->raw())) pl.choice.nlist = static_cast<int64_t>(ivf->nlist);
  if (o.on_disk && pl.choice.nlist == 0)
    fail("{}: only IVF structures keep their lists on disk (--on-disk)", pl.choice.factory);
  if (pl.choice.nlist > pl.n)
    fail("{} needs at least {} vectors to train, the embeddings hold {}", pl.choice.factory, pl.choice.nlist, pl.n);
  const int64_t parts = std::min(pl.n, std::max<int64_t>(o.ranks, (pl.n + o.part_rows - 1) / std::max<int64_t>(1, o.part_rows)));
  for (int64_t p = 0; p <= parts; ++p) pl.part_begin.push_back(p * pl.n / parts);
  if (probe->needs_training()) {
    const int64_t t = std::min(pl.n, o.train_rows > 0 ? o.train_rows
                                                      : std::clamp<int64_t>(64 * pl.choice.nlist, 65536, int64_t{1} << 20));
    for (int64_t i = 0; i < t; ++i) pl.train.push_back(i * pl.n / t);
  }
  const int64_t m = std::min(o.heldout, pl.n / 2);
  for (int64_t i = 0; i < m; ++i) pl.queries.push_back((2 * i + 1) * pl.n / (2 * m));
  Fnv1a h;
  h.add(manifest_text);
  h.add(pl.choice.factory);
  h.add_pod(o.on_disk);
  h.add_pod(o.chunk_rows);
  for (auto v : {pl.part_begin, pl.train, pl.queries})
    for (auto x : v) h.add_pod(x);
  pl.key = h.hex();
  return pl;
}

std::string part_name(int64_t p, const char* ext) { return fmt::format("part-{:05d}.{}", p, ext); }

// Keeps the best kK (score, id) of each query row, merging candidates in.
void merge_top(float* sc, int64_t* id, const float* s2, const int64_t* i2, int64_t m) {
  std::vector<std::pair<float, int64_t>> c;
  for (int64_t q = 0; q < m; ++q) {
    c.clear();
    for (int64_t j = 0; j < kK; ++j) {
      if (id[q * kK + j] >= 0) c.push_back({sc[q * kK + j], id[q * kK + j]});
      if (i2[q * kK + j] >= 0) c.push_back({s2[q * kK + j], i2[q * kK + j]});
    }
    std::sort(c.begin(), c.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    for (int64_t j = 0; j < kK; ++j) {
      const bool has = j < static_cast<int64_t>(c.size());
      sc[q * kK + j] = has ? c[static_cast<size_t>(j)].first : -std::numeric_limits<float>::infinity();
      id[q * kK + j] = has ? c[static_cast<size_t>(j)].second : -1;
    }
  }
}

// The first `k` of a result row, without the query's own id.
std::vector<int64_t> without_self(const int64_t* row, int64_t self, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t j = 0; j < kK && static_cast<int64_t>(out.size()) < k; ++j)
    if (row[j] >= 0 && row[j] != self) out.push_back(row[j]);
  return out;
}

// Runs `step` on this rank, then agrees with the others: throws when any rank failed.
void step_all(const ShardBuildOptions& o, const std::string& what, const std::function<void()>& step) {
  bool ok = true;
  std::string err;
  try {
    step();
  } catch (const std::exception& e) {
    ok = false;
    err = e.what();
  }
  const bool all = o.all_ok ? o.all_ok(ok) : ok;
  if (!ok) throw Error(err);
  if (!all) fail("{}: another rank failed (its message is above); run the same command again to resume", what);
}

}  // namespace

nlohmann::json ShardBuildReport::to_json() const {
  nlohmann::json sw = nlohmann::json::array();
  for (auto& p : sweep)
    sw.push_back({{"nprobe", p.nprobe}, {"recall_at_10", p.recall}, {"p50_ms", p.p50_ms}, {"p99_ms", p.p99_ms}});
  return {{"rows", rows},
          {"parts", parts},
          {"factory", choice.factory},
          {"why", choice.reason},
          {"estimated_bytes", choice.memory_bytes},
          {"memory_bytes", memory_bytes},
          {"disk_bytes", disk_bytes},
          {"on_disk", disk_bytes > 0},
          {"nprobe", params.nprobe},
          {"recall_at_10", chosen.recall},
          {"heldout_queries", heldout},
          {"duplicate_paths", duplicate_paths},
          {"query_ms_p50", chosen.p50_ms},
          {"query_ms_p99", chosen.p99_ms},
          {"score_error_max", score_error_max},
          {"sweep", sw},
          {"seconds", {{"train", seconds_train}, {"add", seconds_add}, {"merge", seconds_merge}, {"total", seconds_total}}}};
}

std::vector<ProbePoint> sweep_nprobe(const VectorIndex& v, const float* q, const int64_t* qid, int64_t m,
                                     const int64_t* truth, const float* truth_scores, double max_query_ms,
                                     double target_recall, int fixed_nprobe) {
  std::vector<ProbePoint> out;
  if (m == 0) return out;
  const int64_t D = v.dim(), k = std::min<int64_t>(kTop, v.size() - 1);
  auto* ivf = faiss::ivflib::try_extract_index_ivf(v.raw());
  std::vector<int> ladder = fixed_nprobe > 0 ? std::vector<int>{fixed_nprobe}
                            : ivf           ? nprobe_ladder(static_cast<int64_t>(ivf->nlist))
                                            : std::vector<int>{0};
  std::vector<float> sc(static_cast<size_t>(m * kK));
  std::vector<int64_t> ids(static_cast<size_t>(m * kK));
  const int64_t timed = std::min<int64_t>(m, 200);
  for (int np : ladder) {
    SearchParams sp;
    sp.nprobe = np;
    v.search(q, m, kK, sc.data(), ids.data(), sp);
    ProbePoint pt;
    pt.nprobe = np;
    int64_t hit = 0, total = 0;
    for (int64_t i = 0; i < m; ++i) {
      auto want = without_self(truth + i * kK, qid[i], k), got = without_self(ids.data() + i * kK, qid[i], k);
      for (auto g : got) hit += std::find(want.begin(), want.end(), g) != want.end();
      total += static_cast<int64_t>(want.size());
      for (int64_t j = 0; j < kK; ++j)  // how far the index's scores are from the exact ones
        for (int64_t t = 0; t < kK; ++t)
          if (ids[static_cast<size_t>(i * kK + j)] >= 0 && ids[static_cast<size_t>(i * kK + j)] == truth[i * kK + t])
            pt.score_error = std::max(pt.score_error, std::fabs(static_cast<double>(sc[static_cast<size_t>(i * kK + j)]) -
                                                                truth_scores[i * kK + t]));
    }
    pt.recall = total ? static_cast<double>(hit) / static_cast<double>(total) : 1.0;
    // latency as a server thread sees it: one query at a time, one thread
    const int threads = num_threads();
    omp_set_num_threads(1);
    std::vector<double> lat;
    std::vector<float> s1(kK);
    std::vector<int64_t> i1(kK);
    for (int64_t i = 0; i < timed; ++i) {
      auto t = clock_::now();
      v.search(q + i * D, 1, kK, s1.data(), i1.data(), sp);
      lat.push_back(since(t) * 1e3);
    }
    set_num_threads(threads);
    std::sort(lat.begin(), lat.end());
    pt.p50_ms = lat[lat.size() / 2];
    pt.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
    out.push_back(pt);
    if (fixed_nprobe > 0 || pt.recall >= 0.99995) break;
    if (max_query_ms > 0 ? pt.p50_ms > max_query_ms : pt.recall >= target_recall) break;
  }
  return out;
}

ShardBuildReport build_index_from_embeddings(const std::string& index_dir, const std::string& emb_dir,
                                             const pipeline::ModelIdentity& model, const ShardBuildOptions& o,
                                             Progress* progress) {
  const auto t0 = clock_::now();
  if (o.ranks < 1 || o.rank < 0 || o.rank >= o.ranks) fail("rank {} of {} is not a valid process number", o.rank, o.ranks);
  if (o.chunk_rows <= 0 || o.part_rows <= 0) fail("chunk and part sizes must be positive");
  if (Library::exists(index_dir) && !o.overwrite)
    fail("{}: already holds an index (use `clipkit index add`, or --overwrite)", index_dir);
  const auto shards = pipeline::read_manifest(emb_dir);
  if (!shards.complete) fail("{}: the embedding run is not finished (run the same `clipkit embed` again to resume)", emb_dir);
  const pipeline::EmbeddingRows rows(shards);
  const Plan pl = make_plan(rows, read_file((fs::path(emb_dir) / "manifest.json").string()), o);
  const fs::path work = fs::path(index_dir) / "shard-build";
  const std::string trained = (work / "trained.faiss").string();
  const int64_t D = pl.d, m = static_cast<int64_t>(pl.queries.size());
  ShardBuildReport rep;
  rep.rows = pl.n;
  rep.parts = pl.parts();
  rep.choice = pl.choice;

  // 1. rank 0: the work folder for this plan, and the trained (empty) structure
  step_all(o, index_dir, [&] {
    if (o.rank != 0) return;
    const auto t = clock_::now();
    std::error_code ec;
    const fs::path plan_file = work / "plan.json";
    if (fs::exists(plan_file)) {
      auto j = nlohmann::json::parse(read_file(plan_file.string()), nullptr, false);
      if (!j.is_object() || j.value("key", "") != pl.key) fs::remove_all(work, ec);  // made for other inputs or settings
    }
    fs::create_directories(work);
    if (!fs::exists(plan_file))
      write_file_atomic(plan_file.string(), nlohmann::json{{"key", pl.key}, {"factory", pl.choice.factory}}.dump() + "\n");
    if (fs::exists(trained)) return;
    auto v = VectorIndex::create(D, pl.choice.factory);
    if (!pl.train.empty()) {
      std::vector<float> x(pl.train.size() * static_cast<size_t>(D));
      rows.read_rows(pl.train, x.data());
      v->train(x.data(), static_cast<int64_t>(pl.train.size()));
    }
    v->save(trained);
    rep.seconds_train = since(t);
  });

  // 2. each rank: its parts (rows added in chunks, exact neighbours of the held-out queries)
  std::vector<float> q(static_cast<size_t>(m * D));
  rows.read_rows(pl.queries, q.data());
  bool stopped = false;
  step_all(o, index_dir, [&] {
    const auto t = clock_::now();
    int64_t added = 0;
    for (int64_t p = 0; p < pl.parts() && !stopped; ++p) {
      if (pl.rank_of(p, o.ranks) != o.rank) continue;
      const int64_t a = pl.part_begin[static_cast<size_t>(p)], b = pl.part_begin[static_cast<size_t>(p) + 1];
      const std::string f = (work / part_name(p, "faiss")).string(), ti = (work / part_name(p, "ids.npy")).string(),
                        ts = (work / part_name(p, "scores.npy")).string();
      if (fs::exists(f) && fs::exists(ti) && fs::exists(ts)) {
        ++rep.parts_resumed;
        if (progress) progress->add(b - a);
        continue;
      }
      auto v = VectorIndex::load(trained);
      v->set_factory(pl.choice.factory);
      Tensor tid = Tensor::empty(DType::I64, {m, kK}), tsc = Tensor::empty(DType::F32, {m, kK});
      std::fill_n(tid.ptr<int64_t>(), m * kK, -1);
      std::fill_n(tsc.ptr<float>(), m * kK, -std::numeric_limits<float>::infinity());
      std::vector<float> x, s2(static_cast<size_t>(m * kK));
      std::vector<int64_t> ids, i2(static_cast<size_t>(m * kK));
      for (int64_t c = a; c < b; c += o.chunk_rows) {
        const int64_t n = std::min(o.chunk_rows, b - c);
        x.resize(static_cast<size_t>(n * D));
        ids.resize(static_cast<size_t>(n));
        rows.read(c, n, x.data());
        for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = c + i;
        v->add(x.data(), ids.data(), n);
        if (m > 0) {
          faiss::knn_inner_product(q.data(), x.data(), static_cast<size_t>(D), static_cast<size_t>(m),
                                   static_cast<size_t>(n), static_cast<size_t>(kK), s2.data(), i2.data());
          for (auto& id : i2)
            if (id >= 0) id += c;
          merge_top(tsc.ptr<float>(), tid.ptr<int64_t>(), s2.data(), i2.data(), m);
        }
        if (progress) progress->add(n);
      }
      write_npy(ti, tid);
      write_npy(ts, tsc);
      v->save(f);  // last: its presence marks the part done
      stopped = ++added == o.stop_after_parts;
    }
    rep.seconds_add = since(t);
  });
  if (o.all_ok) stopped = !o.all_ok(!stopped);  // any rank stopped: nobody merges
  if (o.rank != 0 || stopped) {
    rep.seconds_total = since(t0);
    return rep;
  }

  // 3. rank 0: merge in part order, measure, choose nprobe, write the library
  const auto tm = clock_::now();
  // one part in memory is the index already; otherwise merge the parts into the trained structure
  const bool single = pl.parts() == 1 && !o.on_disk;
  auto v = VectorIndex::load(single ? (work / part_name(0, "faiss")).string() : trained);
  v->set_factory(pl.choice.factory);
  std::vector<std::string> files;
  std::vector<int64_t> truth(static_cast<size_t>(m * kK), -1);
  std::vector<float> truth_sc(static_cast<size_t>(m * kK), -std::numeric_limits<float>::infinity());
  for (int64_t p = 0; p < pl.parts(); ++p) {
    files.push_back((work / part_name(p, "faiss")).string());
    Tensor ti = read_npy((work / part_name(p, "ids.npy")).string()), ts = read_npy((work / part_name(p, "scores.npy")).string());
    if (ti.numel() != m * kK || ts.numel() != m * kK) fail("{}: part {} does not match this build", work.string(), p);
    merge_top(truth_sc.data(), truth.data(), ts.ptr<float>(), ti.ptr<int64_t>(), m);
  }
  if (!single) v->append_parts(files, o.on_disk ? (work / "lists.ivfdata").string() : "");
  if (v->size() != pl.n) fail("{}: the parts hold {} vectors, the embeddings {}", work.string(), v->size(), pl.n);
  rep.seconds_merge = since(tm);
  rep.sweep = sweep_nprobe(*v, q.data(), pl.queries.data(), m, truth.data(), truth_sc.data(), o.max_query_ms,
                           o.target_recall, o.nprobe);
  rep.heldout = m;
  if (!rep.sweep.empty()) rep.chosen = o.nprobe > 0 ? rep.sweep.back() : pick_nprobe(rep.sweep, o.max_query_ms, o.target_recall);
  rep.params.nprobe = rep.chosen.nprobe;
  rep.score_error_max = rep.chosen.score_error;
  rep.memory_bytes = v->memory_bytes();
  rep.disk_bytes = v->disk_bytes();

  // metadata: one record per row, id = row
  const std::string meta_tmp = Library::staging_meta_path(index_dir);
  fs::create_directories(index_dir);
  {
    std::error_code ec;
    fs::remove(meta_tmp, ec);
    fs::remove(meta_tmp + "-journal", ec);
    auto meta = MetadataStore::open(meta_tmp, true);
    meta->begin();
    pipeline::for_each_record(shards, [&](int64_t row, nlohmann::json& j) {
      ImageRecord r = ImageRecord::from_json(j);
      r.id = row;
      try {
        meta->insert(r);
      } catch (const Error&) {
        if (meta->find_path(r.path) < 0) throw;
        ++rep.duplicate_paths;  // the first row with this path keeps it
      }
    });
    meta->commit();
  }
  rep.seconds_total = since(t0);
  nlohmann::json info = rep.to_json();
  info["embeddings"] = fs::absolute(emb_dir).lexically_normal().string();
  Library::install(index_dir, model, *v, meta_tmp, rep.params, pl.n, info, o.overwrite);
  std::error_code ec;
  fs::remove_all(work, ec);
  rep.complete = true;
  rep.seconds_total = since(t0);
  return rep;
}

}  // namespace clipkit::index
