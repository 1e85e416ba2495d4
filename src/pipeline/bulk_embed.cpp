#include "pipeline/bulk_embed.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/parallel.h"
#include "dataset/caption_dataset.h"
#include "dataset/webdataset.h"
#include "image/batch.h"
#include "image/image.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "io/tar_reader.h"

namespace clipkit::pipeline {

namespace fs = std::filesystem;

// Bound on the counts a manifest holds (dims, shard indexes, rows): far beyond any real folder,
// small enough that sums over shards cannot overflow.
constexpr int64_t kMaxManifestCount = int64_t{1} << 48;

namespace {

using Fnv = Fnv1a;

std::string shard_name(int64_t i, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard-%05lld.%s", static_cast<long long>(i), ext);
  return buf;
}

bool is_image_name(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".webp" || e == ".gif" || e == ".bmp";
}

std::string absolute_path(const std::string& p) { return fs::absolute(fs::path(p)).lexically_normal().string(); }

// A shard file a manifest names: a bare "shard-..." file name in the folder, so that a crafted
// manifest cannot make clipkit read or remove files elsewhere.
fs::path shard_file(const fs::path& dir, const nlohmann::json& name, const fs::path& manifest) {
  const std::string n = name.is_string() ? name.get<std::string>() : "";
  if (!n.starts_with("shard-") || n.find('/') != std::string::npos)
    fail("{}: shard file name {} is not a shard of this folder", manifest.string(), json_text(name));
  return dir / n;
}

}  // namespace

nlohmann::json ModelIdentity::to_json() const {
  nlohmann::json j = {{"dir", dir},     {"config_hash", config_hash}, {"weights_hash", weights_hash},
                      {"architecture", architecture}, {"dim", dim}};
  if (!image_backend.empty()) j["image_backend"] = image_backend;
  return j;
}

ModelIdentity ModelIdentity::from_json(const nlohmann::json& j) {
  ModelIdentity m;
  try {
    m.dir = j.at("dir").get<std::string>();
    m.config_hash = j.at("config_hash").get<std::string>();
    m.weights_hash = j.at("weights_hash").get<std::string>();
    m.architecture = j.value("architecture", "");
    m.dim = json_integer(j.at("dim"), 1, kMaxManifestCount, "model identity: \"dim\"");
    m.image_backend = j.value("image_backend", "pil");
  } catch (const nlohmann::json::exception& e) {
    fail("model identity is malformed: {}", e.what());
  }
  return m;
}

std::string ModelIdentity::describe() const {
  return fmt::format("{} (config {}, weights {}, dim {}{}{})", dir, config_hash, weights_hash, dim,
                     image_backend.empty() ? "" : ", images ", image_backend);
}

ModelIdentity model_identity(const std::string& model_dir) {
  ModelIdentity m;
  m.dir = absolute_path(model_dir);
  Fnv c;
  std::string cfg = read_file((fs::path(model_dir) / "config.json").string());
  c.add(cfg.data(), cfg.size());
  m.config_hash = c.hex();
  std::vector<fs::path> weights;
  for (auto& e : fs::directory_iterator(model_dir)) {
    auto n = e.path().filename().string();
    if (n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json")) weights.push_back(e.path());
  }
  std::sort(weights.begin(), weights.end());
  Fnv w;
  std::vector<char> buf(1 << 20);
  for (auto& p : weights) {
    w.add(p.filename().string());
    uint64_t size = fs::file_size(p);
    w.add(&size, sizeof size);
    std::ifstream in(p, std::ios::binary);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    w.add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  m.weights_hash = w.hex();
  return m;
}

ModelIdentity model_identity(const Embedder& e) {
  ModelIdentity m = model_identity(e.model().dir());
  m.architecture = e.model().architecture();
  m.dim = e.dim();
  if (e.model().has_vision()) m.image_backend = image::image_backend_name(e.preprocess_config().backend);
  return m;
}

std::vector<BulkItem> list_image_folder(const std::string& root) {
  if (!fs::is_directory(root)) fail("{}: not a folder", root);
  const fs::path base = fs::absolute(fs::path(root)).lexically_normal();
  std::vector<BulkItem> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(base, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || !is_image_name(it->path())) continue;
    BulkItem b;
    b.path = it->path().lexically_normal().string();
    b.meta["relpath"] = it->path().lexically_relative(base).string();
    out.push_back(std::move(b));
  }
  if (ec) fail("{}: cannot list: {}", root, ec.message());
  std::sort(out.begin(), out.end(), [](const BulkItem& a, const BulkItem& b) { return a.path < b.path; });
  return out;
}

std::vector<BulkItem> list_image_file(const std::string& list_path) {
  std::istringstream in(read_file(list_path));
  std::vector<BulkItem> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    BulkItem b;
    b.path = absolute_path(line);
    b.meta["relpath"] = line;
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<BulkItem> list_coco(const std::string& root, const std::string& split, std::vector<std::string>* dropped,
                                int64_t* dropped_rows) {
  if (dropped_rows) *dropped_rows = 0;
  std::vector<std::string> splits;
  if (!split.empty()) {
    splits.push_back(dataset::normalize_split(split));
  } else {
    for (const char* s : {"train", "val"})
      if (fs::exists(fs::path(root) / "annotations" / (std::string("captions_") + s + "2017.json"))) splits.push_back(s);
    if (splits.empty()) fail("{}: no annotations/captions_train2017.json or captions_val2017.json", root);
  }
  std::vector<BulkItem> out;
  for (auto& s : splits) {
    auto ds = dataset::load_coco(root, s, true);
    if (dropped)
      for (auto& p : ds.report.problems) dropped->push_back(s + ": " + p);
    if (dropped_rows) *dropped_rows += ds.report.skipped;
    std::map<std::string, size_t> at;  // image path -> item
    for (auto& r : ds.rows) {
      auto [it, fresh] = at.emplace(r.image_path, out.size());
      if (fresh) {
        BulkItem b;
        b.path = absolute_path(r.image_path);
        b.meta["relpath"] = s + "2017/" + r.file_name;
        b.meta["split"] = s;
        b.meta["image_id"] = r.image_id;
        b.meta["captions"] = nlohmann::json::array();
        out.push_back(std::move(b));
      }
      out[it->second].meta["captions"].push_back(r.caption);
    }
  }
  return out;
}

std::vector<BulkItem> list_shards(const std::string& spec, const std::string& caption_key, dataset::LoadReport* report) {
  dataset::ShardOptions so;
  so.caption_key = caption_key;
  so.require_caption = false;  // embedding needs the image only; a caption is metadata
  so.read_images = false;
  std::vector<BulkItem> out;
  auto rep = dataset::for_each_shard_sample(dataset::expand_shard_spec(spec), so, [&](dataset::ShardSample& s) {
    BulkItem b;
    b.path = absolute_path(s.path());
    b.archive = absolute_path(s.shard);
    b.offset = static_cast<int64_t>(s.image_offset);
    b.size = static_cast<int64_t>(s.image_size);
    b.meta["relpath"] = fs::path(s.shard).filename().string() + "/" + s.image_member;
    b.meta["key"] = s.key;
    b.meta["shard"] = b.archive;
    b.meta["tar_offset"] = b.offset;
    if (s.has_caption) b.meta["caption"] = s.caption;
    if (!s.json.is_null()) b.meta["json"] = std::move(s.json);
    out.push_back(std::move(b));
  });
  if (report) *report = std::move(rep);
  return out;
}

// ---- manifests ----

namespace {

constexpr const char* kManifest = "manifest.json";

std::string rank_manifest_name(int rank) { return fmt::format("manifest.rank-{}.json", rank); }

bool is_rank_manifest(const std::string& n) {
  return n.starts_with("manifest.rank-") && n.ends_with(".json") && n.find(".tmp.") == std::string::npos;
}

// Whether man is a JSON object whose "format" is "clipkit-embeddings".
bool is_embeddings_manifest(const nlohmann::json& man) {
  if (!man.is_object()) return false;
  const auto it = man.find("format");
  return it != man.end() && it->is_string() && it->get_ref<const std::string&>() == "clipkit-embeddings";
}

nlohmann::json read_manifest_file(const fs::path& p) {
  nlohmann::json man;
  if (!try_parse_json(read_file(p.string()), &man) || !is_embeddings_manifest(man) || !man.contains("shards") ||
      !man["shards"].is_array() || !man.contains("model"))
    fail("{}: not a clipkit embeddings manifest", p.string());
  return man;
}

// Why the shards of manifest `got` are not a run of job `want` ("" when they are).
std::string other_run(const nlohmann::json& want, const nlohmann::json& got, const std::string& out_dir) {
  auto now = ModelIdentity::from_json(want.at("model")), prev = ModelIdentity::from_json(got.at("model"));
  if (!prev.same_model(now))
    return fmt::format("{}: these shards were made by model {}, not {} -- use another output folder", out_dir,
                       prev.describe(), now.describe());
  if (json_string_or(got, "inputs_hash", "", out_dir) != json_string_or(want, "inputs_hash", "", out_dir) ||
      json_integer_or(got, "inputs", -1) != json_integer_or(want, "inputs", -1))
    return fmt::format("{}: these shards were made from a different input list ({} inputs) -- use another output folder",
                       out_dir, json_integer_or(got, "inputs", -1));
  if (json_integer_or(got, "shard_size", -1) != json_integer_or(want, "shard_size", -1))
    return fmt::format("{}: these shards hold {} inputs each, not {} -- resume with --shard-size {}", out_dir,
                       json_integer_or(got, "shard_size", -1), json_integer_or(want, "shard_size", -1),
                       json_integer_or(got, "shard_size", -1));
  if (json_bool_or(got, "normalize", true, out_dir) != json_bool_or(want, "normalize", true, out_dir))
    return fmt::format("{}: these shards differ in normalization", out_dir);
  return "";
}

struct ManifestSet {
  nlohmann::json header;                   // the run's description (no shards); null when no manifest
  std::map<int64_t, nlohmann::json> done;  // shard -> entry, over all manifests, files present
  std::map<std::string, std::map<int64_t, nlohmann::json>> by_file;  // file name -> its entries
};

// Every manifest in `dir` (manifest.json and the ranks'), checked to be runs of job `expect` (null:
// of the first one read). A manifest of another job fails, or with `replace_other_runs` (a work
// folder) is removed with its shards.
ManifestSet read_manifests(const fs::path& dir, const nlohmann::json& expect, bool replace_other_runs = false) {
  ManifestSet m;
  m.header = expect;
  std::vector<std::string> files;
  if (fs::exists(dir / kManifest)) files.push_back(kManifest);
  std::error_code ec;
  std::vector<std::string> ranks;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (is_rank_manifest(e.path().filename().string())) ranks.push_back(e.path().filename().string());
  std::sort(ranks.begin(), ranks.end());
  files.insert(files.end(), ranks.begin(), ranks.end());
  for (auto& f : files) {
    const fs::path mp = dir / f;
    auto man = read_manifest_file(mp);
    if (m.header.is_null()) {
      m.header = man;
      m.header.erase("shards");
      m.header.erase("complete");
    }
    try {
      if (std::string other = other_run(m.header, man, dir.string()); !other.empty()) {
        if (!replace_other_runs) fail("{}", other);
        for (auto& s : man["shards"])  // a work folder of another job: start over
          for (const char* k : {"npy", "jsonl"})
            if (s.is_object() && s.contains(k)) fs::remove(shard_file(dir, s[k], mp));
        fs::remove(mp);
        continue;
      }
      auto& mine = m.by_file[f];
      for (auto& s : man.at("shards")) {
        const int64_t k = json_integer(s.at("index"), 0, kMaxManifestCount, mp.string() + ": shard \"index\"");
        if (fs::exists(shard_file(dir, s.at("npy"), mp)) && fs::exists(shard_file(dir, s.at("jsonl"), mp))) {
          m.done[k] = s;
          mine[k] = s;
        }
      }
    } catch (const nlohmann::json::exception& e) {
      fail("{}: malformed manifest: {}", mp.string(), e.what());
    }
  }
  return m;
}

void write_manifest_file(const fs::path& p, nlohmann::json header, const std::map<int64_t, nlohmann::json>& entries) {
  nlohmann::json shards = nlohmann::json::array();
  for (auto& [k, s] : entries) shards.push_back(s);
  header["shards"] = shards;
  header["complete"] = static_cast<int64_t>(entries.size()) == json_integer_or(header, "shards_total", -1);
  write_file_atomic(p.string(), json_text(header, 1) + "\n");
}

void report_from(const std::map<int64_t, nlohmann::json>& done, BulkEmbedReport* rep) {
  rep->rows = 0;
  rep->skipped.clear();
  for (auto& [k, s] : done) {
    rep->rows += json_integer(s.at("rows"), 0, kMaxManifestCount, "manifest: shard \"rows\"");
    for (auto& sk : s.at("skipped")) rep->skipped.push_back({sk.at("path"), sk.at("reason")});
  }
}

// Removes temp files a killed process left behind: NAME.tmp.PID for the given names.
void remove_leftovers(const fs::path& dir, const std::set<std::string>& names) {
  std::error_code ec;
  std::vector<fs::path> gone;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const size_t t = n.find(".tmp.");
    if (t != std::string::npos && names.count(n.substr(0, t))) gone.push_back(e.path());
  }
  for (auto& g : gone) fs::remove(g, ec);
}

}  // namespace

BulkEmbedReport combine_manifests(const std::string& out_dir) {
  const fs::path dir(out_dir);
  auto m = read_manifests(dir, nullptr);
  if (m.header.is_null()) fail("{}: no manifest to combine", out_dir);
  write_manifest_file(dir / kManifest, m.header, m.done);
  for (auto& [f, entries] : m.by_file)
    if (f != kManifest) fs::remove(dir / f);
  remove_leftovers(dir, {kManifest});
  BulkEmbedReport rep;
  rep.inputs = json_integer_or(m.header, "inputs", 0);
  rep.shards = json_integer_or(m.header, "shards_total", 0);
  rep.shards_already_done = static_cast<int64_t>(m.done.size());
  rep.complete = rep.shards_already_done == rep.shards;
  report_from(m.done, &rep);
  return rep;
}

// ---- the pipeline ----

namespace {

struct Job {
  int64_t shard = 0, begin = 0, end = 0;  // inputs [begin, end)
  bool last_in_shard = false;
  // filled by the decoder
  std::vector<float> px;
  std::vector<std::string> err;
  std::vector<int> w, h;
  std::vector<int64_t> bytes;
  std::vector<uint64_t> hash;
  bool ready = false;
};

void decode_job(Job& j, const std::vector<BulkItem>& items, const image::PreprocessConfig& pre, size_t per,
                const image::DecodeOptions& d, int64_t i) {
  const auto& item = items[static_cast<size_t>(j.begin + i)];
  const size_t k = static_cast<size_t>(i);
  try {
    const std::string data = item.archive.empty()
                                 ? read_file(item.path)
                                 : io::read_member_at(item.archive, static_cast<uint64_t>(item.offset),
                                                      static_cast<uint64_t>(item.size));
    j.bytes[k] = static_cast<int64_t>(data.size());
    j.hash[k] = content_hash(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    image::Image img = image::decode_memory(reinterpret_cast<const uint8_t*>(data.data()), data.size(), item.path,
                                            image::decode_options_for(pre, d));
    j.w[k] = img.width;
    j.h[k] = img.height;
    image::preprocess(img, pre, j.px.data() + k * per);
  } catch (const std::exception& e) {
    j.err[k] = e.what();
    if (j.err[k].empty()) j.err[k] = item.path + ": unreadable";
  }
}

void alloc_job(Job& j, size_t per) {
  const size_t n = static_cast<size_t>(j.end - j.begin);
  j.px.resize(n * per);
  j.err.assign(n, "");
  j.w.assign(n, 0);
  j.h.assign(n, 0);
  j.bytes.assign(n, 0);
  j.hash.assign(n, 0);
}

}  // namespace

int auto_decode_threads(const std::string& device, int compute_threads, int cores) {
  constexpr int kMost = 16;  // each holds a decoded batch (19 MB at ViT-B's 32 x 224 x 224)
  if (device != "cpu") return std::clamp(cores - 1, 1, kMost);  // one core left to the thread driving the GPU
  return compute_threads < cores ? std::clamp(cores - compute_threads, 1, kMost) : 0;
}

BulkEmbedReport bulk_embed(const Embedder& e, const std::vector<BulkItem>& items, const std::string& out_dir,
                           const BulkEmbedOptions& o, Progress* p) {
  if (!e.model().has_vision()) fail("{}: {}", e.model().dir(), e.model().missing_tower(model::Part::Vision));
  if (o.shard_size <= 0) fail("shard size must be positive, got {}", o.shard_size);
  if (o.batch_size <= 0) fail("batch size must be positive, got {}", o.batch_size);
  if (o.ranks < 1 || o.rank < 0 || o.rank >= o.ranks) fail("rank {} of {} is not a valid process number", o.rank, o.ranks);
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(out_dir);
  const fs::path dir(out_dir);
  const ModelIdentity id = model_identity(e);
  Fnv ih;
  for (auto& it : items) ih.add(it.path);
  const int64_t N = static_cast<int64_t>(items.size());
  const int64_t n_shards = (N + o.shard_size - 1) / o.shard_size;
  const nlohmann::json header = {{"format", "clipkit-embeddings"}, {"version", 1},         {"model", id.to_json()},
                                 {"dim", e.dim()},                 {"normalize", o.normalize}, {"inputs", N},
                                 {"inputs_hash", ih.hex()},        {"shard_size", o.shard_size}, {"shards_total", n_shards}};
  // One process keeps manifest.json current (absorbing what earlier multi-rank runs left); a rank
  // of several keeps its own manifest, merged by combine_manifests() at the end.
  const bool alone = o.ranks == 1;
  const std::string own_name = alone ? kManifest : rank_manifest_name(o.rank);
  auto ms = read_manifests(dir, header, o.replace_other_runs);
  std::map<int64_t, nlohmann::json> own = alone ? ms.done : ms.by_file[own_name];
  const auto& done = ms.done;
  auto mine = [&](int64_t s) { return s % o.ranks == o.rank; };

  BulkEmbedReport rep;
  rep.inputs = N;
  rep.shards = n_shards;
  for (auto& [k, s] : done) rep.shards_already_done += mine(k);

  auto write_own = [&]() { write_manifest_file(dir / own_name, header, own); };

  // The work: every batch of every unfinished shard of this rank, batches restarting at each
  // shard's start (so a shard's numbers do not depend on which shards ran before it).
  std::vector<Job> jobs;
  std::set<std::string> leftovers = {own_name};
  for (int64_t s = 0; s < n_shards; ++s) {
    if (!mine(s)) continue;
    if (done.count(s)) {
      if (p) p->add(std::min(N, (s + 1) * o.shard_size) - s * o.shard_size);
      continue;
    }
    leftovers.insert(shard_name(s, "npy"));
    leftovers.insert(shard_name(s, "jsonl"));
    const int64_t b0 = s * o.shard_size, b1 = std::min(N, b0 + o.shard_size);
    for (int64_t b = b0; b < b1; b += o.batch_size) {
      Job j;
      j.shard = s;
      j.begin = b;
      j.end = std::min(b1, b + o.batch_size);
      j.last_in_shard = j.end == b1;
      jobs.push_back(std::move(j));
    }
  }
  remove_leftovers(dir, leftovers);

  const auto& pre = e.preprocess_config();
  const size_t per = image::floats_per_image(pre);
  const int64_t D = e.dim();

  std::mutex mu;
  std::condition_variable cv;
  size_t next_claim = 0, consumed = 0;
  bool stop = false;
  std::vector<std::thread> workers;
  const int asked = o.decode_threads >= 0 ? o.decode_threads
                                          : auto_decode_threads(e.model().backend().name(), num_threads(), num_cores());
  const int nworkers = jobs.empty() ? 0 : asked;
  // every worker can have a batch in hand
  const size_t depth = static_cast<size_t>(std::max({1, o.prefetch_batches, nworkers}));
  for (int w = 0; w < nworkers; ++w) {
    // Decoder threads only feed the model (I/O + single-threaded decode); all compute
    // parallelism stays in the OpenMP pool the model uses.
    workers.emplace_back([&]() {
      while (true) {
        size_t k;
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return stop || next_claim >= jobs.size() || next_claim < consumed + depth; });
          if (stop || next_claim >= jobs.size()) return;
          k = next_claim++;
        }
        Job& j = jobs[k];
        alloc_job(j, per);
        for (int64_t i = 0; i < j.end - j.begin; ++i) decode_job(j, items, pre, per, o.decode, i);
        {
          std::lock_guard<std::mutex> l(mu);
          j.ready = true;
        }
        cv.notify_all();
      }
    });
  }
  auto stop_workers = [&]() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
  };

  EmbedOptions eo;
  eo.batch_size = o.batch_size;
  eo.normalize = o.normalize;
  std::vector<Tensor> parts;
  std::vector<std::string> rows;
  nlohmann::json skipped_json = nlohmann::json::array();
  int64_t written = 0;
  try {
    for (size_t k = 0; k < jobs.size(); ++k) {
      Job& j = jobs[k];
      const int64_t n = j.end - j.begin;
      if (nworkers == 0) {
        alloc_job(j, per);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t i = 0; i < n; ++i) decode_job(j, items, pre, per, o.decode, i);
      } else {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return j.ready; });
      }
      // compact readable rows to the front, note the rest
      int64_t good = 0;
      for (int64_t i = 0; i < n; ++i) {
        const auto& item = items[static_cast<size_t>(j.begin + i)];
        const size_t ki = static_cast<size_t>(i);
        if (!j.err[ki].empty()) {
          rep.skipped.push_back({item.path, j.err[ki]});
          skipped_json.push_back({{"path", item.path}, {"reason", j.err[ki]}});
          continue;
        }
        if (good != i)
          std::memmove(j.px.data() + static_cast<size_t>(good) * per, j.px.data() + ki * per, sizeof(float) * per);
        nlohmann::json r = item.meta;
        r["row"] = static_cast<int64_t>(rows.size());
        r["input"] = j.begin + i;
        r["path"] = item.path;
        r["width"] = j.w[ki];
        r["height"] = j.h[ki];
        r["bytes"] = j.bytes[ki];
        r["content_hash"] = fmt::format("{:016x}", j.hash[ki]);
        rows.push_back(json_text(r));
        ++good;
      }
      if (good > 0) {
        EmbedOptions one = eo;
        one.batch_size = static_cast<int>(good);
        parts.push_back(e.embed_pixels(j.px.data(), good, one));
      }
      rep.images_this_run += n;
      if (p) p->add(n);
      // free the pixels and let the decoders run ahead
      std::vector<float>().swap(j.px);
      {
        std::lock_guard<std::mutex> l(mu);
        consumed = k + 1;
      }
      cv.notify_all();
      if (o.after_batch) o.after_batch(static_cast<int64_t>(k) + 1);
      if (j.last_in_shard) {
        Tensor x = parts.empty() ? Tensor::empty(DType::F32, {0, D}) : concat_rows(parts, D);
        const std::string npy = shard_name(j.shard, "npy"), jl = shard_name(j.shard, "jsonl");
        write_npy((dir / npy).string(), x);
        std::string body;
        for (auto& r : rows) body += r + "\n";
        write_file_atomic((dir / jl).string(), body);
        const int64_t b0 = j.shard * o.shard_size;
        own[j.shard] = {{"index", j.shard}, {"npy", npy},   {"jsonl", jl}, {"rows", x.dim(0)},
                        {"first_input", b0}, {"inputs", j.end - b0}, {"skipped", skipped_json}};
        write_own();
        parts.clear();
        rows.clear();
        skipped_json = nlohmann::json::array();
        ++written;
        if (o.stop_after_shards >= 0 && written >= o.stop_after_shards) break;
      }
    }
  } catch (...) {
    stop_workers();
    throw;
  }
  stop_workers();
  if (jobs.empty() || !fs::exists(dir / own_name)) write_own();
  if (alone)  // manifest.json now lists what the rank manifests did: they are redundant
    for (auto& [f, entries] : ms.by_file)
      if (f != kManifest) fs::remove(dir / f);
  rep.shards_written = written;
  std::map<int64_t, nlohmann::json> finished;  // this rank's shards, done earlier or now
  for (auto& [k, s] : done)
    if (mine(k)) finished[k] = s;
  for (auto& [k, s] : own)
    if (mine(k)) finished[k] = s;
  int64_t owned = 0;
  for (int64_t s = 0; s < n_shards; ++s) owned += mine(s);
  rep.complete = static_cast<int64_t>(finished.size()) == owned;
  report_from(finished, &rep);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

