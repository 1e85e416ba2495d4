#include "cmd_embed_bulk.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace clipkit::cli {

void add_bulk_flags(CLI::App& app, BulkFlags& f) {
  add_int_flag(app, "--shard-size", f.shard_size, "images per output shard", int64_t{1});
  add_int_flag(app, "--decode-threads", f.decode_threads,
               "threads decoding images ahead of the model (0 = decode between model batches)", 0, 256);
  app.add_option("--stop-after-shards", f.stop_after_shards, "")->group("");  // tests: simulate an interruption
}

std::vector<pipeline::BulkItem> list_bulk_inputs(const BulkInputs& in, std::vector<std::string>* dropped,
                                                 int64_t* dropped_rows) {
  if (!in.folder.empty()) return pipeline::list_image_folder(in.folder);
  if (!in.coco.empty()) return pipeline::list_coco(in.coco, in.split, dropped, dropped_rows);
  if (!in.image_list.empty()) return pipeline::list_image_file(in.image_list);
  std::vector<pipeline::BulkItem> out;
  for (auto& p : in.images) {
    pipeline::BulkItem b;
    b.path = std::filesystem::absolute(p).lexically_normal().string();
    b.meta["relpath"] = p;
    out.push_back(std::move(b));
  }
  return out;
}

int run_bulk_embed(const pipeline::Embedder& e, const BulkInputs& in, const std::string& out_dir, const BulkFlags& f,
                   const ComputeOptions& c, bool exif_transpose, bool json) {
  std::vector<std::string> dropped;
  int64_t dropped_rows = 0;
  auto items = list_bulk_inputs(in, &dropped, &dropped_rows);
  for (auto& d : dropped) std::fprintf(stderr, "clipkit: skipped %s\n", d.c_str());
  pipeline::BulkEmbedOptions o;
  o.replace_other_runs = f.replace_other_runs;
  o.batch_size = c.batch_size;
  o.shard_size = f.shard_size;
  o.decode_threads = f.decode_threads;
  o.stop_after_shards = f.stop_after_shards;
  o.decode.exif_transpose = exif_transpose;
  Progress p("embed", static_cast<int64_t>(items.size()), "images");
  auto r = pipeline::bulk_embed(e, items, out_dir, o, &p);
  p.finish();
  for (auto& s : r.skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
  std::fprintf(stderr,
               "clipkit: %s: %lld images -> %lld rows in %lld shards (%lld already done, %lld written now, %lld "
               "skipped%s); %.1f images/s this run\n",
               out_dir.c_str(), static_cast<long long>(r.inputs), static_cast<long long>(r.rows),
               static_cast<long long>(r.shards), static_cast<long long>(r.shards_already_done),
               static_cast<long long>(r.shards_written), static_cast<long long>(r.skipped.size()),
               dropped_rows ? fmt::format(", and {} dataset rows left out", dropped_rows).c_str() : "",
               r.seconds > 0 ? static_cast<double>(r.images_this_run) / r.seconds : 0.0);
  if (json) {
    nlohmann::json sk = nlohmann::json::array();
    for (auto& s : r.skipped) sk.push_back({{"path", s.source}, {"reason", s.reason}});
    std::printf("%s\n", nlohmann::json{{"out", out_dir}, {"inputs", r.inputs}, {"rows", r.rows}, {"shards", r.shards},
                                       {"shards_already_done", r.shards_already_done},
                                       {"shards_written", r.shards_written}, {"complete", r.complete},
                                       {"skipped", sk}}.dump().c_str());
  }
  if (!r.complete) {
    std::fprintf(stderr, "clipkit: stopped before the last shard; run the same command again to resume\n");
    return kError;
  }
  return r.skipped.empty() && dropped_rows == 0 ? kOk : kSkippedInputs;
}

}  // namespace clipkit::cli
