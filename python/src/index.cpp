// clipkit.Index's C++ half: an index::Library (FAISS vectors + SQLite metadata) opened, built,
// grown and searched as `clipkit index` / `clipkit search` do, with results in their JSON shape.
#include <pybind11/stl.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "index/library.h"
#include "index/query.h"
#include "backend/backend.h"
#include "pipeline/bulk_embed.h"

namespace clipkit::py {
namespace {

namespace fs = std::filesystem;

// The images to index: a folder (recursive), a COCO root (captions and split kept), or paths.
std::vector<pipeline::BulkItem> bulk_items(const std::string& folder, const std::vector<std::string>& paths,
                                           const std::string& coco, const std::string& split) {
  if (!folder.empty()) {
    if (!fs::exists(folder)) throw NotFound(folder + ": no such folder");
    return pipeline::list_image_folder(folder);
  }
  if (!coco.empty()) {
    if (!fs::exists(coco)) throw NotFound(coco + ": no such folder");
    return pipeline::list_coco(coco, split);
  }
  std::vector<pipeline::BulkItem> out;
  for (auto& p : paths) {  // as `clipkit index --image-list` records them
    pipeline::BulkItem b;
    b.path = fs::absolute(p).lexically_normal().string();
    b.meta["relpath"] = p;
    out.push_back(std::move(b));
  }
  return out;
}

// Embeds the items into work_dir (resumable shards, as the CLI does) and reads them back.
// Returns the inputs that could not be read as (path, reason).
std::vector<std::pair<std::string, std::string>> embed_items(const pipeline::Embedder& e, int threads,
                                                             const std::vector<pipeline::BulkItem>& items,
                                                             const std::string& work_dir, int batch_size, Tensor* x,
                                                             std::vector<index::ImageRecord>* recs,
                                                             pipeline::ModelIdentity* id) {
  if (batch_size < 1) throw BadValue("batch_size must be >= 1, got " + std::to_string(batch_size));
  set_num_threads(threads);
  pipeline::BulkEmbedOptions o;
  o.batch_size = batch_size;
  o.replace_other_runs = true;  // the index's own work folder
  Progress p("embed", static_cast<int64_t>(items.size()), "images");
  std::unique_lock<std::mutex> lock(compute_mutex());
  auto r = pipeline::bulk_embed(e, items, work_dir, o, &p);
  lock.unlock();
  p.finish();
  if (!r.complete) fail("{}: embedding stopped early; run the same call again to resume", work_dir);
  index::load_embeddings(work_dir, x, recs, id);
  std::vector<std::pair<std::string, std::string>> skipped;
  for (auto& s : r.skipped) skipped.emplace_back(s.source, s.reason);
  return skipped;
}

index::Filter filter_from(const std::string& filter_json) {
  try {
    return index::Filter::from_json(nlohmann::json::parse(filter_json));
  } catch (const Error& e) {
    throw BadValue(std::string("filter: ") + e.what());
  }
}

class Index {
 public:
  explicit Index(const std::string& dir) {
    if (!fs::is_directory(dir)) throw NotFound(dir + ": no such index folder");
    pyb::gil_scoped_release nogil;
    lib_ = index::Library::open(dir);
  }

  // -> (skipped [(path, reason)]); writes the library into dir.
  static pyb::list build(pyb::handle model, const std::string& dir, const std::string& folder,
                         const std::vector<std::string>& paths, const std::string& coco, const std::string& split,
                         const std::string& factory, int nprobe, bool overwrite, int batch_size) {
    const pipeline::Embedder& e = embedder_of(model);
    const int threads = threads_of(model);
    std::vector<std::pair<std::string, std::string>> skipped;
    {
      pyb::gil_scoped_release nogil;
      index::WriterLock lock(dir, /*create=*/true);
      if (index::Library::exists(dir) && !overwrite)
        throw BadValue(dir + ": already holds an index (use Index.open(...).add(...), or overwrite=True)");
      Tensor x;
      std::vector<index::ImageRecord> recs;
      pipeline::ModelIdentity id;
      skipped = embed_items(e, threads, bulk_items(folder, paths, coco, split), (fs::path(dir) / "embeddings").string(),
                            batch_size, &x, &recs, &id);
      id.dir = fs::absolute(e.model().dir()).lexically_normal().string();
      index::BuildOptions bo;
      bo.factory = factory;
      bo.params.nprobe = nprobe;
      index::Library::build(dir, id, x, recs, bo, overwrite);
    }
    return pyb::cast(skipped);
  }