EmbeddingsWriter::EmbeddingsWriter(std::string dir, ModelIdentity model, int64_t dim, int64_t shard_size, bool normalized)
    : dir_(std::move(dir)), model_(std::move(model)), dim_(dim), shard_size_(shard_size), normalized_(normalized) {
  if (dim_ <= 0 || shard_size_ <= 0) fail("{}: dimension and shard size must be positive", dir_);
  model_.dim = dim_;
  fs::create_directories(dir_);
}

void EmbeddingsWriter::add(const float* x, int64_t n, const std::vector<nlohmann::json>& rows) {
  if (static_cast<int64_t>(rows.size()) != n) fail("{}: {} vectors with {} metadata rows", dir_, n, rows.size());
  for (int64_t i = 0; i < n; ++i) {
    nlohmann::json r = rows[static_cast<size_t>(i)];
    r["row"] = static_cast<int64_t>(rows_.size());
    r["input"] = total_;
    paths_.add(r.value("path", ""));
    rows_.push_back(r.dump());
    x_.insert(x_.end(), x + i * dim_, x + (i + 1) * dim_);
    ++total_;
    if (static_cast<int64_t>(rows_.size()) == shard_size_) flush();
  }
}

void EmbeddingsWriter::flush() {
  const int64_t k = static_cast<int64_t>(shards_.size()), n = static_cast<int64_t>(rows_.size());
  Tensor t = Tensor::empty(DType::F32, {n, dim_});
  std::copy(x_.begin(), x_.end(), t.ptr<float>());
  const std::string npy = shard_name(k, "npy"), jl = shard_name(k, "jsonl");
  write_npy((fs::path(dir_) / npy).string(), t);
  std::string body;
  for (auto& r : rows_) body += r + "\n";
  write_file_atomic((fs::path(dir_) / jl).string(), body);
  shards_.push_back({{"index", k}, {"npy", npy}, {"jsonl", jl}, {"rows", n}, {"first_input", total_ - n},
                     {"inputs", n}, {"skipped", nlohmann::json::array()}});
  x_.clear();
  rows_.clear();
}

