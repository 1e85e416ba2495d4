#include "index/library.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <unordered_set>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"

namespace clipkit::index {

namespace fs = std::filesystem;

namespace {

std::string gen_name(const char* stem, int64_t gen, const char* ext) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s.%06lld.%s", stem, static_cast<long long>(gen), ext);
  return buf;
}

// Points DIR/name at target (relative), replacing any previous link atomically.
void relink(const fs::path& dir, const std::string& name, const std::string& target) {
  const fs::path tmp = dir / (name + ".lnk.tmp");
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, dir / name, ec);
}

// Removes files of generations other than `keep` (left behind by earlier runs or a crash).
void collect_garbage(const fs::path& dir, int64_t keep) {
  const std::string f = gen_name("index", keep, "faiss"), m = gen_name("meta", keep, "sqlite");
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    auto n = e.path().filename().string();
    bool ours = (n.starts_with("index.") && n.find(".faiss") != std::string::npos && n != "index.faiss") ||
                (n.starts_with("meta.") && n.find(".sqlite") != std::string::npos && n != "meta.sqlite");
    const bool current = n == f || n == m || n.starts_with(f + ".");  // index.<gen>.faiss.ivfdata
    if (ours && !current && !e.is_symlink()) fs::remove(e.path(), ec);
  }
}

nlohmann::json params_json(const SearchParams& p) {
  nlohmann::json j = nlohmann::json::object();
  if (p.nprobe) j["nprobe"] = p.nprobe;
  if (p.ef_search) j["ef_search"] = p.ef_search;
  return j;
}

void check_rows(const Tensor& x, const std::vector<ImageRecord>& records, int64_t dim) {
  if (x.dtype != DType::F32 || x.shape.size() != 2) fail("embeddings must be float32 [N, D], got {}", shape_str(x.shape));
  if (x.dim(0) != static_cast<int64_t>(records.size()))
    fail("{} embeddings but {} metadata records", x.dim(0), records.size());
  if (dim > 0 && x.dim(1) != dim) fail("embeddings have dimension {}, the index holds dimension {}", x.dim(1), dim);
}

// Lists on disk belong to the current generation's file, which must stay as it is: the change goes
// into a copy named for the next generation.
void detach_lists(VectorIndex& v, const fs::path& dir, int64_t next_gen) {
  if (!v.storage_file().empty()) v.copy_storage((dir / (gen_name("index", next_gen, "faiss") + ".ivfdata")).string());
}

// Builds a new metadata file at `tmp` (copying `from` first when given).
std::unique_ptr<MetadataStore> fresh_meta(const std::string& tmp, const std::string& from) {
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::remove(tmp + "-journal", ec);
  if (!from.empty()) fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  return MetadataStore::open(tmp, true);
}

}  // namespace

nlohmann::json LibraryInfo::to_json() const {
  nlohmann::json s = nlohmann::json::object();
  for (auto& [k, v] : splits) s[k.empty() ? "(none)" : k] = v;
  return {{"index", dir},         {"count", count},           {"dim", dim},         {"factory", factory},
          {"search", params_json(params)}, {"generation", generation}, {"model", model.to_json()},
          {"faiss_file", faiss_file},      {"meta_file", meta_file},   {"splits", s},
          {"metric", "inner_product"},     {"build", build}};
}

namespace {
// The locks this process holds, by folder: nested WriterLocks (a command around the library's own
// writes) share one flock.
std::mutex g_locks_mu;
std::map<std::string, std::pair<int, int>> g_locks;  // folder -> (fd, holders)
}  // namespace

WriterLock::WriterLock(const std::string& dir, bool create) {
  std::error_code ec;
  if (create) fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec))
    fail("{}: not an index folder (no index.json; create one with `clipkit index build`)", dir);
  key_ = fs::weakly_canonical(dir, ec).string();
  std::lock_guard<std::mutex> l(g_locks_mu);
  if (auto it = g_locks.find(key_); it != g_locks.end()) {
    ++it->second.second;
    return;
  }
  const std::string path = (fs::path(dir) / ".writer.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot open the index's lock file: {}", path, std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    fail("{}: another clipkit command{} is changing this index; wait for it to finish", dir,
         n > 0 ? fmt::format(" (pid {})", std::string(buf, static_cast<size_t>(n))) : "");
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // the pid is only for the message: the lock itself holds
  }
  g_locks[key_] = {fd, 1};
}

WriterLock::~WriterLock() {
  std::lock_guard<std::mutex> l(g_locks_mu);
  auto it = g_locks.find(key_);
  if (it != g_locks.end() && --it->second.second == 0) {
    ::close(it->second.first);  // releases the flock
    g_locks.erase(it);
  }
}

