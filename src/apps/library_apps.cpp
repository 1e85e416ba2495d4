#include "apps/library_apps.h"

#include <filesystem>

#include "core/error.h"
#include "core/hash.h"
#include "io/atomic_file.h"
#include "io/tar_reader.h"

namespace clipkit::apps {

namespace fs = std::filesystem;

std::string record_bytes(const index::ImageRecord& rec) {
  auto off = rec.extra.find("tar_offset");
  const int64_t offset = off != rec.extra.end() && off->is_number_integer() ? off->get<int64_t>() : -1;
  return io::read_path_bytes(rec.path, offset, offset >= 0 ? rec.bytes : -1);
}

ScanResult scan_library(const index::Library& lib, Progress* p, std::vector<std::string>* unreadable,
                        std::vector<index::ImageRecord>* records) {
  std::vector<index::ImageRecord> recs;
  ScanResult r;
  r.emb = lib.export_vectors(&recs);
  const int64_t N = static_cast<int64_t>(recs.size());
  r.items.resize(recs.size());
  std::vector<char> bad(recs.size(), 0);
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < N; ++i) {
    const auto& rec = recs[static_cast<size_t>(i)];
    auto& it = r.items[static_cast<size_t>(i)];
    it.path = rec.path;
    it.split = rec.split;
    it.width = rec.width;
    it.height = rec.height;
    it.bytes = rec.bytes;
    try {
      describe_file_bytes(record_bytes(rec), &it);
    } catch (const std::exception&) {
      bad[static_cast<size_t>(i)] = 1;  // hash stays 0: never an exact duplicate
    }
  }
  if (p) p->add(N);
  if (unreadable)
    for (int64_t i = 0; i < N; ++i)
      if (bad[static_cast<size_t>(i)]) unreadable->push_back(recs[static_cast<size_t>(i)].path);
  if (records) *records = std::move(recs);
  return r;
}

std::vector<Ranked> ranked_from_hits(const std::vector<index::SearchHit>& hits) {
  std::vector<Ranked> ranked;
  ranked.reserve(hits.size());
  for (auto& h : hits) {
    RetrievalItem it;
    it.path = h.record.path;
    nlohmann::json meta = h.record.to_json();
    if (!h.record.captions.empty()) it.caption = h.record.captions[0];
    meta.erase("path");
    meta.erase("caption");
    meta["id"] = h.id;
    it.metadata = std::move(meta);
    ranked.push_back({std::move(it), h.score});
  }
  return ranked;
}

nlohmann::json retrieve_from_library(const index::Library& lib, const std::string& query, const float* q,
                                     const RetrieveOptions& o, const index::Filter& f) {
  // Over-fetch so filters applied after the index search can still fill k results.
  const int64_t k = std::max(1, o.k);
  const int64_t fetch = o.filters.empty() ? k : std::min<int64_t>(std::max<int64_t>(lib.info().count, 1), k * 50);
  return format_results(query, ranked_from_hits(lib.search(q, fetch, f)), lib.info().count, o);
}

std::string default_frames_dir(const std::string& index_dir, const std::string& video) {
  const std::string abs = fs::absolute(video).lexically_normal().string();
  Fnv1a h;
  h.add(abs);
  return (fs::path(index_dir) / "frames" / (fs::path(video).filename().string() + "-" + h.hex().substr(0, 8))).string();
}

int64_t index_video_frames(const std::string& index_dir, const pipeline::ModelIdentity& model,
                           const std::string& video, const VideoFrames& v) {
  const int64_t F = static_cast<int64_t>(v.t.size());
  if (F == 0) fail("{}: no frames were sampled, nothing to index", video);
  if (static_cast<int64_t>(v.frame_files.size()) != F)
    fail("{}: the sampled frames were not saved (set VideoSampling::frames_dir)", video);
  const std::string vabs = fs::absolute(video).lexically_normal().string();
  std::vector<index::ImageRecord> recs(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i) {
    auto& r = recs[static_cast<size_t>(i)];
    r.path = fs::absolute(v.frame_files[static_cast<size_t>(i)]).lexically_normal().string();
    r.relpath = (fs::path(video).filename() / fs::path(r.path).filename()).string();
    r.video = vabs;
    r.timestamp = v.t[static_cast<size_t>(i)];
    r.width = v.frame_sizes[static_cast<size_t>(i)].first;
    r.height = v.frame_sizes[static_cast<size_t>(i)].second;
    std::error_code ec;
    r.bytes = static_cast<int64_t>(fs::file_size(r.path, ec));
    if (ec) r.bytes = 0;
    r.extra = {{"frame", i}};
  }
  if (!index::Library::exists(index_dir)) return index::Library::build(index_dir, model, v.emb, recs, {});
  auto lib = index::Library::open(index_dir);
  lib->check_model(model);
  return lib->add(v.emb, recs);
}

}  // namespace clipkit::apps