void EmbeddingsWriter::finish() {
  if (!rows_.empty()) flush();
  const nlohmann::json header = {{"format", "clipkit-embeddings"}, {"version", 1}, {"model", model_.to_json()},
                                 {"dim", dim_}, {"normalize", normalized_}, {"inputs", total_},
                                 {"inputs_hash", paths_.hex()}, {"shard_size", shard_size_},
                                 {"shards_total", static_cast<int64_t>(shards_.size())}};
  std::map<int64_t, nlohmann::json> entries;
  for (auto& s : shards_) entries[s["index"].get<int64_t>()] = s;
  write_manifest_file(fs::path(dir_) / kManifest, header, entries);
}

EmbeddingShards read_manifest(const std::string& dir) {
  const fs::path mp = fs::path(dir) / "manifest.json";
  if (!fs::exists(mp)) fail("{}: no manifest.json (not an embeddings folder written by clipkit embed --out-dir)", dir);
  nlohmann::json man;
  if (!try_parse_json(read_file(mp.string()), &man) || !is_embeddings_manifest(man))
    fail("{}: not a clipkit embeddings manifest", mp.string());
  EmbeddingShards s;
  try {
    s.model = ModelIdentity::from_json(man.at("model"));
    s.dim = json_integer(man.at("dim"), 1, kMaxManifestCount, mp.string() + ": \"dim\"");
    s.complete = json_bool_or(man, "complete", false, mp.string());
    for (auto& sh : man.at("shards")) {
      s.npy.push_back(shard_file(dir, sh.at("npy"), mp).string());
      s.jsonl.push_back(shard_file(dir, sh.at("jsonl"), mp).string());
      s.rows += json_integer(sh.at("rows"), 0, kMaxManifestCount, mp.string() + ": shard \"rows\"");
      for (auto& sk : sh.at("skipped")) s.skipped.push_back({sk.at("path"), sk.at("reason")});
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed manifest: {}", mp.string(), e.what());
  }
  return s;
}

void for_each_shard(const EmbeddingShards& s,
                    const std::function<void(const Tensor&, const std::vector<nlohmann::json>&)>& fn) {
  for (size_t i = 0; i < s.npy.size(); ++i) {
    Tensor x = read_npy(s.npy[i]).to_f32();
    std::vector<nlohmann::json> rows;
    std::istringstream in(read_file(s.jsonl[i]));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json j;
      if (!try_parse_json(line, &j)) fail("{}: line {} is not valid JSON", s.jsonl[i], rows.size() + 1);
      rows.push_back(std::move(j));
    }
    if (x.shape.size() != 2 || x.dim(0) != static_cast<int64_t>(rows.size()) || x.dim(1) != s.dim)
      fail("{}: {} rows of metadata for an array of shape {} (expected [{}, {}])", s.npy[i], rows.size(),
           shape_str(x.shape), rows.size(), s.dim);
    fn(x, rows);
  }
}

}  // namespace clipkit::pipeline