bool Library::exists(const std::string& dir) { return fs::exists(fs::path(dir) / "index.json"); }

int64_t Library::current_generation(const std::string& dir) {
  nlohmann::json j;
  std::error_code ec;
  const fs::path jp = fs::path(dir) / "index.json";
  if (!fs::exists(jp, ec)) return -1;
  try {
    if (!try_parse_json(read_file(jp.string()), &j) || !j.is_object() || !j.contains("generation") ||
        !j["generation"].is_number_integer())
      return -1;
  } catch (const Error&) {
    return -1;
  }
  return j["generation"].get<int64_t>();
}

int64_t Library::build(const std::string& dir, const pipeline::ModelIdentity& model, const Tensor& x,
                       const std::vector<ImageRecord>& records, const BuildOptions& o, bool overwrite) {
  check_rows(x, records, model.dim);
  WriterLock lock(dir, /*create=*/true);
  if (exists(dir) && !overwrite) fail("{}: already holds an index (use `clipkit index add`, or --overwrite)", dir);
  const int64_t D = x.dim(1);
  // first row per path
  std::vector<int64_t> keep;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < records.size(); ++i)
    if (seen.insert(records[i].path).second) keep.push_back(static_cast<int64_t>(i));
  const int64_t n = static_cast<int64_t>(keep.size());
  Tensor xk = Tensor::empty(DType::F32, {n, D});
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(xk.ptr<float>() + r * D, x.ptr<float>() + keep[static_cast<size_t>(r)] * D, sizeof(float) * D);

  const std::string factory = o.factory.empty() ? choose_factory(n, D) : o.factory;
  auto v = VectorIndex::create(D, factory);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  if (n > 0) v->add(xk.ptr<float>(), ids.data(), n);
  SearchParams params = o.params;
  if (n > 0 && !params.nprobe && !params.ef_search) params = v->calibrate(xk.ptr<float>(), ids.data(), n);

  const std::string meta_tmp = staging_meta_path(dir);
  {
    auto m = fresh_meta(meta_tmp, "");
    m->begin();
    for (int64_t i = 0; i < n; ++i) {
      ImageRecord r = records[static_cast<size_t>(keep[static_cast<size_t>(i)])];
      r.id = i;
      m->insert(r);
    }
    m->commit();
  }
  install(dir, model, *v, meta_tmp, params, n, nlohmann::json::object(), overwrite);
  return n;
}

namespace {

// The generation a new write of DIR will make.
// (Generations keep counting over an --overwrite, so a server following the folder sees the new one.)
int64_t next_generation(const std::string& dir) { return std::max<int64_t>(Library::current_generation(dir), 0) + 1; }

}  // namespace

std::string Library::staging_meta_path(const std::string& dir) {
  return (fs::path(dir) / (gen_name("meta", next_generation(dir), "sqlite") + ".tmp")).string();
}

void Library::install(const std::string& dir, const pipeline::ModelIdentity& model, VectorIndex& v,
                      const std::string& meta_tmp, const SearchParams& params, int64_t next_id,
                      const nlohmann::json& build_info, bool overwrite) {
  WriterLock lock(dir, /*create=*/true);
  if (exists(dir) && !overwrite) fail("{}: already holds an index (use `clipkit index add`, or --overwrite)", dir);
  const int64_t gen = next_generation(dir);
  Library lib;
  lib.dir_ = dir;
  lib.info_.dir = dir;
  lib.info_.model = model;
  lib.info_.dim = v.dim();
  lib.info_.generation = gen - 1;
  lib.info_.params = params;
  lib.info_.build = build_info;
  lib.write_generation(v, meta_tmp, next_id);
}

