// The metadata half of an image library: one SQLite table, one row per indexed image, keyed by the
// same int64 id as its vector in FAISS.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

struct sqlite3;

namespace clipkit::index {

struct ImageRecord {
  int64_t id = -1;
  std::string path;     // absolute path of the image file (what /v1/images/{id} serves)
  std::string relpath;  // path under the root it was found in (folder filters match this or `path`)
  std::vector<std::string> captions;
  int width = 0, height = 0;
  int64_t bytes = 0;
  std::string split;      // "train" / "val" for COCO, "" otherwise
  std::string video;      // source video for frames, "" otherwise
  double timestamp = -1;  // seconds into `video`, -1 when not a frame
  nlohmann::json extra = nlohmann::json::object();  // anything else the embedder recorded (e.g. image_id)

  nlohmann::json to_json() const;  // {"path", "caption"/"captions", "width", ...} without id
  static ImageRecord from_json(const nlohmann::json& j);  // the .jsonl rows bulk_embed writes
};

// Metadata filters: an image passes when it matches every non-empty field.
struct Filter {
  std::string split;   // exact
  std::string folder;  // prefix of path (absolute) or of relpath (relative), on a '/' boundary
  std::string video;   // exact
  bool empty() const { return split.empty() && folder.empty() && video.empty(); }
  static Filter from_json(const nlohmann::json& j);  // {"split": ..., "folder": ..., "video": ...}; throws on unknown keys
};

class MetadataStore {
 public:
  // Opens (creating the schema when `writable` and missing). Throws Error naming the file.
  static std::unique_ptr<MetadataStore> open(const std::string& path, bool writable);
  ~MetadataStore();

  void begin();
  void commit();
  // Inserts with r.id; throws if the id or the path is already present.
  void insert(const ImageRecord& r);
  int64_t remove(const std::vector<int64_t>& ids);
  bool get(int64_t id, ImageRecord* out) const;
  std::vector<ImageRecord> get_many(const std::vector<int64_t>& ids) const;  // in order; missing ids skipped
  int64_t find_path(const std::string& path) const;                         // -1 if absent
  std::vector<int64_t> ids_matching(const Filter& f) const;                 // sorted
  std::vector<int64_t> ids_under(const std::string& folder) const;          // path or relpath prefix
  int64_t count() const;
  int64_t max_id() const;  // -1 when empty
  std::vector<std::pair<std::string, int64_t>> split_counts() const;

 private:
  MetadataStore() = default;
  void exec(const char* sql) const;
  sqlite3* db_ = nullptr;
  std::string path_;
  mutable std::mutex mu_;  // one connection, shared by the server's request threads
};

}  // namespace clipkit::index
