// clipkit index build --model DIR (--folder DIR | --images F... | --coco ROOT | --image-list F | --data SHARDS |
//                     --embeddings DIR) --index DIR [--factory STR | --max-index-memory SIZE] [--max-query-ms MS]
//                     [--nprobe N] [--on-disk] [--overwrite] [--json]
//                     (`mpirun -np N clipkit index build ...` shares the work)
// clipkit index add    --index DIR (--folder DIR | --images F... | --coco ROOT | --image-list F | --embeddings DIR) [--json]
// clipkit index remove --index DIR (--ids N... | --paths P... | --under FOLDER) [--json]
// clipkit index info   --index DIR [--json]     (also `clipkit index info DIR`)
// `--images DIR` (one folder) is the old spelling of --folder DIR. --json prints the index's info
// (build, info) or {"added"/"removed", "count"} (add, remove).
// Images are embedded into INDEX/embeddings (resumable shards) first; see src/index/library.h for the folder.
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "cmd_embed_bulk.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "index/library.h"
#include "index/query.h"
#include "index/shard_build.h"

namespace clipkit::cli {
namespace {

namespace fs = std::filesystem;

struct Opts {
  std::string model, index, embeddings, factory, max_index_memory = "16G", image_backend = "pil";
  double max_query_ms = 0, target_recall = 0.95;
  bool on_disk = false;
  int64_t part_rows = 1'000'000, heldout = 1000;
  BulkInputs in;
  BulkFlags bulk;
  ComputeOptions compute;
  bool overwrite = false, json = false, exif_transpose = false;
  int nprobe = 0;
  std::vector<int64_t> ids;
  std::vector<std::string> paths;
  std::string under;
};

void add_inputs(CLI::App* c, Opts& o) {
  auto* folder = add_folder_flag(*c, o.in.folder);
  auto* files = add_images_flag(*c, o.in.images, &o.in.folder);
  auto* coco = c->add_option("--coco", o.in.coco, "a COCO 2017 root (captions and split are kept)");
  auto* list = c->add_option("--image-list", o.in.image_list, "a file with one image path per line");
  auto* data = c->add_option("--data", o.in.data, "WebDataset shards ('shards/{00000..00127}.tar', globs)");
  auto* emb = c->add_option("--embeddings", o.embeddings, "a folder written by `clipkit embed ... --out DIR` (shards)");
  require_one_of(*c, {folder, files, coco, list, data, emb});
  c->add_option("--split", o.in.split, "with --coco: train or val (\"\" = both)");
  c->add_flag("--exif-transpose", o.exif_transpose, "apply EXIF orientation (HF ignores it)");
  add_image_backend_option(*c, o.image_backend);
  add_bulk_flags(*c, o.bulk);
  add_caption_key_flag(*c, o.in.caption_key);
  add_compute_options(*c, o.compute);
  add_json_flag(*c, o.json);
}

// --index DIR, or the folder as the one positional argument (`clipkit index info DIR`).
void add_index_flag(CLI::App* c, Opts& o, const std::string& help) {
  auto* flag = c->add_option("--index", o.index, help);
  auto* pos = c->add_option("index_dir", o.index, help)->group("");
  add_check(*c, [flag, pos] {
    if (flag->count() + pos->count() == 0) usage_error("--index is required");
  });
}

// The embeddings folder to index: --embeddings, or the image inputs embedded (resumably, each rank
// its share) into work_dir.
std::string embeddings_for(Opts& o, const std::string& model_dir, const std::string& work_dir, dist::Comm& comm,
                           int* rc) {
  if (!o.embeddings.empty()) return o.embeddings;
  auto e = pipeline::Embedder::load(model_dir, load_options(o.compute, Towers::Images));
  e->set_image_backend(image_backend(o.image_backend));
  BulkFlags f = o.bulk;
  f.replace_other_runs = true;  // the index's own work folder: a leftover of other inputs is replaced
  *rc = run_bulk_embed(*e, o.in, work_dir, f, o.compute, o.exif_transpose, comm);
  if (*rc == kError) fail("embedding stopped early; run the same command again to resume");
  return work_dir;
}

// Embeds the image inputs (or reads --embeddings) and returns rows + records + their model.
void gather(Opts& o, const std::string& model_dir, const std::string& work_dir, Tensor* x,
            std::vector<index::ImageRecord>* recs, pipeline::ModelIdentity* id, int* rc) {
  dist::Comm one;
  const std::string dir = embeddings_for(o, model_dir, work_dir, one, rc);
  index::load_embeddings(dir, x, recs, id);
  if (!model_dir.empty()) {
    auto want = pipeline::model_identity(model_dir);
    if (!want.same_model(*id))
      fail("{}: these embeddings were made by model {}, not by {}", dir, id->describe(), want.describe());
  }
}

void print_info(const index::LibraryInfo& i, bool json) {
  if (json) {
    std::printf("%s\n", json_text(i.to_json(), 2).c_str());
    return;
  }
  std::printf("index       %s\n", i.dir.c_str());
  std::printf("images      %lld\n", static_cast<long long>(i.count));
  std::printf("structure   %s (dim %lld, inner product)", i.factory.c_str(), static_cast<long long>(i.dim));
  if (i.params.nprobe) std::printf(", nprobe %d", i.params.nprobe);
  if (i.params.ef_search) std::printf(", efSearch %d", i.params.ef_search);
  std::printf("\nmodel       %s\n", i.model.describe().c_str());
  const auto& b = i.build;
  const std::string where = i.dir + "/index.json build";
  if (b.contains("memory_bytes")) {
    std::printf("memory      %s in RAM", index::format_size(json_integer_or(b, "memory_bytes", 0)).c_str());
    if (json_integer_or(b, "disk_bytes", 0) > 0)
      std::printf(" + %s of inverted lists on disk (mapped)",
                  index::format_size(json_integer_or(b, "disk_bytes", 0)).c_str());
    std::printf("\nrecall@10   %.4f against exact search on %lld held-out rows (nprobe %d; %.2f ms p50, %.2f ms p99 "
                "per query on one thread)\n",
                json_number_or(b, "recall_at_10", 0.0, where), static_cast<long long>(json_integer_or(b, "heldout_queries", 0)),
                static_cast<int>(json_integer_or(b, "nprobe", 0)), json_number_or(b, "query_ms_p50", 0.0, where),
                json_number_or(b, "query_ms_p99", 0.0, where));
    std::printf("chosen      %s\n", json_string_or(b, "why", "", where).c_str());
  }
  std::printf("generation  %lld (%s, %s)\n", static_cast<long long>(i.generation), i.faiss_file.c_str(),
              i.meta_file.c_str());
  for (auto& [s, n] : i.splits)
    std::printf("split       %-10s %lld\n", s.empty() ? "(none)" : s.c_str(), static_cast<long long>(n));
}

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.require_subcommand(1);
  auto* build = app.add_subcommand("build", "Embed images (or read embeddings) and build a new index folder");
  add_model_flag(*build, o->model, ModelUse::Optional,
                 "model (with --embeddings optional: the index records the embeddings' model)");
  build->add_option("--index", o->index, "index folder to create")->required();
  build->add_option("--factory", o->factory,
                    "FAISS index_factory string (\"\" = chosen for --max-index-memory: exact up to 50k images, then "
                    "IVF-Flat, IVF-SQ8, OPQ+IVF-PQ)");
  build->add_option("--max-index-memory", o->max_index_memory,
                    "size budget of the index, e.g. 4G (the best codes that fit are chosen)")
      ->capture_default_str();
  add_number_flag(*build, "--max-query-ms", o->max_query_ms,
                  "latency budget per query: nprobe is the best recall within it (0 = the smallest nprobe reaching "
                  "recall@10 0.95)", 0, std::numeric_limits<double>::infinity());
  add_int_flag(*build, "--nprobe", o->nprobe, "IVF lists probed per query (0 = chosen from held-out measurements)", 0);
  build->add_flag("--on-disk", o->on_disk, "keep the inverted lists in a file read through mmap (indexes larger than RAM)");
  build->add_flag("--overwrite", o->overwrite, "replace an existing index in that folder");
  build->add_option("--target-recall", o->target_recall, "")->group("");
  build->add_option("--part-rows", o->part_rows, "")->group("");  // tests: several parts on small data
  build->add_option("--heldout", o->heldout, "")->group("");
  add_inputs(build, *o);

