#include "index/metadata_store.h"

#include <sqlite3.h>

#include <algorithm>

#include "core/error.h"
#include "core/json.h"

namespace clipkit::index {

namespace {

// A prepared statement that finalizes itself.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql, const std::string& file) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) fail("{}: {}", file, sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
  void text(int i, const std::string& v) { sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void i64(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  void dbl(int i, double v) { sqlite3_bind_double(s, i, v); }
  std::string col_text(int i) const {
    auto* p = sqlite3_column_text(s, i);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, i))) : "";
  }
};

constexpr const char* kSelect =
    "SELECT id, path, relpath, captions, width, height, bytes, split, video, timestamp, extra FROM images";

ImageRecord read_row(const Stmt& st) {
  ImageRecord r;
  r.id = sqlite3_column_int64(st.s, 0);
  r.path = st.col_text(1);
  r.relpath = st.col_text(2);
  nlohmann::json caps;
  if (try_parse_json(st.col_text(3), &caps) && caps.is_array())
    for (auto& c : caps)
      if (c.is_string()) r.captions.push_back(c.get<std::string>());
  r.width = sqlite3_column_int(st.s, 4);
  r.height = sqlite3_column_int(st.s, 5);
  r.bytes = sqlite3_column_int64(st.s, 6);
  r.split = st.col_text(7);
  r.video = st.col_text(8);
  r.timestamp = sqlite3_column_double(st.s, 9);
  nlohmann::json ex;
  r.extra = try_parse_json(st.col_text(10), &ex) && ex.is_object() ? ex : nlohmann::json::object();
  return r;
}

std::string strip_slash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

nlohmann::json ImageRecord::to_json() const {
  nlohmann::json j;
  j["path"] = path;
  if (!relpath.empty()) j["relpath"] = relpath;
  if (!captions.empty()) {
    j["caption"] = captions.front();
    j["captions"] = captions;
  }
  if (width) j["width"] = width;
  if (height) j["height"] = height;
  if (bytes) j["bytes"] = bytes;
  if (!split.empty()) j["split"] = split;
  if (!video.empty()) j["video"] = video;
  if (timestamp >= 0) j["timestamp"] = timestamp;
  for (auto& [k, v] : extra.items())
    if (!j.contains(k)) j[k] = v;
  return j;
}

ImageRecord ImageRecord::from_json(const nlohmann::json& j) {
  ImageRecord r;
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  r.path = str("path");
  if (r.path.empty()) r.path = str("source");
  r.relpath = str("relpath");
  if (j.contains("captions") && j["captions"].is_array()) {
    for (auto& c : j["captions"])
      if (c.is_string()) r.captions.push_back(c.get<std::string>());
  } else if (j.contains("caption") && j["caption"].is_string()) {
    r.captions.push_back(j["caption"].get<std::string>());
  }
  if (j.contains("width") && j["width"].is_number_integer()) r.width = j["width"].get<int>();
  if (j.contains("height") && j["height"].is_number_integer()) r.height = j["height"].get<int>();
  if (j.contains("bytes") && j["bytes"].is_number_integer()) r.bytes = j["bytes"].get<int64_t>();
  r.split = str("split");
  r.video = str("video");
  if (j.contains("timestamp") && j["timestamp"].is_number()) r.timestamp = j["timestamp"].get<double>();
  static const char* known[] = {"row", "path", "source", "relpath", "captions", "caption", "width",
                                "height", "bytes", "split", "video", "timestamp", "id", "input"};
  for (auto& [k, v] : j.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known)) r.extra[k] = v;
  return r;
}

Filter Filter::from_json(const nlohmann::json& j) {
  Filter f;
  if (j.is_null()) return f;
  if (!j.is_object()) fail("filter must be an object like {{\"split\": \"val\", \"folder\": \"cats\"}}");
  for (auto& [k, v] : j.items()) {
    if (!v.is_string()) fail("filter \"{}\" must be a string", k);
    if (k == "split") f.split = v.get<std::string>();
    else if (k == "folder") f.folder = v.get<std::string>();
    else if (k == "video") f.video = v.get<std::string>();
    else fail("unknown filter \"{}\" (known: split, folder, video)", k);
  }
  return f;
}

std::unique_ptr<MetadataStore> MetadataStore::open(const std::string& path, bool writable) {
  std::unique_ptr<MetadataStore> m(new MetadataStore());
  m->path_ = path;
  int flags = writable ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  flags |= SQLITE_OPEN_NOMUTEX;  // we serialize with mu_
  if (sqlite3_open_v2(path.c_str(), &m->db_, flags, nullptr) != SQLITE_OK) {
    std::string err = m->db_ ? sqlite3_errmsg(m->db_) : "out of memory";
    fail("{}: cannot open the metadata database: {}", path, err);
  }
  if (writable) {
    m->exec(
        "CREATE TABLE IF NOT EXISTS images(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, relpath TEXT NOT NULL,"
        " captions TEXT NOT NULL, width INTEGER, height INTEGER, bytes INTEGER, split TEXT NOT NULL,"
        " video TEXT NOT NULL, timestamp REAL, extra TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS images_split ON images(split);"
        "CREATE INDEX IF NOT EXISTS images_video ON images(video);");
  } else {
    // A read-only open succeeds on any file; check the schema now so errors name the file.
    Stmt st(m->db_, "SELECT count(*) FROM images", path);
    if (sqlite3_step(st.s) != SQLITE_ROW) fail("{}: not a clipkit metadata database", path);
  }
  return m;
}

