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
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "core/json.h"
#include "data/caption_dataset.h"
#include "image/batch.h"
#include "image/image.h"
#include "io/atomic_file.h"
#include "io/npy.h"

namespace clipkit::pipeline {

namespace fs = std::filesystem;

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
    m.dim = j.at("dim").get<int64_t>();
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
    splits.push_back(data::normalize_split(split));
  } else {
    for (const char* s : {"train", "val"})
      if (fs::exists(fs::path(root) / "annotations" / (std::string("captions_") + s + "2017.json"))) splits.push_back(s);
    if (splits.empty()) fail("{}: no annotations/captions_train2017.json or captions_val2017.json", root);
  }
  std::vector<BulkItem> out;
  for (auto& s : splits) {
    auto ds = data::load_coco(root, s, true);
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

// ---- the pipeline ----

namespace {

struct Job {
  int64_t shard = 0, begin = 0, end = 0;  // inputs [begin, end)
  bool last_in_shard = false;
  // filled by the decoder
  std::vector<float> px;
  std::vector<std::string> err;
  std::vector<int> w, h;
  bool ready = false;
};

void decode_job(Job& j, const std::vector<BulkItem>& items, const image::PreprocessConfig& pre, size_t per,
                const image::DecodeOptions& d, int64_t i) {
  const auto& path = items[static_cast<size_t>(j.begin + i)].path;
  try {
    image::Image img = image::decode_file(path, d);
    j.w[static_cast<size_t>(i)] = img.width;
    j.h[static_cast<size_t>(i)] = img.height;
    image::preprocess(img, pre, j.px.data() + static_cast<size_t>(i) * per);
  } catch (const std::exception& e) {
    j.err[static_cast<size_t>(i)] = e.what();
    if (j.err[static_cast<size_t>(i)].empty()) j.err[static_cast<size_t>(i)] = path + ": unreadable";
  }
}

void alloc_job(Job& j, size_t per) {
  const size_t n = static_cast<size_t>(j.end - j.begin);
  j.px.resize(n * per);
  j.err.assign(n, "");
  j.w.assign(n, 0);
  j.h.assign(n, 0);
}

}  // namespace

BulkEmbedReport bulk_embed(const Embedder& e, const std::vector<BulkItem>& items, const std::string& out_dir,
                           const BulkEmbedOptions& o, Progress* p) {
  if (!e.model().has_vision()) fail("{}: this model has no vision tower", e.model().dir());
  if (o.shard_size <= 0) fail("shard size must be positive, got {}", o.shard_size);
  if (o.batch_size <= 0) fail("batch size must be positive, got {}", o.batch_size);
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(out_dir);
  const fs::path dir(out_dir);
  const fs::path manifest_path = dir / "manifest.json";
  const ModelIdentity id = model_identity(e);
  Fnv ih;
  for (auto& it : items) ih.add(it.path);
  const int64_t N = static_cast<int64_t>(items.size());
  const int64_t n_shards = (N + o.shard_size - 1) / o.shard_size;

  nlohmann::json man;
  std::map<int64_t, nlohmann::json> done;  // shard -> its manifest entry
  if (fs::exists(manifest_path)) {
    std::string txt = read_file(manifest_path.string());
    if (!try_parse_json(txt, &man) || !man.is_object() || man.value("format", "") != "clipkit-embeddings")
      fail("{}: not a clipkit embeddings manifest", manifest_path.string());
    auto prev = ModelIdentity::from_json(man.at("model"));
    std::string other;  // why these shards are not a run of this job
    if (!prev.same_model(id))
      other = fmt::format("{}: these shards were made by model {}, not {} -- use another output folder", out_dir,
                          prev.describe(), id.describe());
    else if (man.value("inputs_hash", "") != ih.hex() || man.value("inputs", int64_t{-1}) != N)
      other = fmt::format("{}: these shards were made from a different input list ({} inputs) -- use another output folder",
                          out_dir, man.value("inputs", int64_t{-1}));
    else if (man.value("shard_size", int64_t{-1}) != o.shard_size)
      other = fmt::format("{}: these shards hold {} inputs each, not {} -- resume with --shard-size {}", out_dir,
                          man.value("shard_size", int64_t{-1}), o.shard_size, man.value("shard_size", int64_t{-1}));
    else if (man.value("normalize", true) != o.normalize)
      other = fmt::format("{}: these shards differ in normalization", out_dir);
    if (!other.empty() && !o.replace_other_runs) fail("{}", other);
    if (!other.empty()) {  // a work folder of another job: start over
      for (auto& s : man.value("shards", nlohmann::json::array()))
        for (const char* k : {"npy", "jsonl"})
          if (s.is_object() && s.contains(k)) fs::remove(shard_file(dir, s[k], manifest_path));
      fs::remove(manifest_path);
      man = nlohmann::json::object();
    }
    for (auto& s : man.value("shards", nlohmann::json::array())) {
      int64_t k = s.at("index").get<int64_t>();
      if (fs::exists(shard_file(dir, s.at("npy"), manifest_path)) && fs::exists(shard_file(dir, s.at("jsonl"), manifest_path)))
        done[k] = s;
    }
  }
  man = {{"format", "clipkit-embeddings"}, {"version", 1},         {"model", id.to_json()},
         {"dim", e.dim()},                 {"normalize", o.normalize}, {"inputs", N},
         {"inputs_hash", ih.hex()},        {"shard_size", o.shard_size}, {"shards_total", n_shards}};

  BulkEmbedReport rep;
  rep.inputs = N;
  rep.shards = n_shards;
  rep.shards_already_done = static_cast<int64_t>(done.size());

  auto write_manifest = [&]() {
    nlohmann::json shards = nlohmann::json::array();
    for (auto& [k, s] : done) shards.push_back(s);
    man["shards"] = shards;
    man["complete"] = static_cast<int64_t>(done.size()) == n_shards;
    write_file_atomic(manifest_path.string(), json_text(man, 1) + "\n");
  };

  // The work: every batch of every unfinished shard, batches restarting at each shard's start
  // (so a shard's numbers do not depend on which shards ran before it).
  std::vector<Job> jobs;
  for (int64_t s = 0; s < n_shards; ++s) {
    if (done.count(s)) {
      if (p) p->add(std::min(N, (s + 1) * o.shard_size) - s * o.shard_size);
      continue;
    }
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

  const auto& pre = e.preprocess_config();
  const size_t per = image::floats_per_image(pre);
  const int64_t D = e.dim();

  std::mutex mu;
  std::condition_variable cv;
  size_t next_claim = 0, consumed = 0;
  bool stop = false;
  std::vector<std::thread> workers;
  const int nworkers = jobs.empty() ? 0 : std::max(0, o.decode_threads);
  const size_t depth = static_cast<size_t>(std::max(1, o.prefetch_batches));
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
        if (!j.err[static_cast<size_t>(i)].empty()) {
          rep.skipped.push_back({item.path, j.err[static_cast<size_t>(i)]});
          skipped_json.push_back({{"path", item.path}, {"reason", j.err[static_cast<size_t>(i)]}});
          continue;
        }
        if (good != i)
          std::memmove(j.px.data() + static_cast<size_t>(good) * per, j.px.data() + static_cast<size_t>(i) * per,
                       sizeof(float) * per);
        nlohmann::json r = item.meta;
        r["row"] = static_cast<int64_t>(rows.size());
        r["input"] = j.begin + i;
        r["path"] = item.path;
        r["width"] = j.w[static_cast<size_t>(i)];
        r["height"] = j.h[static_cast<size_t>(i)];
        std::error_code ec;
        auto sz = fs::file_size(item.path, ec);
        if (!ec) r["bytes"] = static_cast<int64_t>(sz);
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
      if (j.last_in_shard) {
        Tensor x = parts.empty() ? Tensor::empty(DType::F32, {0, D}) : concat_rows(parts, D);
        const std::string npy = shard_name(j.shard, "npy"), jl = shard_name(j.shard, "jsonl");
        write_npy((dir / npy).string(), x);
        std::string body;
        for (auto& r : rows) body += r + "\n";
        write_file_atomic((dir / jl).string(), body);
        const int64_t b0 = j.shard * o.shard_size;
        done[j.shard] = {{"index", j.shard}, {"npy", npy},   {"jsonl", jl}, {"rows", x.dim(0)},
                         {"first_input", b0}, {"inputs", j.end - b0}, {"skipped", skipped_json}};
        write_manifest();
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
  if (jobs.empty() || !fs::exists(manifest_path)) write_manifest();
  rep.shards_written = written;
  rep.complete = static_cast<int64_t>(done.size()) == n_shards;
  rep.skipped.clear();
  for (auto& [k, s] : done) {
    rep.rows += s.at("rows").get<int64_t>();
    for (auto& sk : s.at("skipped")) rep.skipped.push_back({sk.at("path"), sk.at("reason")});
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

EmbeddingShards read_manifest(const std::string& dir) {
  const fs::path mp = fs::path(dir) / "manifest.json";
  if (!fs::exists(mp)) fail("{}: no manifest.json (not an embeddings folder written by clipkit embed --out-dir)", dir);
  nlohmann::json man;
  if (!try_parse_json(read_file(mp.string()), &man) || !man.is_object() || man.value("format", "") != "clipkit-embeddings")
    fail("{}: not a clipkit embeddings manifest", mp.string());
  EmbeddingShards s;
  try {
    s.model = ModelIdentity::from_json(man.at("model"));
    s.dim = man.at("dim").get<int64_t>();
    s.complete = man.value("complete", false);
    for (auto& sh : man.at("shards")) {
      s.npy.push_back(shard_file(dir, sh.at("npy"), mp).string());
      s.jsonl.push_back(shard_file(dir, sh.at("jsonl"), mp).string());
      s.rows += sh.at("rows").get<int64_t>();
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