  auto* add = app.add_subcommand("add", "Add images to an index (paths already indexed are skipped)");
  add->add_option("--index", o->index, "index folder")->required();
  add_model_flag(*add, o->model, ModelUse::Optional);
  add_inputs(add, *o);

  auto* rm = app.add_subcommand("remove", "Remove images from an index");
  rm->add_option("--index", o->index, "index folder")->required();
  auto* ids = rm->add_option("--ids", o->ids, "image ids")->default_str("");
  auto* paths = rm->add_option("--paths", o->paths, "image paths as indexed")->default_str("");
  auto* under = rm->add_option("--under", o->under, "every image under this folder (absolute, or relative to the indexed root)");
  require_one_of(*rm, {ids, paths, under});
  add_json_flag(*rm, o->json);

  auto* info = app.add_subcommand("info", "Describe an index");
  add_index_flag(info, *o, "index folder");
  add_json_flag(*info, o->json);

  return [o, build, add, rm, info]() -> int {
    int rc = kOk;
    if (build->parsed()) {
      auto comm = dist::make_comm(nullptr, nullptr);  // one process, or a rank of mpirun
      ComputeOptions c = o->compute;
      c.threads = threads_per_rank(c.threads);
      apply_compute_options(c);
      // one writer at a time (rank 0 holds the lock for the job; the other ranks write parts it merges)
      std::optional<index::WriterLock> lock;
      if (comm->rank() == 0) lock.emplace(o->index, /*create=*/true);
      if (index::Library::exists(o->index) && !o->overwrite)
        fail("{}: already holds an index (use `clipkit index add`, or --overwrite)", o->index);
      if (o->model.empty() && o->embeddings.empty()) fail("--model is required (except with --embeddings)");
      const std::string emb = embeddings_for(*o, o->model, (fs::path(o->index) / "embeddings").string(), *comm, &rc);
      auto id = pipeline::read_manifest(emb).model;
      if (!o->model.empty()) {
        if (auto want = pipeline::model_identity(o->model); !want.same_model(id))
          fail("{}: these embeddings were made by model {}, not by {}", emb, id.describe(), want.describe());
        id.dir = fs::absolute(o->model).lexically_normal().string();
      }
      index::ShardBuildOptions bo;
      bo.factory = o->factory;
      bo.max_memory = index::parse_size(o->max_index_memory);
      bo.max_query_ms = o->max_query_ms;
      bo.target_recall = o->target_recall;
      bo.nprobe = o->nprobe;
      bo.on_disk = o->on_disk;
      bo.part_rows = o->part_rows;
      bo.heldout = o->heldout;
      bo.overwrite = o->overwrite;
      bo.rank = comm->rank();
      bo.ranks = comm->size();
      if (comm->size() > 1)
        bo.all_ok = [&comm](bool ok) {
          double failed = ok ? 0 : 1;
          comm->allreduce_sum(&failed, 1);
          return failed == 0;
        };
      const int64_t rows = pipeline::read_manifest(emb).rows;
      Progress p(comm->size() > 1 ? fmt::format("index (rank {}/{})", comm->rank(), comm->size()) : "index", rows,
                 "vectors");
      auto r = index::build_index_from_embeddings(o->index, emb, id, bo, &p);
      p.finish();
      if (comm->rank() != 0) return rc;
      std::fprintf(stderr, "clipkit: indexed %lld vectors in %.1f s (train %.1f s, add %.1f s, merge %.1f s)%s\n",
                   static_cast<long long>(r.rows), r.seconds_total, r.seconds_train, r.seconds_add, r.seconds_merge,
                   r.duplicate_paths ? fmt::format("; {} rows repeat an earlier path and have no metadata",
                                                   r.duplicate_paths).c_str()
                                     : "");
      auto lib = index::Library::open(o->index);
      print_info(lib->info(), o->json);
      return rc;
    }
    if (add->parsed()) {
      apply_compute_options(o->compute);
      index::WriterLock lock(o->index);
      auto lib = index::Library::open(o->index);
      const std::string model = o->model.empty() ? lib->model().dir : o->model;
      lib->check_model(pipeline::model_identity(model));
      if (add->count("--image-backend") == 0 && !lib->model().image_backend.empty())
        o->image_backend = lib->model().image_backend;  // preprocess as the index was built
      Tensor x;
      std::vector<index::ImageRecord> recs;
      pipeline::ModelIdentity id;
      const std::string work = (fs::path(o->index) / "embeddings-add").string();
      gather(*o, model, work, &x, &recs, &id, &rc);
      lib->check_model(id);
      int64_t n = lib->add(x, recs);
      if (o->embeddings.empty()) fs::remove_all(work);
      std::fprintf(stderr, "clipkit: added %lld images (%lld already indexed); %lld in the index\n",
                   static_cast<long long>(n), static_cast<long long>(x.dim(0) - n),
                   static_cast<long long>(lib->info().count));
      if (o->json)
        std::printf("%s\n", nlohmann::json{{"index", o->index}, {"added", n}, {"already_indexed", x.dim(0) - n},
                                           {"count", lib->info().count}}.dump().c_str());
      return rc;
    }
    if (rm->parsed()) {
      index::WriterLock lock(o->index);
      auto lib = index::Library::open(o->index);
      std::vector<int64_t> ids = o->ids;
      for (auto& p : o->paths) {
        int64_t id = lib->metadata().find_path(p);
        if (id < 0) id = lib->metadata().find_path(fs::absolute(p).lexically_normal().string());
        if (id < 0) fail("{}: not in the index", p);
        ids.push_back(id);
      }
      if (!o->under.empty()) {
        auto u = lib->metadata().ids_under(o->under);
        if (u.empty()) u = lib->metadata().ids_under(fs::absolute(o->under).lexically_normal().string());
        ids.insert(ids.end(), u.begin(), u.end());
      }
      int64_t n = lib->remove(ids);
      std::fprintf(stderr, "clipkit: removed %lld images; %lld in the index\n", static_cast<long long>(n),
                   static_cast<long long>(lib->info().count));
      if (o->json)
        std::printf("%s\n", nlohmann::json{{"index", o->index}, {"removed", n}, {"count", lib->info().count}}.dump().c_str());
      return kOk;
    }
    auto lib = index::Library::open(o->index);
    print_info(lib->info(), o->json);
    return kOk;
  };
}

CommandRegistrar reg("index", "Build and maintain an image index (FAISS vectors + SQLite metadata)", setup);

}  // namespace
}  // namespace clipkit::cli
