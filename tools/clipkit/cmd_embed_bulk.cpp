#include "cmd_embed_bulk.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"

namespace clipkit::cli {

void add_bulk_flags(CLI::App& app, BulkFlags& f) {
  add_int_flag(app, "--shard-size", f.shard_size, "images per output shard", int64_t{1});
  add_int_flag(app, "--decode-threads", f.decode_threads,
               "threads decoding images ahead of the model; 0 = decode between model batches on the model's threads; "
               "-1 = auto: 0 where the model's threads fill the cores (a CPU model by default), else the free "
               "cores (a GPU model: all but one), up to 16",
               -1, 256);
  app.add_option("--stop-after-shards", f.stop_after_shards, "")->group("");  // tests: simulate an interruption
  app.add_option("--kill-rank", f.kill_rank, "")->group("");                   // tests: SIGKILL this rank ...
  app.add_option("--kill-after-batches", f.kill_after_batches, "")->group("");  // ... after N batches
}

void add_caption_key_flag(CLI::App& app, std::string& key) {
  app.add_option("--caption-key", key,
                 "WebDataset shards: where captions are -- \"txt\" (KEY.txt) or a field of KEY.json (e.g. caption)")
      ->capture_default_str();
}

std::vector<pipeline::BulkItem> list_bulk_inputs(const BulkInputs& in, std::vector<std::string>* dropped,
                                                 int64_t* dropped_rows) {
  if (!in.folder.empty()) return pipeline::list_image_folder(in.folder);
  if (!in.coco.empty()) return pipeline::list_coco(in.coco, in.split, dropped, dropped_rows);
  if (!in.image_list.empty()) return pipeline::list_image_file(in.image_list);
  if (!in.data.empty()) {
    dataset::LoadReport r;
    auto items = pipeline::list_shards(in.data, in.caption_key, &r);
    for (auto& k : r.kinds)
      if (k.kind != "no_caption") {
        std::string ex = k.examples.empty() ? "" : " (e.g. " + k.examples[0] + ")";
        std::fprintf(stderr, "clipkit: %s: %lld x %s%s\n", in.data.c_str(), static_cast<long long>(k.count),
                     k.what.c_str(), ex.c_str());
      }
    return items;
  }
  std::vector<pipeline::BulkItem> out;
  for (auto& p : in.images) {
    pipeline::BulkItem b;
    b.path = std::filesystem::absolute(p).lexically_normal().string();
    b.meta["relpath"] = p;
    out.push_back(std::move(b));
  }
  return out;
}

int threads_per_rank(int requested) {
  if (requested > 0) return requested;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = local ? std::atoi(local) : 1;
  if (n <= 1) return 0;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / n);
}

int run_bulk_embed(const pipeline::Embedder& e, const BulkInputs& in, const std::string& out_dir, const BulkFlags& f,
                   const ComputeOptions& c, bool exif_transpose, dist::Comm& comm, bool json) {
  const bool lead = comm.rank() == 0;
  double failed = 0;
  std::string error;
  pipeline::BulkEmbedReport r;
  int64_t total = 0, dropped_left_out = 0;
  try {
    std::vector<std::string> dropped;
    int64_t dropped_rows = 0;
    auto items = list_bulk_inputs(in, &dropped, &dropped_rows);
    if (lead)
      for (auto& d : dropped) std::fprintf(stderr, "clipkit: skipped %s\n", d.c_str());
    dropped_left_out = dropped_rows;
    total = static_cast<int64_t>(items.size());
    pipeline::BulkEmbedOptions o;
    o.replace_other_runs = f.replace_other_runs;
    o.batch_size = c.batch_size;
    o.shard_size = f.shard_size;
    o.decode_threads = f.decode_threads;
    o.stop_after_shards = f.stop_after_shards;
    o.decode.exif_transpose = exif_transpose;
    o.rank = comm.rank();
    o.ranks = comm.size();
    if (f.kill_after_batches > 0 && f.kill_rank == comm.rank())
      o.after_batch = [n = f.kill_after_batches](int64_t k) {
        if (k >= n) std::raise(SIGKILL);
      };
    Progress p(comm.size() > 1 ? fmt::format("embed (rank {}/{})", comm.rank(), comm.size()) : "embed",
               static_cast<int64_t>(items.size()), "images");
    r = pipeline::bulk_embed(e, items, out_dir, o, &p);
    p.finish();
  } catch (const std::exception& ex) {
    failed = 1;
    error = ex.what();
  }
  if (comm.size() > 1) {
    // every rank learns whether all finished, so none waits on a rank that failed
    double st[5] = {failed, r.complete ? 0.0 : 1.0, static_cast<double>(r.shards_written),
                    static_cast<double>(r.shards_already_done), static_cast<double>(r.images_this_run)};
    comm.allreduce_sum(st, 5);
    if (failed) throw Error(error);
    if (st[0] > 0) fail("{}: another rank failed (its message is above); run the same command again to resume", out_dir);
    if (!lead) return st[1] > 0 ? kError : kOk;
    const double secs = r.seconds;
    r = pipeline::combine_manifests(out_dir);  // every rank has returned: one manifest
    r.seconds = secs;
    r.inputs = total;
    r.shards_written = static_cast<int64_t>(st[2]);
    r.shards_already_done = static_cast<int64_t>(st[3]);
    r.images_this_run = static_cast<int64_t>(st[4]);
  } else if (failed) {
    throw Error(error);
  }
  for (auto& s : r.skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
  std::fprintf(stderr,
               "clipkit: %s: %lld images -> %lld rows in %lld shards (%lld already done, %lld written now, %lld "
               "skipped%s); %.1f images/s this run%s\n",
               out_dir.c_str(), static_cast<long long>(r.inputs), static_cast<long long>(r.rows),
               static_cast<long long>(r.shards), static_cast<long long>(r.shards_already_done),
               static_cast<long long>(r.shards_written), static_cast<long long>(r.skipped.size()),
               dropped_left_out ? fmt::format(", and {} dataset rows left out", dropped_left_out).c_str() : "",
               r.seconds > 0 ? static_cast<double>(r.images_this_run) / r.seconds : 0.0,
               comm.size() > 1 ? fmt::format(" ({} ranks)", comm.size()).c_str() : "");
  if (json) {
    nlohmann::json sk = nlohmann::json::array();
    for (auto& s : r.skipped) sk.push_back({{"path", s.source}, {"reason", s.reason}});
    std::printf("%s\n", json_text(nlohmann::json{{"out", out_dir}, {"inputs", r.inputs}, {"rows", r.rows},
                                                  {"shards", r.shards}, {"shards_already_done", r.shards_already_done},
                                                  {"shards_written", r.shards_written}, {"complete", r.complete},
                                                  {"skipped", sk}}).c_str());
  }
  if (!r.complete) {
    std::fprintf(stderr, "clipkit: stopped before the last shard; run the same command again to resume\n");
    return kError;
  }
  return r.skipped.empty() && dropped_left_out == 0 ? kOk : kSkippedInputs;
}

}  // namespace clipkit::cli
