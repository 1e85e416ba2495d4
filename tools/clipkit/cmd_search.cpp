// clipkit search --index DIR (--text "..." | --image FILE) [-k 10] [--json] [--split S] [--folder F] [--video V]
// --json prints {"results": [{"rank", "id", "path", "score", ...metadata}]}, best first.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "core/json.h"
#include "index/query.h"
#include "model/clip_model.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string index, model, split, folder, video;
  QueryFlags query;
  int64_t k = 10;
  int nprobe = 0;
  bool json = false;
  ComputeOptions compute;
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("--index", o->index, "index folder")->required();
  add_query_flags(app, o->query);
  add_k_flag(app, o->k);
  add_json_flag(app, o->json, "print {\"results\": [...]} JSON");
  app.add_option("--split", o->split, "only images of this split (COCO: train/val)");
  app.add_option("--folder", o->folder, "only images under this folder (absolute, or relative to the indexed root)");
  app.add_option("--video", o->video, "only frames of this source video");
  add_model_flag(app, o->model, ModelUse::Optional);
  add_int_flag(app, "--nprobe", o->nprobe, "IVF lists probed (0 = the index's calibrated value)", 0);
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    auto lib = index::Library::open(o->index);
    auto e = index::load_query_model(*lib, o->model, load_options(o->compute));
    pipeline::EmbedOptions eo;
    Tensor q;
    if (!o->query.text.empty()) {
      q = e->embed_texts({o->query.text}, eo);
    } else {
      std::vector<int64_t> kept;
      std::vector<pipeline::SkippedInput> skipped;
      q = e->embed_image_files({o->query.image}, eo, &kept, &skipped);
      if (!skipped.empty()) fail("{}", skipped[0].reason);
    }
    index::Filter f;
    f.split = o->split;
    f.folder = o->folder;
    f.video = o->video;
    index::SearchParams sp;
    sp.nprobe = o->nprobe;
    auto hits = lib->search(q.ptr<float>(), o->k, f, sp);
    if (o->json) {
      std::printf("%s\n", json_text(index::results_json(hits)).c_str());
      return kOk;
    }
    for (size_t i = 0; i < hits.size(); ++i) {
      const auto& h = hits[i];
      std::printf("%3zu  %.4f  %6lld  %s", i + 1, h.score, static_cast<long long>(h.id), h.record.path.c_str());
      if (!h.record.captions.empty()) std::printf("  \"%s\"", h.record.captions[0].c_str());
      std::printf("\n");
    }
    if (hits.empty()) std::fprintf(stderr, "clipkit: no results\n");
    return kOk;
  };
}

CommandRegistrar reg("search", "Find indexed images by a sentence or an example image", setup);

}  // namespace
}  // namespace clipkit::cli
