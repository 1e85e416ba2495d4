// clipkit dedup --model DIR (--folder DIR | --images F... | --coco ROOT | --data SHARDS | --split NAME=DIR ... |
//               --index DIR) [--threshold T] --report OUT.json [--html OUT.html] [--apply [--move-to DIR]] [--json]
// (`--images DIR`, one folder, is the old spelling of --folder DIR.) --json prints the summary as JSON.
// Exact duplicates (content hash, confirmed byte for byte), near duplicates (exact range search on
// the embeddings, every pair verified), groups with a keep suggestion, leakage across splits.
// --index reads the vectors an index stores (no model run; --model, when given, must be the index's
// model) and its records' splits. Writes the JSON report and a self-contained HTML gallery beside it. --apply writes the list of
// suggested removals (OUT.removals.txt) and, with --move-to, moves those files there; nothing is
// ever deleted.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/dedup.h"
#include "apps/index_dedup.h"
#include "apps/library_apps.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "dataset/caption_dataset.h"
#include "io/atomic_file.h"
#include "pipeline/bulk_embed.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {
namespace fs = std::filesystem;

struct Opts {
  std::string model, folder, coco, data, index, report, html, move_to;
  std::vector<std::string> splits, images;
  double threshold = apps::kDefaultDedupThreshold;
  int nprobe = 0;
  bool apply = false, no_html = false, json = false;
  ComputeOptions compute;
  std::string image_backend = "pil";
};