void Library::write_generation(VectorIndex& v, const std::string& meta_tmp, int64_t next_id) {
  const fs::path d(dir_);
  const int64_t gen = info_.generation + 1;
  const std::string faiss_name = gen_name("index", gen, "faiss"), meta_name = gen_name("meta", gen, "sqlite");
  // 1. the new generation's files, complete and synced, under names nothing reads yet
  if (!v.storage_file().empty()) v.move_storage((d / (faiss_name + ".ivfdata")).string());
  v.save((d / faiss_name).string());
  {
    std::error_code ec;
    fs::rename(meta_tmp, d / meta_name, ec);
    if (ec) fail("{}: cannot move the metadata into place: {}", dir_, ec.message());
  }
  // 2. the switch: index.json names the new generation (atomic rename)
  auto meta = MetadataStore::open((d / meta_name).string(), false);
  info_.generation = gen;
  info_.faiss_file = faiss_name;
  info_.meta_file = meta_name;
  info_.factory = v.factory();
  info_.count = v.size();
  info_.splits = meta->split_counts();
  next_id_ = next_id;
  nlohmann::json j = {{"format", "clipkit-index"},
                      {"version", 1},
                      {"generation", gen},
                      {"faiss_file", faiss_name},
                      {"meta_file", meta_name},
                      {"model", info_.model.to_json()},
                      {"dim", info_.dim},
                      {"metric", "inner_product"},
                      {"normalized", true},
                      {"factory", info_.factory},
                      {"search", params_json(info_.params)},
                      {"count", info_.count},
                      {"next_id", next_id_},
                      {"build", info_.build},
                      {"updated_unix", std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()}};
  write_file_atomic((d / "index.json").string(), json_text(j, 1) + "\n");
  // 3. conveniences and cleanup: a crash here loses nothing
  relink(d, "index.faiss", faiss_name);
  relink(d, "meta.sqlite", meta_name);
  collect_garbage(d, gen);
}

std::unique_ptr<Library> Library::open(const std::string& dir) {
  // a writer may switch generations (and remove the old files) between reading index.json and
  // opening what it names: then open the new one
  for (int attempt = 0;; ++attempt) {
    const int64_t gen = current_generation(dir);
    try {
      return open_generation(dir);
    } catch (const Error&) {
      if (attempt >= 3 || current_generation(dir) == gen) throw;
    }
  }
}

std::unique_ptr<Library> Library::open_generation(const std::string& dir) {
  const fs::path jp = fs::path(dir) / "index.json";
  if (!fs::exists(jp)) fail("{}: not an index folder (no index.json; create one with `clipkit index build`)", dir);
  nlohmann::json j;
  if (!try_parse_json(read_file(jp.string()), &j) || !j.is_object() || !j.contains("format") ||
      j["format"] != "clipkit-index")
    fail("{}: not a clipkit index description", jp.string());
  std::unique_ptr<Library> lib(new Library());
  lib->dir_ = dir;
  auto& in = lib->info_;
  try {
    in.dir = dir;
    in.generation = json_integer(j.at("generation"), 0, INT64_MAX, jp.string() + ": \"generation\"");
    in.faiss_file = j.at("faiss_file").get<std::string>();
    in.meta_file = j.at("meta_file").get<std::string>();
    in.model = pipeline::ModelIdentity::from_json(j.at("model"));
    in.dim = json_integer(j.at("dim"), 1, INT32_MAX, jp.string() + ": \"dim\"");
    in.factory = j.value("factory", "");
    lib->next_id_ = json_integer(j.at("next_id"), 0, INT64_MAX, jp.string() + ": \"next_id\"");
    auto s = j.value("search", nlohmann::json::object());
    auto search_param = [&](const char* key) {
      return static_cast<int>(json_integer(s.value(key, nlohmann::json(0)), 0, INT32_MAX,
                                           fmt::format("{}: \"search.{}\"", jp.string(), key)));
    };
    in.params.nprobe = search_param("nprobe");
    in.params.ef_search = search_param("ef_search");
    in.build = j.value("build", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed: {}", jp.string(), e.what());
  }
  lib->vec_ = VectorIndex::load((fs::path(dir) / in.faiss_file).string());
  if (lib->vec_->dim() != in.dim)
    fail("{}: FAISS index has dimension {} but index.json says {}", dir, lib->vec_->dim(), in.dim);
  lib->meta_ = MetadataStore::open((fs::path(dir) / in.meta_file).string(), false);
  if (!in.factory.empty()) lib->vec_->set_factory(in.factory);
  in.count = lib->vec_->size();
  in.splits = lib->meta_->split_counts();
  return lib;
}

void Library::refuse_if_stale() const {
  const int64_t now = current_generation(dir_);
  if (now != info_.generation)
    fail("{}: the index changed since it was opened (generation {} is current, this is {}): open it again", dir_, now,
         info_.generation);
}

void Library::check_model(const pipeline::ModelIdentity& m) const {
  if (!info_.model.same_model(m))
    fail("{}: this index was built with model {}, but the query model is {} -- embeddings of different models "
         "or image preprocessing are not comparable (use the index's model and --image-backend, or rebuild the index)",
         dir_, info_.model.describe(), m.describe());
}

Tensor Library::export_vectors(std::vector<ImageRecord>* records) const {
  std::vector<int64_t> ids;
  std::vector<float> x;
  vec_->export_all(&ids, &x);
  const int64_t D = vec_->dim();
  auto recs = meta_->get_many(ids);  // in id order, missing ids skipped
  Tensor out = Tensor::empty(DType::F32, {static_cast<int64_t>(recs.size()), D});
  size_t r = 0;
  for (size_t i = 0; i < ids.size() && r < recs.size(); ++i) {
    if (ids[i] != recs[r].id) continue;
    std::copy_n(x.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(D)), D, out.ptr<float>() + r * D);
    ++r;
  }
  *records = std::move(recs);
  return out;
}

