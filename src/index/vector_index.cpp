#include "index/vector_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <faiss/utils/distances.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::index {

namespace {

constexpr int64_t kExactUpTo = 50000;

faiss::IndexIDMap* as_idmap(faiss::Index* i) { return dynamic_cast<faiss::IndexIDMap*>(i); }

// FAISS's on-disk lists report with printf ("resizing F to N bytes", "IO_FLAG_ONDISK_SAME_DIR: ...").
// stdout carries the commands' results (--json), so while FAISS works on such lists its lines go
// to stderr.
class StdoutToStderr {
 public:
  explicit StdoutToStderr(bool on) {
    if (!on) return;
    std::fflush(stdout);
    saved_ = ::dup(1);
    if (saved_ >= 0) ::dup2(2, 1);
  }
  ~StdoutToStderr() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
  }
  StdoutToStderr(const StdoutToStderr&) = delete;
  StdoutToStderr& operator=(const StdoutToStderr&) = delete;

 private:
  int saved_ = -1;
};

// The structure under an IDMap (or the index itself).
faiss::Index* inner(faiss::Index* i) {
  if (auto* m = as_idmap(i)) return m->index;
  return i;
}

std::string infer_factory(faiss::Index* i) {
  std::string pre = as_idmap(i) ? "IDMap," : "";
  faiss::Index* in = inner(i);
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(in)) {
    std::string enc = dynamic_cast<faiss::IndexIVFFlat*>(ivf) ? "Flat" : "...";
    return pre + "IVF" + std::to_string(ivf->nlist) + "," + enc;
  }
  if (auto* h = dynamic_cast<faiss::IndexHNSW*>(in)) return pre + "HNSW" + std::to_string(h->hnsw.nb_neighbors(1));
  if (dynamic_cast<faiss::IndexFlat*>(in)) return pre + "Flat";
  return pre + "custom";
}

}  // namespace

std::string choose_factory(int64_t n, int64_t dim) {
  (void)dim;
  if (n <= kExactUpTo) return "IDMap,Flat";
  // ~2 sqrt(n) lists, a power of two between 256 and 65536: cheap to train on a few cores; the
  // number of lists probed per query is calibrated for recall at build time (calibrate()).
  int64_t target = static_cast<int64_t>(2 * std::sqrt(static_cast<double>(n)));
  int64_t nlist = 256;
  while (nlist * 2 <= target && nlist < 65536) nlist *= 2;
  return "IVF" + std::to_string(nlist) + ",Flat";
}

VectorIndex::~VectorIndex() = default;

std::unique_ptr<VectorIndex> VectorIndex::create(int64_t dim, const std::string& factory) {
  if (dim <= 0) fail("vector index: dimension must be positive, got {}", dim);
  std::unique_ptr<VectorIndex> v(new VectorIndex());
  try {
    v->idx_.reset(faiss::index_factory(static_cast<int>(dim), factory.c_str(), faiss::METRIC_INNER_PRODUCT));
  } catch (const std::exception& e) {
    fail("FAISS factory string \"{}\" is not valid: {}", factory, e.what());
  }
  // Everything but IVF needs an id map so our ids survive (and remove() can find them).
  if (!as_idmap(v->idx_.get()) && !faiss::ivflib::try_extract_index_ivf(v->idx_.get())) {
    auto* m = new faiss::IndexIDMap(v->idx_.release());
    m->own_fields = true;
    v->idx_.reset(m);
  }
  v->factory_ = factory;
  return v;
}

std::unique_ptr<VectorIndex> VectorIndex::load(const std::string& path) {
  std::unique_ptr<VectorIndex> v(new VectorIndex());
  if (!std::filesystem::exists(path)) fail("{}: no such file", path);
  try {
    // on-disk lists are looked for beside the index file, wherever the folder has moved
    StdoutToStderr quiet(std::filesystem::exists(path + ".ivfdata"));
    v->idx_.reset(faiss::read_index(path.c_str(), faiss::IO_FLAG_ONDISK_SAME_DIR));
  } catch (const std::exception& e) {
    fail("{}: not a readable FAISS index: {}", path, e.what());
  }
  v->factory_ = infer_factory(v->idx_.get());
  return v;
}