std::string replace_ext(const std::string& p, const std::string& ext) {
  fs::path x(p);
  if (x.extension() == ".json") x.replace_extension(ext);
  else x += ext;
  return x.string();
}

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model, ModelUse::Optional, "model (required, except with --index: the index's model)");
  auto* folder = add_folder_flag(app, o->folder);
  auto* files = add_images_flag(app, o->images, &o->folder);
  auto* coco = app.add_option("--coco", o->coco, "COCO 2017 root: train and val images, leakage between them reported");
  auto* data = app.add_option("--data", o->data, "WebDataset shards ('shards/{00000..00127}.tar', globs), read in place");
  auto* index = app.add_option("--index", o->index, "an index built by `clipkit index` (its stored embeddings)");
  auto* split = app.add_option("--split", o->splits, "NAME=DIR: a named split (repeatable); duplicates across splits are leakage")
      ->allow_extra_args(false)->default_str("");
  add_check(app, [=] {
    if (!folder->count() && !files->count() && !coco->count() && !data->count() && !index->count() && !split->count())
      usage_error("give one of --folder, --images, --coco, --data, --split or --index");
    if (index->count() && (folder->count() || files->count() || coco->count() || data->count() || split->count()))
      usage_error("--index cannot be combined with --folder, --images, --coco, --data or --split (add those images to the index instead)");
  });
  add_number_flag(app, "--threshold", o->threshold, "near-duplicate cosine similarity threshold", -1, 1, true);
  add_int_flag(app, "--nprobe", o->nprobe, "with --index: inverted lists each image is compared with (0 = 2)", 0);
  app.add_option("--report", o->report, "JSON report path (HTML gallery written beside it)")->required();
  app.add_option("--html", o->html, "HTML gallery path (default: the report path with .html)");
  app.add_flag("--no-html", o->no_html, "skip the HTML gallery");
  app.add_flag("--apply", o->apply, "write the suggested removals to REPORT.removals.txt (nothing is deleted)");
  app.add_option("--move-to", o->move_to, "with --apply: move the suggested removals into this folder");
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  add_json_flag(app, o->json, "print the summary as JSON");
  add_check(app, [o] {
    if (!o->move_to.empty() && !o->apply) usage_error("--move-to needs --apply");
    if (o->index.empty() && o->model.empty()) usage_error("--model is required (except with --index)");
  });
  return [o]() {
    apply_compute_options(o->compute);
    if (!o->data.empty() && !o->move_to.empty())
      fail("--move-to cannot move images out of .tar shards (the removals list names them: SHARD/MEMBER)");
    std::vector<apps::ScanInput> inputs;
    std::vector<std::string> roots;  // per input: the folder it was found under (for --move-to)
    if (!o->folder.empty())
      for (auto& p : apps::list_image_files(o->folder)) inputs.push_back({p, ""}), roots.push_back(o->folder);
    for (auto& p : o->images) inputs.push_back({p, ""}), roots.push_back(fs::path(p).parent_path().string());
    if (!o->data.empty()) {
      dataset::LoadReport rep;
      for (auto& it : pipeline::list_shards(o->data, "txt", &rep))
        inputs.push_back({it.path, "", it.offset, it.size}), roots.push_back(it.archive);
      for (auto& k : rep.kinds)
        if (k.kind != "no_caption")
          std::fprintf(stderr, "clipkit: %s: %lld x %s\n", o->data.c_str(), static_cast<long long>(k.count), k.what.c_str());
    }
    for (auto& s : o->splits) {
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) fail("--split \"{}\": expected NAME=DIR", s);
      const std::string name = s.substr(0, eq), dir = s.substr(eq + 1);
      for (auto& p : apps::list_image_files(dir)) inputs.push_back({p, name}), roots.push_back(dir);
    }
    if (!o->coco.empty()) {
      int found = 0;
      for (const char* split : {"train", "val"}) {
        if (!fs::exists(fs::path(o->coco) / "annotations" / fmt::format("captions_{}2017.json", split))) continue;
        ++found;
        auto ds = dataset::load_coco(o->coco, split);
        for (int64_t r : ds.unique_images())
          inputs.push_back({ds.rows[static_cast<size_t>(r)].image_path, split}), roots.push_back(o->coco);
      }
      if (!found) fail("{}: no annotations/captions_train2017.json or captions_val2017.json", o->coco);
    }
    apps::ScanResult scan;
    std::unique_ptr<index::Library> lib;
    std::vector<index::ImageRecord> recs;
    int64_t total = -1;  // images looked at, when only the duplicates' members are loaded
    if (!o->index.empty()) {
      lib = index::Library::open(o->index);
      if (!o->model.empty()) lib->check_model(pipeline::model_identity(o->model));
      Progress p("dedup", lib->info().count, "images");
      std::vector<std::string> gone;
      if (apps::can_dedup_from_embeddings(*lib)) {
        // bounded memory: candidates from the index and the recorded hashes, verified exactly
        apps::IndexDedupOptions io;
        io.threshold = o->threshold;
        if (o->nprobe > 0) io.nprobe = o->nprobe;
        auto c = apps::dedup_candidates(*lib, io, &p);
        scan = std::move(c.scan);
        recs = std::move(c.records);
        total = c.rows;
        std::fprintf(stderr, "clipkit: %lld images: %lld candidate pairs from the index's lists (%d per image, from cosine %.4f), "
                     "%lld verified, %lld equal content hashes; %zu images in duplicate groups\n",
                     static_cast<long long>(c.rows), static_cast<long long>(c.candidate_pairs),
                     io.nprobe, o->threshold - c.margin,
                     static_cast<long long>(c.verified_pairs), static_cast<long long>(c.hash_pairs), recs.size());
      } else {
        scan = apps::scan_library(*lib, &p, &gone, &recs);
        if (scan.items.empty()) fail("{}: the index is empty", o->index);
      }
      p.finish();
      if (!gone.empty())
        std::fprintf(stderr, "clipkit: %zu indexed files are no longer readable (compared by embedding only), e.g. %s\n",
                     gone.size(), gone[0].c_str());
      for (auto& rec : recs) {  // --move-to keeps the path under the folder the index was built from
        inputs.push_back({rec.path, rec.split});
        const bool under = !rec.relpath.empty() && rec.path.size() > rec.relpath.size() && rec.path.ends_with("/" + rec.relpath);
        roots.push_back(under ? rec.path.substr(0, rec.path.size() - rec.relpath.size())
                              : fs::path(rec.path).parent_path().string());
      }
    } else {
      if (inputs.empty()) fail("no images found to deduplicate");
      auto emb = pipeline::Embedder::load(o->model, load_options(o->compute, Towers::Images));
      emb->set_image_backend(image_backend(o->image_backend));
      apps::EmbedderEncoder enc(*emb, o->compute.batch_size);
      Progress p("dedup", static_cast<int64_t>(inputs.size()), "images");
      scan = apps::scan_images(inputs, enc, std::max(64, o->compute.batch_size), &p);
      p.finish();
    }
    for (auto& s : scan.skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
    apps::DedupOptions dopt;
    dopt.threshold = o->threshold;
    auto& items = scan.items;
    auto r = apps::find_duplicates(
        items, scan.emb.ptr<float>(), scan.emb.dim(1), dopt,
        [&](int64_t a, int64_t b) {
          return apps::files_equal(items[static_cast<size_t>(a)].path, items[static_cast<size_t>(b)].path);
        },
        apps::files_upscale_probe(items));
    if (total >= 0) r.images = total;
    auto j = apps::dedup_report_json(r, items, o->threshold);
    j["skipped"] = nlohmann::json::array();
    for (auto& s : scan.skipped) j["skipped"].push_back({{"path", s.source}, {"reason", s.reason}});
    j["model"] = o->model;
    if (!o->index.empty()) j["index"] = o->index;
    write_file_atomic(o->report, json_text(j, 2) + "\n");
    std::string html = o->html.empty() ? replace_ext(o->report, ".html") : o->html;
    if (!o->no_html) write_file_atomic(html, apps::dedup_report_html(r, items, o->threshold));
    nlohmann::json out = j["summary"];  // what this run did, printed at the end (text or --json)
    out["images"] = r.images;
    out["threshold"] = o->threshold;
    out["report"] = o->report;
    if (!o->no_html) out["html"] = html;
    if (o->apply) {
      // Map each removal back to its input root for --move-to.
      std::map<std::string, std::string> root_of;
      for (size_t i = 0; i < inputs.size(); ++i) root_of[inputs[i].path] = roots[i];
      std::string list;
      for (int64_t i : r.removals()) list += items[static_cast<size_t>(i)].path + "\n";
      const std::string list_path = replace_ext(o->report, ".removals.txt");
      write_file_atomic(list_path, list);
      out["removals_list"] = list_path;
      if (!o->move_to.empty()) {
        int64_t moved = 0;
        for (int64_t i : r.removals()) {
          const std::string& src = items[static_cast<size_t>(i)].path;
          fs::path rel = fs::path(src).lexically_relative(root_of[src]);
          if (rel.empty() || *rel.begin() == "..") rel = fs::path(src).filename();
          fs::path dst = fs::path(o->move_to) / rel;
          if (fs::exists(dst)) fail("{}: already exists; not overwriting (moving {})", dst.string(), src);
          fs::create_directories(dst.parent_path());
          std::error_code ec;
          fs::rename(src, dst, ec);
          if (ec) {  // across file systems: copy, then remove the original only once the copy is complete
            fs::copy_file(src, dst, ec);
            if (ec) fail("{}: cannot move to {}: {}", src, dst.string(), ec.message());
            fs::remove(src);
          }
          ++moved;
        }
        out["moved"] = moved;
        out["moved_to"] = o->move_to;
        if (lib) {  // the moved images leave the index too (a new generation; the files are kept)
          std::vector<int64_t> ids;
          for (int64_t i : r.removals()) ids.push_back(recs[static_cast<size_t>(i)].id);
          out["removed_from_index"] = lib->remove(ids);
        }
      }
    }
    if (o->json) {
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%lld images: %lld duplicate groups (%lld exact, %lld near at cosine >= %g), %lld across splits, "
                  "%lld suggested removals\nreport: %s%s%s\n",
                  static_cast<long long>(r.images), out["groups"].get<long long>(), out["exact_groups"].get<long long>(),
                  out["near_groups"].get<long long>(), o->threshold, out["cross_split_groups"].get<long long>(),
                  out["suggested_removals"].get<long long>(), o->report.c_str(), o->no_html ? "" : "  gallery: ",
                  o->no_html ? "" : html.c_str());
      if (out.contains("removals_list")) std::printf("removals listed in %s\n", out["removals_list"].get<std::string>().c_str());
      if (out.contains("moved"))
        std::printf("moved %lld files to %s\n", out["moved"].get<long long>(), o->move_to.c_str());
      if (out.contains("removed_from_index"))
        std::printf("removed %lld images from the index %s\n", out["removed_from_index"].get<long long>(),
                    o->index.c_str());
    }
    return scan.skipped.empty() ? kOk : kSkippedInputs;
  };
}

CommandRegistrar reg("dedup", "Find exact and near-duplicate images and leakage across splits", setup);

}  // namespace
}  // namespace clipkit::cli
