// clipkit retrieve [--model DIR] (--index DIR | --embeddings E.npy | --folder DIR) (--text TEXT | --image F)
//                  [-k 5] [--filter KEY=VALUE ...] [--min-score X] [--thumbnails [--thumb-size N]]
// (--model is optional with --index: the index's model; --query/--query-image and --images DIR are the
// old spellings of --text/--image and --folder.)
// Retrieval for RAG: the top-k images for a query as JSON ready for a multimodal LLM prompt:
// results with path, score, caption and metadata (and base64 JPEG thumbnails with --thumbnails),
// plus an OpenAI-style "content" list of text and image_url parts.
// --embeddings reads the .npy + .jsonl pair `clipkit embed` writes (rows' "source"/"path" is the
// image, "caption"/"text" its caption, other fields are metadata).
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/dedup.h"
#include "apps/library_apps.h"
#include "apps/retrieve.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "inputs.h"
#include "io/npy.h"
#include "index/library.h"
#include "index/query.h"
#include "pipeline/bulk_embed.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, embeddings, folder, index;
  std::vector<std::string> filters, images;
  QueryFlags query;
  int k = 5, thumb_size = 224;
  double min_score = -2;
  bool thumbnails = false, json = true;
  ComputeOptions compute;
  std::string image_backend = "pil";
};

std::vector<apps::RetrievalItem> read_sidecar(const std::string& path, int64_t rows) {
  std::ifstream f(path);
  if (!f) fail("{}: cannot open (the .jsonl written beside the embeddings)", path);
  std::vector<apps::RetrievalItem> items;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j;
    std::string why;
    if (!try_parse_json(line, &j, &why)) fail("{}:{}: not JSON: {}", path, n, why);
    if (!j.is_object()) fail("{}:{}: not a JSON object", path, n);
    apps::RetrievalItem it;
    if (j.contains("path") && j["path"].is_string()) it.path = j["path"];
    else if (j.contains("source") && j["source"].is_string()) it.path = j["source"];
    else fail("{}:{}: row has no \"path\" or \"source\"", path, n);
    if (j.contains("caption") && j["caption"].is_string()) it.caption = j["caption"];
    else if (j.contains("captions") && j["captions"].is_array() && !j["captions"].empty()) it.caption = json_text(j["captions"][0]);
    else if (j.contains("text") && j["text"].is_string()) it.caption = j["text"];
    for (auto& [k, v] : j.items())
      if (k != "path" && k != "source" && k != "caption" && k != "text" && k != "row") it.metadata[k] = v;
    items.push_back(std::move(it));
  }
  if (static_cast<int64_t>(items.size()) != rows)
    fail("{}: {} rows, but the embeddings have {}", path, items.size(), rows);
  return items;
}

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model, ModelUse::Optional,
                 "model that embeds the query (default with --index: the index's model; required otherwise)");
  auto* idx = app.add_option("--index", o->index, "an index built by `clipkit index` (FAISS search, filters applied after)");
  auto* emb = app.add_option("--embeddings", o->embeddings, ".npy from `clipkit embed` (with its .jsonl sidecar)");
  auto* folder = add_folder_flag(app, o->folder, "a folder of images, embedded now");
  auto* files = add_images_flag(app, o->images, &o->folder, "image files, embedded now");
  require_one_of(app, {idx, emb, folder, files});
  add_query_flags(app, o->query);
  add_k_flag(app, o->k);
  app.add_option("--filter", o->filters, "KEY=VALUE, KEY!=VALUE, KEY~TEXT, KEY>=X ... on path/caption/metadata")
      ->allow_extra_args(false)->default_str("");
  add_number_flag(app, "--min-score", o->min_score, "drop results below this cosine similarity (-2 = keep all)", -2, 1);
  add_json_flag(app, o->json, "print the result as JSON (always: the output is the JSON for a prompt)");
  app.add_flag("--thumbnails", o->thumbnails, "include base64 JPEG thumbnails (data URIs)");
  add_int_flag(app, "--thumb-size", o->thumb_size, "thumbnail longer side in pixels", 1, 4096);
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  add_check(app, [o] {
    if (o->index.empty() && o->model.empty()) usage_error("--model is required (except with --index)");
  });
  return [o]() {
    apply_compute_options(o->compute);
    apps::RetrieveOptions ro;
    ro.k = o->k;
    ro.min_score = o->min_score;
    ro.thumbnails = o->thumbnails;
    ro.thumb_size = o->thumb_size;
    for (auto& f : o->filters) ro.filters.push_back(apps::Filter::parse(f));
    const model::LoadOptions lo = load_options(o->compute);
    std::unique_ptr<index::Library> lib;
    if (!o->index.empty()) lib = index::Library::open(o->index);
    auto emb = lib ? index::load_query_model(*lib, o->model, lo) : pipeline::Embedder::load(o->model, lo);
    emb->set_image_backend(image_backend(o->image_backend));
    pipeline::EmbedOptions eo;
    eo.batch_size = o->compute.batch_size;
    std::vector<apps::RetrievalItem> items;
    Tensor x;
    int rc = kOk;
    if (!lib && !o->embeddings.empty()) {
      x = read_npy(o->embeddings).to_f32();
      if (x.shape.size() != 2 || x.dim(1) != emb->dim())
        fail("{}: embeddings have shape {}, the model embeds to [N, {}]", o->embeddings, shape_str(x.shape), emb->dim());
      model::l2_normalize_rows(x.ptr<float>(), x.dim(0), x.dim(1));
      items = read_sidecar(sidecar_path(o->embeddings), x.dim(0));
    } else if (!lib) {
      auto paths = o->folder.empty() ? o->images : apps::list_image_files(o->folder);
      std::vector<int64_t> kept;
      std::vector<pipeline::SkippedInput> skipped;
      x = emb->embed_image_files(paths, eo, &kept, &skipped);
      for (auto& s : skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
      if (!skipped.empty()) rc = kSkippedInputs;
      for (int64_t k : kept) items.push_back({paths[static_cast<size_t>(k)], "", nlohmann::json::object()});
    }
    Tensor qe;
    std::string qtext = o->query.text;
    if (!o->query.text.empty()) {
      qe = emb->embed_texts({o->query.text}, eo);
    } else {
      std::vector<int64_t> kept;
      std::vector<pipeline::SkippedInput> skipped;
      qe = emb->embed_image_files({o->query.image}, eo, &kept, &skipped);
      if (!skipped.empty()) fail("{}", skipped[0].reason);
      qtext = "image:" + o->query.image;
    }
    if (lib) {
      std::printf("%s\n", json_text(apps::retrieve_from_library(*lib, qtext, qe.ptr<float>(), ro), 2).c_str());
      return rc;
    }
    auto j = apps::retrieve(qtext, qe.ptr<float>(), items, x.shape.empty() ? nullptr : x.ptr<float>(), emb->dim(), ro);
    std::printf("%s\n", json_text(j, 2).c_str());
    return rc;
  };
}

CommandRegistrar reg("retrieve", "Top-k images for a query as JSON for a multimodal LLM prompt (RAG)", setup);

}  // namespace
}  // namespace clipkit::cli