void VectorIndex::save(const std::string& path) const {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    faiss::write_index(idx_.get(), tmp.c_str());
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    fail("{}: cannot write the FAISS index: {}", path, e.what());
  }
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    std::remove(tmp.c_str());
    fail("{}: cannot sync the FAISS index", path);
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("{}: cannot rename the FAISS index into place", path);
  }
}

std::unique_ptr<VectorIndex> VectorIndex::wrap(faiss::Index* idx, const std::string& factory) {
  std::unique_ptr<VectorIndex> v(new VectorIndex());
  v->idx_.reset(idx);
  if (!as_idmap(idx) && !faiss::ivflib::try_extract_index_ivf(idx))
    fail("{}: an index without its own ids cannot hold our ids", factory);
  v->factory_ = factory.empty() ? infer_factory(idx) : factory;
  return v;
}

namespace {

faiss::OnDiskInvertedLists* on_disk_lists(faiss::Index* i) {
  auto* ivf = faiss::ivflib::try_extract_index_ivf(i);
  return ivf ? dynamic_cast<faiss::OnDiskInvertedLists*>(ivf->invlists) : nullptr;
}

// A compact copy of the entries of `from` (in order) in a new file at path. FAISS cannot map an
// empty lists file: with no entries at all the lists stay in memory.
faiss::InvertedLists* copy_lists(const std::vector<const faiss::InvertedLists*>& from, size_t nlist, size_t code_size,
                                 const std::string& path) {
  size_t total = 0;
  for (auto* il : from)
    for (size_t l = 0; l < nlist; ++l) total += il->list_size(l);
  if (total == 0) return new faiss::ArrayInvertedLists(nlist, code_size);
  StdoutToStderr quiet(true);
  std::error_code ec;
  std::filesystem::remove(path, ec);
  auto* od = new faiss::OnDiskInvertedLists(nlist, code_size, path.c_str());
  try {
    od->merge_from(const_cast<const faiss::InvertedLists**>(from.data()), static_cast<int>(from.size()));
  } catch (...) {
    delete od;
    throw;
  }
  return od;
}

// A part file of ivf's structure, mapped rather than loaded (its lists stay in the page cache), and
// its IVF; an Error naming the file when it is not a part of ivf.
std::pair<std::unique_ptr<faiss::Index>, const faiss::IndexIVF*> map_part(const std::string& f, const faiss::IndexIVF& ivf) {
  std::unique_ptr<faiss::Index> part(faiss::read_index(f.c_str(), faiss::IO_FLAG_MMAP));
  const auto* p = faiss::ivflib::try_extract_index_ivf(part.get());
  if (!p || p->nlist != ivf.nlist || p->code_size != ivf.code_size) fail("{}: not a part of this index", f);
  return {std::move(part), p};
}

// Gives every in-memory list of ivf the capacity of its merged size (its entries plus those of
// the same list in each part file, read through a mapping). Merging appends part after part, and
// std::vector grows geometrically: without this the lists' slack averaged half their size again
// (a 10M x 512 IVF4096,SQ8 build peaked at 8.0 GiB for a 4.85 GiB index).
void reserve_merged_lists(faiss::IndexIVF* ivf, const std::vector<std::string>& files) {
  auto* lists = dynamic_cast<faiss::ArrayInvertedLists*>(ivf->invlists);
  if (!lists) return;
  std::vector<size_t> total(ivf->nlist);
  for (size_t l = 0; l < ivf->nlist; ++l) total[l] = lists->list_size(l);
  for (auto& f : files) {
    const auto [part, p] = map_part(f, *ivf);
    for (size_t l = 0; l < ivf->nlist; ++l) total[l] += p->invlists->list_size(l);
  }
  for (size_t l = 0; l < ivf->nlist; ++l) {
    lists->codes[l].reserve(total[l] * ivf->code_size);
    lists->ids[l].reserve(total[l]);
  }
}

}  // namespace

std::string VectorIndex::storage_file() const {
  auto* od = on_disk_lists(idx_.get());
  return od ? od->filename : std::string();
}

