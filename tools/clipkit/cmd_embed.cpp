// clipkit embed --model DIR (--pixels X.npy | --images F... | --image-list L | --text T... | --texts F)
//               --out OUT.npy [--no-normalize]
// clipkit embed --model DIR (--folder DIR | --coco ROOT [--split S] | --data SHARDS [--caption-key K] |
//               --images/--image-list ... --shards) --out OUT_DIR [--shard-size N] [--decode-threads N]
//               (resumable shards, see bulk_embed.h; `mpirun -np N clipkit embed ...` splits the work)
// --json prints a summary {"out", "rows", "dim", "skipped": [...]} (shards: the bulk summary).
// Writes OUT.npy float32 [N, D] (L2-normalized unless --no-normalize) and OUT.jsonl naming each
// row's source, in order. Unreadable images are listed on stderr, skipped, and exit status is 3.
#include <nlohmann/json.hpp>

#include "cmd_embed_bulk.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "inputs.h"
#include "io/npy.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, pixels, image_list, texts_file, out;
  std::vector<std::string> images, texts;
  bool no_normalize = false, exif_transpose = false, json = false;
  int64_t max_length = 0;
  std::string image_backend = "pil";
  ComputeOptions compute;
  // bulk: folders / COCO / --shards write a resumable folder of shards (cmd_embed_bulk.h)
  std::string folder, coco, split, data, caption_key = "txt";
  bool shards = false;
  BulkFlags bulk;
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model);
  auto* px = app.add_option("--pixels", o->pixels, "preprocessed pixels .npy float32 [N,3,H,W]");
  auto* files = add_images_flag(app, o->images);
  auto* list = app.add_option("--image-list", o->image_list, "file with one image path per line");
  auto* text = app.add_option("--text", o->texts, "a text (repeatable)")->default_str("");
  auto* texts = app.add_option("--texts", o->texts_file, "texts: .txt one per line, or .jsonl with a \"text\" field");
  auto* folder = add_folder_flag(app, o->folder, "a folder of images, recursive (writes shards into --out DIR)");
  auto* coco = app.add_option("--coco", o->coco, "a COCO 2017 root, one row per image with its captions (writes shards into --out DIR)");
  auto* data = app.add_option("--data", o->data,
                              "WebDataset shards, e.g. 'shards/{00000..00127}.tar' (braces, globs; writes shards into --out DIR)");
  require_one_of(app, {px, files, list, text, texts, folder, coco, data});
  app.add_option("--split", o->split, "with --coco: train or val (\"\" = both)");
  app.add_flag("--shards", o->shards,
               "with --images/--image-list: write resumable shards into the folder --out (implied by --folder/--coco)");
  add_bulk_flags(app, o->bulk);
  add_caption_key_flag(app, o->caption_key);
  app.add_option("--out", o->out, "output .npy (a .jsonl sidecar is written beside it)")->required();
  app.add_flag("--no-normalize", o->no_normalize, "raw features, exactly HF get_image_features/get_text_features");
  app.add_flag("--exif-transpose", o->exif_transpose, "apply EXIF orientation (HF ignores it)");
  add_int_flag(app, "--max-length", o->max_length,
               "texts: truncate to N tokens, special tokens included (e.g. the --max-seq-length the model was "
               "trained with; 0 = the model's limit)",
               int64_t{0}, int64_t{1} << 20);
  add_check(app, [o] {
    if (o->max_length == 1) usage_error("--max-length must be 0 (the model's limit) or ≥ 2, got 1");
  });
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  add_json_flag(app, o->json, "print a summary as JSON");
  return [o]() {
    const bool bulk = o->shards || !o->folder.empty() || !o->coco.empty() || !o->data.empty();
    if (bulk) {
      if (!o->pixels.empty() || !o->texts.empty() || !o->texts_file.empty())
        fail("--shards works on images (--folder, --coco, --data, --images, --image-list), not on pixels or texts");
      if (o->no_normalize) fail("--no-normalize is not supported with shards");
      auto comm = dist::make_comm(nullptr, nullptr);  // one process, or a rank of mpirun
      ComputeOptions c = o->compute;
      c.threads = threads_per_rank(c.threads);
      apply_compute_options(c);
      auto emb = pipeline::Embedder::load(o->model, load_options(c, Towers::Images));
      emb->set_image_backend(image_backend(o->image_backend));
      BulkInputs in{o->folder, o->coco, o->split, o->image_list, o->data, o->caption_key, o->images};
      return run_bulk_embed(*emb, in, o->out, o->bulk, c, o->exif_transpose, *comm, o->json);
    }
    apply_compute_options(o->compute);
    const bool images = !o->pixels.empty() || !o->images.empty() || !o->image_list.empty();
    auto emb = pipeline::Embedder::load(o->model, load_options(o->compute, images ? Towers::Images : Towers::Texts));
    emb->set_image_backend(image_backend(o->image_backend));
    pipeline::EmbedOptions eo;
    eo.batch_size = o->compute.batch_size;
    eo.normalize = !o->no_normalize;
    eo.decode.exif_transpose = o->exif_transpose;
    eo.max_text_tokens = o->max_length;
    std::vector<std::string> rows;
    Tensor out;
    int rc = kOk;
    std::vector<pipeline::SkippedInput> skipped;
    if (!o->pixels.empty()) {
      Tensor px = read_npy(o->pixels).to_f32();
      const int64_t S = emb->model().image_size();
      if (px.shape.size() != 4 || px.dim(1) != 3 || px.dim(2) != S || px.dim(3) != S)
        fail("{}: pixels have shape {}, the model needs [N, 3, {}, {}]", o->pixels, shape_str(px.shape), S, S);
      Progress p("embed", px.dim(0), "images");
      out = emb->embed_pixels(px.ptr<float>(), px.dim(0), eo, &p);
      for (int64_t i = 0; i < px.dim(0); ++i)
        rows.push_back(json_text(nlohmann::json{{"row", i}, {"source", o->pixels}, {"index", i}}));
    } else if (!o->images.empty() || !o->image_list.empty()) {
      auto paths = o->images.empty() ? read_list(o->image_list) : o->images;
      std::vector<int64_t> kept;
      Progress p("embed", static_cast<int64_t>(paths.size()), "images");
      out = emb->embed_image_files(paths, eo, &kept, &skipped, &p);
      p.finish();
      for (size_t r = 0; r < kept.size(); ++r)
        rows.push_back(json_text(nlohmann::json{{"row", r}, {"source", paths[static_cast<size_t>(kept[r])]}}));
      for (auto& s : skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
      if (!skipped.empty()) {
        std::fprintf(stderr, "clipkit: %zu of %zu images skipped\n", skipped.size(), paths.size());
        rc = kSkippedInputs;
      }
    } else {
      auto texts = o->texts_file.empty() ? o->texts : read_texts(o->texts_file);
      Progress p("embed", static_cast<int64_t>(texts.size()), "texts");
      out = emb->embed_texts(texts, eo, &p);
      for (size_t r = 0; r < texts.size(); ++r) rows.push_back(json_text(nlohmann::json{{"row", r}, {"text", texts[r]}}));
    }
    if (out.shape.empty()) out = Tensor::empty(DType::F32, {0, emb->dim()});
    write_npy(o->out, out);
    write_jsonl(sidecar_path(o->out), rows);
    std::fprintf(stderr, "clipkit: wrote %s [%lld, %lld] and %s\n", o->out.c_str(), static_cast<long long>(out.dim(0)),
                 static_cast<long long>(out.dim(1)), sidecar_path(o->out).c_str());
    if (o->json) {
      nlohmann::json sk = nlohmann::json::array();
      for (auto& s : skipped) sk.push_back({{"path", s.source}, {"reason", s.reason}});
      std::printf("%s\n", nlohmann::json{{"out", o->out}, {"sidecar", sidecar_path(o->out)}, {"rows", out.dim(0)},
                                         {"dim", out.dim(1)}, {"skipped", sk}}.dump().c_str());
    }
    return rc;
  };
}

CommandRegistrar reg("embed", "Embed images, preprocessed pixels or texts into an .npy matrix", setup);

}  // namespace
}  // namespace clipkit::cli