std::vector<SearchHit> Library::search(const float* q, int64_t k, const Filter& f, const SearchParams& p0) const {
  if (k <= 0) fail("k must be positive, got {}", k);
  SearchParams p = p0;
  if (!p.nprobe) p.nprobe = info_.params.nprobe;
  if (!p.ef_search) p.ef_search = info_.params.ef_search;
  std::vector<int64_t> allowed;
  if (!f.empty()) {
    allowed = meta_->ids_matching(f);
    if (allowed.empty()) return {};
  }
  const int64_t kk = std::max<int64_t>(1, std::min<int64_t>(k, vec_->size()));
  std::vector<float> sc(static_cast<size_t>(kk));
  std::vector<int64_t> ids(static_cast<size_t>(kk));
  if (vec_->size() == 0) return {};
  vec_->search(q, 1, kk, sc.data(), ids.data(), p, f.empty() ? nullptr : &allowed);
  std::vector<int64_t> found;
  for (int64_t i = 0; i < kk; ++i)
    if (ids[static_cast<size_t>(i)] >= 0) found.push_back(ids[static_cast<size_t>(i)]);
  auto recs = meta_->get_many(found);
  std::vector<SearchHit> out;
  size_t r = 0;
  for (int64_t i = 0; i < kk && r < recs.size(); ++i) {
    if (ids[static_cast<size_t>(i)] != recs[r].id) continue;  // vector without metadata: skip
    out.push_back({ids[static_cast<size_t>(i)], sc[static_cast<size_t>(i)], std::move(recs[r])});
    ++r;
  }
  return out;
}

int64_t Library::add(const Tensor& x, const std::vector<ImageRecord>& records) {
  check_rows(x, records, info_.dim);
  WriterLock lock(dir_);
  refuse_if_stale();
  const int64_t D = info_.dim;
  const fs::path d(dir_);
  const std::string meta_tmp = (d / (gen_name("meta", info_.generation + 1, "sqlite") + ".tmp")).string();
  std::vector<int64_t> ids;
  std::vector<float> xs;
  int64_t next = next_id_;
  {
    auto m = fresh_meta(meta_tmp, (d / info_.meta_file).string());
    m->begin();
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < records.size(); ++i) {
      if (!seen.insert(records[i].path).second || m->find_path(records[i].path) >= 0) continue;
      ImageRecord r = records[i];
      r.id = next++;
      m->insert(r);
      ids.push_back(r.id);
      xs.insert(xs.end(), x.ptr<float>() + static_cast<int64_t>(i) * D, x.ptr<float>() + (static_cast<int64_t>(i) + 1) * D);
    }
    m->commit();
  }
  if (ids.empty()) {
    fs::remove(meta_tmp);
    return 0;
  }
  detach_lists(*vec_, d, info_.generation + 1);
  vec_->add(xs.data(), ids.data(), static_cast<int64_t>(ids.size()));
  meta_.reset();
  write_generation(*vec_, meta_tmp, next);
  meta_ = MetadataStore::open((d / info_.meta_file).string(), false);
  return static_cast<int64_t>(ids.size());
}

int64_t Library::remove(const std::vector<int64_t>& ids_in) {
  WriterLock lock(dir_);
  refuse_if_stale();
  const fs::path d(dir_);
  std::vector<int64_t> ids = ids_in;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty()) return 0;
  const std::string meta_tmp = (d / (gen_name("meta", info_.generation + 1, "sqlite") + ".tmp")).string();
  int64_t n;
  {
    auto m = fresh_meta(meta_tmp, (d / info_.meta_file).string());
    m->begin();
    n = m->remove(ids);
    m->commit();
  }
  if (n == 0) {
    fs::remove(meta_tmp);
    return 0;
  }
  detach_lists(*vec_, d, info_.generation + 1);
  vec_->remove(ids);
  meta_.reset();
  write_generation(*vec_, meta_tmp, next_id_);
  meta_ = MetadataStore::open((d / info_.meta_file).string(), false);
  return n;
}

}  // namespace clipkit::index