void VectorIndex::move_storage(const std::string& path) {
  auto* od = on_disk_lists(idx_.get());
  if (!od || od->filename == path) return;
  std::error_code ec;
  std::filesystem::rename(od->filename, path, ec);
  if (ec) fail("{}: cannot move the inverted lists from {}: {}", path, od->filename, ec.message());
  od->filename = path;  // the mapping stays valid: same file
}

void VectorIndex::copy_storage(const std::string& path) {
  auto* od = on_disk_lists(idx_.get());
  if (!od) return;
  try {
    faiss::ivflib::try_extract_index_ivf(idx_.get())->replace_invlists(copy_lists({od}, od->nlist, od->code_size, path),
                                                                        true);
  } catch (const faiss::FaissException& e) {
    fail("{}: cannot copy the inverted lists: {}", path, e.what());
  }
}

void VectorIndex::append_parts(const std::vector<std::string>& files, const std::string& lists_file) {
  auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get());
  try {
    if (!lists_file.empty()) {
      if (!ivf) fail("{}: only IVF structures keep their lists on disk", factory_);
      if (ivf->ntotal != 0) fail("{}: lists can be moved to disk only while merging into an empty index", factory_);
      // all parts at once, mapped: memory stays bounded by the page cache
      std::vector<std::unique_ptr<faiss::Index>> parts;
      std::vector<const faiss::InvertedLists*> lists = {ivf->invlists};
      int64_t added = 0;
      for (auto& f : files) {
        auto [part, p] = map_part(f, *ivf);
        parts.push_back(std::move(part));
        lists.push_back(p->invlists);
        added += p->ntotal;
      }
      ivf->replace_invlists(copy_lists(lists, ivf->nlist, ivf->code_size, lists_file), true);
      ivf->ntotal += added;
      if (idx_.get() != ivf) idx_->ntotal = ivf->ntotal;
      return;
    }
    if (ivf) reserve_merged_lists(ivf, files);
    for (auto& f : files) {
      auto part = load(f);
      if (ivf) {
        faiss::ivflib::merge_into(idx_.get(), part->idx_.get(), false);
      } else {
        std::vector<int64_t> ids;
        std::vector<float> x;
        part->export_all(&ids, &x);
        add(x.data(), ids.data(), static_cast<int64_t>(ids.size()));
      }
    }
  } catch (const faiss::FaissException& e) {
    fail("{}: cannot merge the parts: {}", factory_, e.what());
  }
}

int64_t VectorIndex::disk_bytes() const {
  auto* od = on_disk_lists(idx_.get());
  return od ? static_cast<int64_t>(od->totsize) : 0;
}

int64_t VectorIndex::memory_bytes() const {
  // what write_index would write, less on-disk lists (whose file the serialization only names)
  struct Counter : faiss::IOWriter {
    size_t n = 0;
    size_t operator()(const void*, size_t size, size_t nitems) override {
      n += size * nitems;
      return nitems;
    }
  } c;
  try {
    faiss::write_index(idx_.get(), &c);
  } catch (const faiss::FaissException& e) {
    fail("{}: cannot measure the index: {}", factory_, e.what());
  }
  return static_cast<int64_t>(c.n);
}

int64_t VectorIndex::dim() const { return idx_->d; }
int64_t VectorIndex::size() const { return idx_->ntotal; }
bool VectorIndex::needs_training() const { return !idx_->is_trained; }