MetadataStore::~MetadataStore() { sqlite3_close(db_); }

void MetadataStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "unknown error";
    sqlite3_free(err);
    fail("{}: {}", path_, e);
  }
}

void MetadataStore::begin() {
  std::lock_guard<std::mutex> l(mu_);
  exec("BEGIN");
}
void MetadataStore::commit() {
  std::lock_guard<std::mutex> l(mu_);
  exec("COMMIT");
}

void MetadataStore::insert(const ImageRecord& r) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_,
          "INSERT INTO images(id, path, relpath, captions, width, height, bytes, split, video, timestamp, extra)"
          " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
          path_);
  st.i64(1, r.id);
  st.text(2, r.path);
  st.text(3, r.relpath);
  st.text(4, json_text(nlohmann::json(r.captions)));
  st.i64(5, r.width);
  st.i64(6, r.height);
  st.i64(7, r.bytes);
  st.text(8, r.split);
  st.text(9, r.video);
  st.dbl(10, r.timestamp);
  st.text(11, json_text(r.extra));
  if (sqlite3_step(st.s) != SQLITE_DONE) fail("{}: cannot insert {}: {}", path_, r.path, sqlite3_errmsg(db_));
}

int64_t MetadataStore::remove(const std::vector<int64_t>& ids) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, "DELETE FROM images WHERE id = ?", path_);
  int64_t n = 0;
  for (int64_t id : ids) {
    sqlite3_reset(st.s);
    st.i64(1, id);
    if (sqlite3_step(st.s) != SQLITE_DONE) fail("{}: {}", path_, sqlite3_errmsg(db_));
    n += sqlite3_changes(db_);
  }
  return n;
}

bool MetadataStore::get(int64_t id, ImageRecord* out) const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, (std::string(kSelect) + " WHERE id = ?").c_str(), path_);
  st.i64(1, id);
  if (sqlite3_step(st.s) != SQLITE_ROW) return false;
  *out = read_row(st);
  return true;
}

std::vector<ImageRecord> MetadataStore::get_many(const std::vector<int64_t>& ids) const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, (std::string(kSelect) + " WHERE id = ?").c_str(), path_);
  std::vector<ImageRecord> out;
  for (int64_t id : ids) {
    sqlite3_reset(st.s);
    st.i64(1, id);
    if (sqlite3_step(st.s) == SQLITE_ROW) out.push_back(read_row(st));
  }
  return out;
}

int64_t MetadataStore::find_path(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, "SELECT id FROM images WHERE path = ?", path_);
  st.text(1, path);
  return sqlite3_step(st.s) == SQLITE_ROW ? sqlite3_column_int64(st.s, 0) : -1;
}

std::vector<int64_t> MetadataStore::ids_matching(const Filter& f) const {
  std::lock_guard<std::mutex> l(mu_);
  std::string sql = "SELECT id FROM images WHERE 1";
  if (!f.split.empty()) sql += " AND split = ?1";
  if (!f.video.empty()) sql += " AND video = ?2";
  if (!f.folder.empty()) {
    // prefix on a '/' boundary, without LIKE so that '%' and '_' in names are literal
    sql +=
        " AND (path = ?3 OR substr(path, 1, length(?3) + 1) = ?3 || '/' OR relpath = ?3 OR"
        " substr(relpath, 1, length(?3) + 1) = ?3 || '/')";
  }
  sql += " ORDER BY id";
  Stmt st(db_, sql.c_str(), path_);
  if (!f.split.empty()) st.text(1, f.split);
  if (!f.video.empty()) st.text(2, f.video);
  if (!f.folder.empty()) st.text(3, strip_slash(f.folder));
  std::vector<int64_t> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) out.push_back(sqlite3_column_int64(st.s, 0));
  return out;
}

std::vector<int64_t> MetadataStore::ids_under(const std::string& folder) const {
  Filter f;
  f.folder = folder;
  return ids_matching(f);
}

int64_t MetadataStore::count() const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, "SELECT count(*) FROM images", path_);
  sqlite3_step(st.s);
  return sqlite3_column_int64(st.s, 0);
}

int64_t MetadataStore::max_id() const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, "SELECT coalesce(max(id), -1) FROM images", path_);
  sqlite3_step(st.s);
  return sqlite3_column_int64(st.s, 0);
}

std::vector<std::pair<std::string, int64_t>> MetadataStore::split_counts() const {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st(db_, "SELECT split, count(*) FROM images GROUP BY split ORDER BY split", path_);
  std::vector<std::pair<std::string, int64_t>> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) out.emplace_back(st.col_text(0), sqlite3_column_int64(st.s, 1));
  return out;
}

}  // namespace clipkit::index