  // -> (added, skipped)
  pyb::tuple add(pyb::handle model, const std::string& folder, const std::vector<std::string>& paths,
                 const std::string& coco, const std::string& split, int batch_size) {
    const pipeline::Embedder& e = embedder_of(model);
    const int threads = threads_of(model);
    int64_t added = 0;
    std::vector<std::pair<std::string, std::string>> skipped;
    {
      pyb::gil_scoped_release nogil;
      const std::string dir = lib_->info().dir;
      index::WriterLock lock(dir);
      lib_->check_model(pipeline::model_identity(e));
      Tensor x;
      std::vector<index::ImageRecord> recs;
      pipeline::ModelIdentity id;
      const std::string work = (fs::path(dir) / "embeddings-add").string();
      skipped = embed_items(e, threads, bulk_items(folder, paths, coco, split), work, batch_size, &x, &recs, &id);
      lib_->check_model(id);
      added = lib_->add(x, recs);
      fs::remove_all(work);
    }
    return pyb::make_tuple(added, skipped);
  }

  int64_t remove(const std::vector<int64_t>& ids) {
    pyb::gil_scoped_release nogil;
    index::WriterLock lock(lib_->info().dir);
    return lib_->remove(ids);
  }

  // The library's model, loaded as `clipkit search` loads it (model_dir "" = the folder index.json names).
  pyb::object query_model(const std::string& model_dir, const std::string& precision, int threads) {
    const backend::Precision prec = precision_arg(precision);
    std::unique_ptr<pipeline::Embedder> e;
    {
      pyb::gil_scoped_release nogil;
      e = index::load_query_model(*lib_, model_dir, {prec});
    }
    return wrap_embedder(std::move(e), threads);
  }

  void check_model(pyb::handle model) const { lib_->check_model(pipeline::model_identity(embedder_of(model))); }

  // q: one L2-normalized embedding [D] float32 -> `clipkit search --json`'s text
  std::string search(const pyb::array& q, int64_t k, const std::string& filter_json, int nprobe) const {
    if (!q.dtype().is(pyb::dtype::of<float>())) throw BadValue("vector must be float32");
    if (q.ndim() != 1 || q.shape(0) != lib_->info().dim)
      throw BadValue("vector has shape " + pyb::str(q.attr("shape")).cast<std::string>() + ", the index holds (" +
                     std::to_string(lib_->info().dim) + ",) embeddings");
    if (!(q.flags() & pyb::array::c_style)) throw BadValue("vector must be C-contiguous");
    if (k < 1) throw BadValue("k must be >= 1, got " + std::to_string(k));
    const index::Filter f = filter_from(filter_json);
    index::SearchParams sp;
    sp.nprobe = nprobe;
    const auto* v = static_cast<const float*>(q.data());
    pyb::gil_scoped_release nogil;
    return json_text(index::results_json(lib_->search(v, k, f, sp)));
  }

  std::string info_json() const { return json_text(lib_->info().to_json()); }
  int64_t size() const { return lib_->info().count; }

 private:
  std::unique_ptr<index::Library> lib_;
};

}  // namespace

void bind_index(pyb::module_& m) {
  pyb::class_<Index>(m, "Index")
      .def(pyb::init<const std::string&>(), pyb::arg("path"))
      .def_static("build", &Index::build, pyb::arg("model"), pyb::arg("path"), pyb::arg("folder"), pyb::arg("paths"),
                  pyb::arg("coco"), pyb::arg("split"), pyb::arg("factory"), pyb::arg("nprobe"), pyb::arg("overwrite"),
                  pyb::arg("batch_size"))
      .def("add", &Index::add, pyb::arg("model"), pyb::arg("folder"), pyb::arg("paths"), pyb::arg("coco"),
           pyb::arg("split"), pyb::arg("batch_size"))
      .def("remove", &Index::remove, pyb::arg("ids"))
      .def("query_model", &Index::query_model, pyb::arg("model_dir"), pyb::arg("precision"), pyb::arg("threads"))
      .def("check_model", &Index::check_model, pyb::arg("model"))
      .def("search", &Index::search, pyb::arg("vector"), pyb::arg("k"), pyb::arg("filter_json"), pyb::arg("nprobe"))
      .def("info_json", &Index::info_json)
      .def("__len__", &Index::size);
}

}  // namespace clipkit::py
