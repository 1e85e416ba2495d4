// An image library on disk: a folder holding the FAISS index, the SQLite metadata and index.json
// (which model made it, the FAISS structure, counts).
//
//   DIR/index.json            written last, atomically: names the current generation's files
//   DIR/index.<gen>.faiss     FAISS write_index format (readable by faiss.read_index)
//   DIR/index.<gen>.faiss.ivfdata   the inverted lists, for an index built with them on disk
//                             (faiss.read_index(..., faiss.IO_FLAG_ONDISK_SAME_DIR))
//   DIR/meta.<gen>.sqlite     table `images`, one row per vector, same id
//   DIR/index.faiss, DIR/meta.sqlite   symlinks to the current generation, for other tools
//
// Every change writes a new generation next to the current one and then switches index.json to
// it, so a crash mid-write leaves the previous generation intact and in use. Writers (build, add,
// remove) hold WriterLock for their whole run; readers take no lock: a reader opening the library
// while a writer switches generations retries on the new one, and a long-running reader (the
// server) notices a new generation from current_generation() and opens it beside the old one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/metadata_store.h"
#include "index/vector_index.h"
#include "pipeline/bulk_embed.h"

namespace clipkit::index {

struct SearchHit {
  int64_t id = -1;
  float score = 0;
  ImageRecord record;
};

struct LibraryInfo {
  std::string dir, factory, faiss_file, meta_file;
  pipeline::ModelIdentity model;
  int64_t count = 0, generation = 0, dim = 0;
  SearchParams params;
  std::vector<std::pair<std::string, int64_t>> splits;
  // How it was built, when index_from_shards (shard_build.h) built it: memory and disk bytes,
  // recall@10 on held-out queries at the chosen nprobe, latency, the embeddings folder...
  nlohmann::json build = nlohmann::json::object();
  nlohmann::json to_json() const;
};

// The lock of a library's writers: Library::build/add/remove take it for their write, and a command
// takes it for its whole run (embedding included: the work folders DIR/embeddings* are shared).
// flock(2) on DIR/.writer.lock, so a killed writer never leaves it behind; a second process gets
// Error naming the holder's pid at once. Nested locks of one process on one folder share it.
class WriterLock {
 public:
  // create: make DIR when missing (build); otherwise a missing DIR is Error "not an index folder".
  explicit WriterLock(const std::string& dir, bool create = false);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  std::string key_;
};

struct BuildOptions {
  std::string factory;  // "" = choose_factory(n, dim)
  SearchParams params;  // stored defaults; 0 = the structure's defaults
};

class Library {
 public:
  // Creates DIR (must not hold a library unless `overwrite`) from rows x [n, D] and their records
  // (ids are assigned 0..n-1; a path seen twice keeps its first row). Returns the number indexed.
  static int64_t build(const std::string& dir, const pipeline::ModelIdentity& model, const Tensor& x,
                       const std::vector<ImageRecord>& records, const BuildOptions& o, bool overwrite = false);
  static bool exists(const std::string& dir);
  // Makes `v` (its ids 0..next_id-1 or fewer) with the metadata database at meta_tmp the next
  // generation of DIR (a new library unless DIR holds one and `overwrite`). Lists kept on disk
  // are moved into the generation's own file.
  static void install(const std::string& dir, const pipeline::ModelIdentity& model, VectorIndex& v,
                      const std::string& meta_tmp, const SearchParams& params, int64_t next_id,
                      const nlohmann::json& build_info, bool overwrite);
  // Where install wants the metadata database written first, so it is renamed (not copied) into place.
  static std::string staging_meta_path(const std::string& dir);

  // Opens the current generation. Throws Error naming the folder when it is not a library.
  static std::unique_ptr<Library> open(const std::string& dir);
  // The generation DIR/index.json names now; -1 when there is none or it cannot be read.
  static int64_t current_generation(const std::string& dir);

  const LibraryInfo& info() const { return info_; }
  const pipeline::ModelIdentity& model() const { return info_.model; }
  // Throws Error unless `m` is the model this library was built with.
  void check_model(const pipeline::ModelIdentity& m) const;

  // q: one L2-normalized embedding [D]. Best first; at most k hits, fewer when the filter allows fewer.
  std::vector<SearchHit> search(const float* q, int64_t k, const Filter& f = {}, const SearchParams& p = {}) const;
  bool get(int64_t id, ImageRecord* out) const { return meta_->get(id, out); }
  const VectorIndex& vectors() const { return *vec_; }
  const MetadataStore& metadata() const { return *meta_; }

  // Every indexed vector [n, D] (the index's stored copy, see VectorIndex::export_all) with its
  // record, in id order. Rows whose metadata is missing are dropped.
  Tensor export_vectors(std::vector<ImageRecord>* records) const;

  // Writes a new generation with these rows added (paths already indexed are skipped, new ids
  // continue after the largest ever used). Returns how many were added.
  int64_t add(const Tensor& x, const std::vector<ImageRecord>& records);
  // Writes a new generation without these ids. Returns how many were removed.
  int64_t remove(const std::vector<int64_t>& ids);

 private:
  Library() = default;
  static std::unique_ptr<Library> open_generation(const std::string& dir);
  // Error when another writer switched generations since this one was opened (its changes would be lost).
  void refuse_if_stale() const;
  void write_generation(VectorIndex& v, const std::string& meta_tmp, int64_t next_id);
  std::string dir_;
  LibraryInfo info_;
  int64_t next_id_ = 0;
  std::unique_ptr<VectorIndex> vec_;
  std::unique_ptr<MetadataStore> meta_;
};

}  // namespace clipkit::index