void VectorIndex::train(const float* x, int64_t n) {
  if (idx_->is_trained) return;
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get()); ivf && n < static_cast<int64_t>(ivf->nlist))
    fail("{} needs at least {} vectors to train, got {} (use a smaller IVF or \"IDMap,Flat\")", factory_, ivf->nlist, n);
  try {
    // k-means on at most 64 points per list, 10 iterations: FAISS's defaults (256 per list, 25
    // iterations) cost 10x the time for no measurable recall on our data.
    if (auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get())) {
      ivf->cp.niter = 10;
      // polysemous training (a slow simulated annealing over PQ codes) only serves Hamming
      // pre-filtering, which clipkit's searches never use
      if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) pq->do_polysemous_training = false;
      const int64_t cap = 64 * static_cast<int64_t>(ivf->nlist);
      if (n > cap) {
        std::vector<float> sub(static_cast<size_t>(cap * idx_->d));
        for (int64_t i = 0; i < cap; ++i)
          std::memcpy(sub.data() + i * idx_->d, x + (i * n / cap) * idx_->d, sizeof(float) * idx_->d);
        idx_->train(cap, sub.data());
        return;
      }
    }
    idx_->train(n, x);
  } catch (const std::exception& e) {
    fail("training {} on {} vectors failed: {}", factory_, n, e.what());
  }
}

void VectorIndex::add(const float* x, const int64_t* ids, int64_t n) {
  if (n == 0) return;
  if (!idx_->is_trained) train(x, n);
  try {
    StdoutToStderr quiet(!storage_file().empty());
    idx_->add_with_ids(n, x, ids);
  } catch (const std::exception& e) {
    fail("adding {} vectors to {} failed: {}", n, factory_, e.what());
  }
}

int64_t VectorIndex::remove(const std::vector<int64_t>& ids) {
  if (ids.empty()) return 0;
  faiss::IDSelectorBatch sel(ids.size(), ids.data());
  try {
    StdoutToStderr quiet(!storage_file().empty());
    return static_cast<int64_t>(idx_->remove_ids(sel));
  } catch (const std::exception& e) {
    fail("{} cannot remove vectors ({}); rebuild the index with a structure that can (Flat or IVF)", factory_,
         e.what());
  }
}

void VectorIndex::export_all(std::vector<int64_t>* ids, std::vector<float>* x) const {
  const int64_t n = size(), d = dim();
  std::vector<int64_t> got;
  std::vector<float> v;
  got.reserve(static_cast<size_t>(n));
  v.reserve(static_cast<size_t>(n * d));
  try {
    if (auto* m = as_idmap(idx_.get())) {
      // IDMap: the inner structure holds rows 0..n-1 in the id map's order.
      v.resize(static_cast<size_t>(n * d));
      if (n) m->index->reconstruct_n(0, n, v.data());
      got.assign(m->id_map.begin(), m->id_map.end());
    } else if (auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get())) {
      // IVF: walk every inverted list; the stored ids are ours.
      std::vector<float> row(static_cast<size_t>(ivf->d));
      for (size_t l = 0; l < ivf->nlist; ++l) {
        const size_t ls = ivf->invlists->list_size(l);
        if (!ls) continue;
        faiss::InvertedLists::ScopedIds lids(ivf->invlists, l);
        for (size_t off = 0; off < ls; ++off) {
          ivf->reconstruct_from_offset(static_cast<int64_t>(l), static_cast<int64_t>(off), row.data());
          got.push_back(lids[off]);
          v.insert(v.end(), row.begin(), row.end());
        }
      }
      // A transform in front (PCA, OPQ...): map the stored vectors back to the input space.
      if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(idx_.get())) {
        std::vector<float> back(got.size() * static_cast<size_t>(d));
        if (!got.empty()) pt->reverse_chain(static_cast<int64_t>(got.size()), v.data(), back.data());
        v = std::move(back);
      }
    } else {
      fail("{}: cannot list the stored vectors of this structure", factory_);
    }
  } catch (const faiss::FaissException& e) {
    fail("{}: cannot read the stored vectors back: {}", factory_, e.what());
  }
  // id order
  std::vector<size_t> order(got.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return got[a] < got[b]; });
  ids->resize(got.size());
  x->resize(got.size() * static_cast<size_t>(d));
  for (size_t i = 0; i < order.size(); ++i) {
    (*ids)[i] = got[order[i]];
    std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(order[i] * static_cast<size_t>(d)), d,
                x->begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(d)));
  }
}

SearchParams VectorIndex::default_params() const {
  SearchParams p;
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get()))
    p.nprobe = static_cast<int>(std::max<size_t>(16, std::min<size_t>(ivf->nlist, ivf->nlist / 8)));
  if (dynamic_cast<faiss::IndexHNSW*>(inner(idx_.get()))) p.ef_search = 128;
  return p;
}

