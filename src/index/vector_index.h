// The vector half of an image library: a FAISS index over L2-normalized embeddings, searched by
// inner product (= cosine). Ids are ours (int64, from the metadata store), so remove() works for
// every structure: flat indexes are wrapped in an IndexIDMap, IVF indexes carry ids natively.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace clipkit::index {

// The FAISS factory string the library uses for `n` vectors of dimension `dim` when none is given:
// exact search ("IDMap,Flat") up to 50,000 vectors, an inverted file ("IVF<nlist>,Flat", nlist ~ 2 sqrt(n))
// above, whose nprobe is calibrated for recall at build time.
std::string choose_factory(int64_t n, int64_t dim);

// Search-time knobs; 0 = the structure's default (see VectorIndex::default_params).
struct SearchParams {
  int nprobe = 0;     // IVF: lists visited per query
  int ef_search = 0;  // HNSW: candidate list size
};

class VectorIndex {
 public:
  // factory: a FAISS index_factory string ("Flat", "IVF1024,Flat", "HNSW32", "IVF4096,SQ8", ...);
  // structures without their own ids get an IndexIDMap in front. Throws Error on a bad string.
  static std::unique_ptr<VectorIndex> create(int64_t dim, const std::string& factory);
  // A file FAISS wrote (write_index); throws Error naming the file.
  static std::unique_ptr<VectorIndex> load(const std::string& path);
  ~VectorIndex();

  // Written to a temp file, fsync'ed, renamed over `path`: readers see the old or the new file.
  void save(const std::string& path) const;

  int64_t dim() const;
  int64_t size() const;
  const std::string& factory() const { return factory_; }
  void set_factory(const std::string& f) { factory_ = f; }  // the string it was made from (index.json keeps it)
  bool needs_training() const;
  // Trains on x [n, dim] (a no-op for structures that need none). Throws if n is too small.
  void train(const float* x, int64_t n);
  // Adds x [n, dim] under ids. Untrained structures are trained on x first.
  void add(const float* x, const int64_t* ids, int64_t n);
  // Every stored vector with its id, in ascending id order: ids [n], x [n * dim]. Exact for Flat,
  // IVF-Flat and HNSW-Flat; the decoded approximation for compressed codes (SQ8, PQ...). Throws
  // Error for structures that cannot give their vectors back.
  void export_all(std::vector<int64_t>* ids, std::vector<float>* x) const;
  // Returns how many of `ids` were present and removed. Throws for structures that cannot remove.
  int64_t remove(const std::vector<int64_t>& ids);

  // q [nq, dim] -> scores/ids [nq, k], best first; missing results are id -1, score -inf.
  // allowed: when non-null, only these ids may be returned (sorted or not).
  void search(const float* q, int64_t nq, int64_t k, float* scores, int64_t* ids, const SearchParams& p = {},
              const std::vector<int64_t>* allowed = nullptr) const;

  // The cheapest search setting (IVF nprobe, HNSW efSearch) reaching recall@10 >= target against
  // exact search, measured with nq of the indexed rows x [n, D] (stored under ids) as queries.
  SearchParams calibrate(const float* x, const int64_t* ids, int64_t n, double target = 0.95, int64_t nq = 100);

  // Uncalibrated defaults: nprobe = nlist / 8 (at least 16), efSearch = 128.
  SearchParams default_params() const;
  std::string describe() const;  // "IVF1024,Flat: 123456 vectors of dim 512, nprobe 128"

  faiss::Index* raw() const { return idx_.get(); }
  // Takes ownership of a FAISS index (ids must be ours: an IVF, or an IndexIDMap).
  static std::unique_ptr<VectorIndex> wrap(faiss::Index* idx, const std::string& factory);

  // ---- inverted lists on disk (FAISS OnDiskInvertedLists, read through mmap) ----
  // The file the lists live in; "" when they are in memory (or the structure has none).
  std::string storage_file() const;
  // Renames the lists' file to `path` (same file system) and records the new name.
  void move_storage(const std::string& path);
  // Copies the lists into a fresh file at `path` and uses the copy from then on: an index whose
  // file an older generation still names must not be changed in place.
  void copy_storage(const std::string& path);

  // Appends the vectors of indexes saved by save() (same trained structure, disjoint ids), in
  // order: IVF lists are merged (FAISS merge_into), other structures re-add the parts' stored
  // vectors. Each list then holds its entries in part order -- what adding the parts' vectors one
  // after the other gives. With lists_file (IVF only, index still empty) the merged lists go to
  // that file (on-disk lists), in one pass reading the parts through mmap.
  void append_parts(const std::vector<std::string>& files, const std::string& lists_file = "");

  // Bytes held in memory when loaded (the FAISS structures; lists on disk are not counted) and
  // bytes of the on-disk lists.
  int64_t memory_bytes() const;
  int64_t disk_bytes() const;

 private:
  VectorIndex() = default;
  std::unique_ptr<faiss::Index> idx_;
  std::string factory_;
};

// Exact top-k by inner product over x [n, dim] (for tests and recall measurements).
void brute_force_search(const float* x, int64_t n, int64_t dim, const float* q, int64_t nq, int64_t k, int64_t* ids,
                        float* scores = nullptr);

}  // namespace clipkit::index