std::string VectorIndex::describe() const {
  std::string s = factory_ + ": " + std::to_string(size()) + " vectors of dim " + std::to_string(dim());
  auto p = default_params();
  if (p.nprobe) s += ", nprobe " + std::to_string(p.nprobe);
  if (p.ef_search) s += ", efSearch " + std::to_string(p.ef_search);
  return s;
}

void VectorIndex::search(const float* q, int64_t nq, int64_t k, float* scores, int64_t* ids, const SearchParams& p0,
                         const std::vector<int64_t>* allowed) const {
  if (k <= 0) fail("search: k must be positive, got {}", k);
  SearchParams p = p0;
  SearchParams d = default_params();
  if (!p.nprobe) p.nprobe = d.nprobe;
  if (!p.ef_search) p.ef_search = d.ef_search;
  std::fill(ids, ids + nq * k, -1);
  std::fill(scores, scores + nq * k, -std::numeric_limits<float>::infinity());
  if (idx_->ntotal == 0) return;
  faiss::Index* in = inner(idx_.get());
  try {
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(in)) h->hnsw.efSearch = std::max<int>(p.ef_search, static_cast<int>(k));
    auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get());
    if (!allowed) {
      if (ivf) {
        faiss::SearchParametersIVF sp;
        sp.nprobe = static_cast<size_t>(p.nprobe);
        idx_->search(nq, q, k, scores, ids, &sp);
      } else {
        idx_->search(nq, q, k, scores, ids);
      }
    } else if (ivf && ivf == idx_.get()) {
      // IVF stores our ids: filter with a selector; visit every list so a sparse filter still finds k.
      faiss::IDSelectorBatch sel(allowed->size(), allowed->data());
      faiss::SearchParametersIVF sp;
      sp.sel = &sel;
      sp.nprobe = static_cast<size_t>(p.nprobe);
      idx_->search(nq, q, k, scores, ids, &sp);
      if (static_cast<int64_t>(allowed->size()) > 0) {
        bool short_ = false;
        for (int64_t i = 0; i < nq; ++i)
          if (ids[i * k + std::min<int64_t>(k, static_cast<int64_t>(allowed->size())) - 1] < 0) short_ = true;
        if (short_) {
          sp.nprobe = ivf->nlist;
          idx_->search(nq, q, k, scores, ids, &sp);
        }
      }
    } else if (auto* m = as_idmap(idx_.get()); m && dynamic_cast<faiss::IndexFlat*>(in)) {
      // Exact: score only the allowed rows.
      std::unordered_set<int64_t> want(allowed->begin(), allowed->end());
      std::vector<int64_t> rows;
      for (size_t r = 0; r < m->id_map.size(); ++r)
        if (want.count(m->id_map[r])) rows.push_back(static_cast<int64_t>(r));
      auto* flat = dynamic_cast<faiss::IndexFlat*>(in);
      const float* xb = flat->get_xb();
      const int64_t D = idx_->d;
      std::vector<int64_t> sub(static_cast<size_t>(k));
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<std::pair<float, int64_t>> sc(rows.size());
        for (size_t j = 0; j < rows.size(); ++j) {
          const float* x = xb + rows[j] * D;
          float s = 0;
          for (int64_t c = 0; c < D; ++c) s += x[c] * q[i * D + c];
          sc[j] = {s, m->id_map[static_cast<size_t>(rows[j])]};
        }
        const size_t kk = std::min<size_t>(static_cast<size_t>(k), sc.size());
        std::partial_sort(sc.begin(), sc.begin() + static_cast<int64_t>(kk), sc.end(),
                          [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
        for (size_t j = 0; j < kk; ++j) {
          scores[i * k + static_cast<int64_t>(j)] = sc[j].first;
          ids[i * k + static_cast<int64_t>(j)] = sc[j].second;
        }
      }
    } else {
      // Other structures: over-fetch and keep the allowed ids, widening until k are found or all seen.
      std::unordered_set<int64_t> want(allowed->begin(), allowed->end());
      for (int64_t i = 0; i < nq; ++i) {
        int64_t kk = std::max<int64_t>(k * 8, 64);
        while (true) {
          kk = std::min<int64_t>(kk, idx_->ntotal);
          std::vector<float> s(static_cast<size_t>(kk));
          std::vector<int64_t> id(static_cast<size_t>(kk));
          if (auto* h = dynamic_cast<faiss::IndexHNSW*>(in)) h->hnsw.efSearch = std::max<int>(p.ef_search, static_cast<int>(kk));
          idx_->search(1, q + i * idx_->d, kk, s.data(), id.data());
          int64_t got = 0;
          for (int64_t j = 0; j < kk && got < k; ++j)
            if (id[static_cast<size_t>(j)] >= 0 && want.count(id[static_cast<size_t>(j)])) {
              ids[i * k + got] = id[static_cast<size_t>(j)];
              scores[i * k + got] = s[static_cast<size_t>(j)];
              ++got;
            }
          if (got >= k || kk >= idx_->ntotal) break;
          kk *= 4;
        }
      }
    }
  } catch (const clipkit::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("searching {} failed: {}", factory_, e.what());
  }
  // FAISS pads missing results with id -1 and +-inf/garbage scores: normalize them.
  for (int64_t i = 0; i < nq * k; ++i)
    if (ids[i] < 0) scores[i] = -std::numeric_limits<float>::infinity();
}

void brute_force_search(const float* x, int64_t n, int64_t dim, const float* q, int64_t nq, int64_t k, int64_t* ids,
                        float* scores) {
  std::vector<float> s(static_cast<size_t>(nq * k));
  faiss::knn_inner_product(q, x, static_cast<size_t>(dim), static_cast<size_t>(nq), static_cast<size_t>(n),
                           static_cast<size_t>(k), s.data(), ids);
  if (scores) std::copy(s.begin(), s.end(), scores);
}

SearchParams VectorIndex::calibrate(const float* x, const int64_t* ids, int64_t n, double target, int64_t nq) {
  SearchParams best = default_params();
  auto* ivf = faiss::ivflib::try_extract_index_ivf(idx_.get());
  const bool hnsw = dynamic_cast<faiss::IndexHNSW*>(inner(idx_.get())) != nullptr;
  if ((!ivf && !hnsw) || n == 0) return best;
  const int64_t k = std::min<int64_t>(10, n), D = idx_->d;
  nq = std::min(nq, n);
  // queries: rows spread over the data (each finds itself too, so aim a little higher than asked)
  std::vector<float> q(static_cast<size_t>(nq * D));
  for (int64_t i = 0; i < nq; ++i) std::memcpy(q.data() + i * D, x + ((2 * i + 1) * n / (2 * nq)) * D, sizeof(float) * D);
  std::vector<int64_t> truth(static_cast<size_t>(nq * k)), got(static_cast<size_t>(nq * k));
  std::vector<float> sc(static_cast<size_t>(nq * k));
  brute_force_search(x, n, D, q.data(), nq, k, truth.data());
  auto recall = [&](const SearchParams& p) {
    search(q.data(), nq, k, sc.data(), got.data(), p);
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t want = ids[truth[static_cast<size_t>(i * k + j)]];
        for (int64_t l = 0; l < k; ++l) hit += got[static_cast<size_t>(i * k + l)] == want;
      }
    return static_cast<double>(hit) / static_cast<double>(nq * k);
  };
  const double aim = std::min(1.0, target + 0.01);
  if (ivf) {
    const int nlist = static_cast<int>(ivf->nlist);
    // 8, 12, 16, 24, 32, 48, ... up to every list
    for (int p = std::min(8, nlist), step = 0;; p = std::min(nlist, (step++ % 2) ? p * 4 / 3 : p * 3 / 2)) {
      best.nprobe = p;
      if (p >= nlist || recall(best) >= aim) break;
    }
  } else {
    for (int ef = 16;; ef *= 2) {
      best.ef_search = ef;
      if (ef >= 4096 || recall(best) >= aim) break;
    }
  }
  return best;
}

}  // namespace clipkit::index
