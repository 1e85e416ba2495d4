// clipkit preprocess (--model DIR | --size S) IMAGE... --out X.npy
//   [--exif-transpose] [--max-pixels N] [--fast-jpeg] [--threads N] [--json]
// (the images as arguments or --images FILE...)
// Decodes and preprocesses images exactly as HF CLIPImageProcessor (Pillow path) and writes
// float32 [N, 3, H, W] to X.npy plus X.jsonl ({"row": i, "file": path} per row). Unreadable
// images are skipped and listed on stderr; exit 3 (kSkippedInputs) when any was skipped.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "image/batch.h"
#include "image/preprocess.h"
#include "io/atomic_file.h"

namespace clipkit::cli {
namespace {

struct PreprocessOptions {
  std::string model, out, image_backend = "pil";
  int size = 0, threads = 0;
  std::vector<std::string> images, image_flags;
  bool exif_transpose = false, fast_jpeg = false, json = false;
  int64_t max_pixels = image::DecodeOptions{}.max_pixels;
};

// .npy v1.0 header for float32 C-order data of `shape`, padded to a multiple of 64 bytes.
std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)  // "(N, 3, H, W)"; a 1-tuple needs its comma
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
  dict += "), }";
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  h += static_cast<char>(dict.size() & 0xFF);
  h += static_cast<char>(dict.size() >> 8);
  return h + dict;
}

std::string jsonl_path(const std::string& out) {
  if (out.size() > 4 && out.compare(out.size() - 4, 4, ".npy") == 0) return out.substr(0, out.size() - 4) + ".jsonl";
  return out + ".jsonl";
}

int run_preprocess(const PreprocessOptions& o) {
  image::PreprocessConfig cfg = o.model.empty() ? image::PreprocessConfig::clip_default(o.size)
                                                : image::PreprocessConfig::from_file(o.model + "/preprocessor_config.json");
  cfg.backend = image_backend(o.image_backend);
  cfg.check(o.model.empty() ? "--size" : o.model + "/preprocessor_config.json");
  image::DecodeOptions dopt;
  dopt.exif_transpose = o.exif_transpose;
  dopt.max_pixels = o.max_pixels;
  if (o.fast_jpeg) dopt.dct_downscale_target = cfg.resize_h > 0 ? std::min(cfg.resize_h, cfg.resize_w) : cfg.shortest_edge;
  set_num_threads(o.threads);
  const size_t per = image::floats_per_image(cfg);

  // Rows are staged in an anonymous temp file (skips make the final N unknown up front), then
  // copied behind the header into the atomically written output.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> body(std::tmpfile(), &std::fclose);
  if (!body) fail("{}: cannot create a temporary file", o.out);
  std::vector<std::string> kept, skipped;
  const size_t chunk = static_cast<size_t>(std::max(1, num_threads())) * 32;
  std::vector<float> buf;
  Progress progress("preprocess", static_cast<int64_t>(o.images.size()), "images");
  for (size_t b = 0; b < o.images.size(); b += chunk) {
    std::vector<std::string> part(o.images.begin() + b, o.images.begin() + std::min(o.images.size(), b + chunk));
    buf.resize(part.size() * per);
    auto errors = image::preprocess_files(part, cfg, dopt, buf.data());
    for (size_t i = 0; i < part.size(); ++i) {
      if (!errors[i].empty()) {
        std::fprintf(stderr, "clipkit: skipped %s\n", errors[i].c_str());
        skipped.push_back(part[i]);
        continue;
      }
      if (std::fwrite(buf.data() + i * per, sizeof(float), per, body.get()) != per)
        fail("{}: write error (disk full?)", o.out);
      kept.push_back(part[i]);
    }
    progress.add(static_cast<int64_t>(part.size()));
  }
  progress.finish();

  AtomicFile npy(o.out);
  npy.write(npy_header({static_cast<int64_t>(kept.size()), 3, cfg.crop_h, cfg.crop_w}));
  std::rewind(body.get());
  std::vector<char> copy(1 << 20);
  size_t got;
  while ((got = std::fread(copy.data(), 1, copy.size(), body.get())) > 0) npy.write(copy.data(), got);
  if (std::ferror(body.get())) fail("{}: read error on the temporary file", o.out);
  npy.commit();
  std::string lines;
  for (size_t i = 0; i < kept.size(); ++i) lines += json_text(nlohmann::ordered_json{{"row", i}, {"file", kept[i]}}) + "\n";
  write_file_atomic(jsonl_path(o.out), lines);

  std::fprintf(stderr, "clipkit: preprocessed %zu image(s) into %s [%zu, 3, %d, %d]", kept.size(), o.out.c_str(),
               kept.size(), cfg.crop_h, cfg.crop_w);
  if (!skipped.empty()) std::fprintf(stderr, ", skipped %zu (listed above)", skipped.size());
  std::fprintf(stderr, "\n");
  if (o.json)
    std::printf("%s\n", nlohmann::json{{"out", o.out}, {"sidecar", jsonl_path(o.out)},
                                       {"shape", {kept.size(), 3, cfg.crop_h, cfg.crop_w}}, {"skipped", skipped}}
                            .dump()
                            .c_str());
  return skipped.empty() ? kOk : kSkippedInputs;
}

CommandRegistrar reg("preprocess", "decode + CLIP-preprocess images to a float32 .npy (HF CLIPImageProcessor, bit-exact)",
                     [](CLI::App& app) -> RunFn {
                       auto o = std::make_shared<PreprocessOptions>();
                       auto* m = add_model_flag(app, o->model, ModelUse::Optional,
                                                "model whose preprocessor_config.json to use (folder, hub id or cache folder)");
                       auto* s = add_int_flag(app, "--size", o->size, "shortest edge = crop = S, CLIP mean/std (0 = use --model)", 0, 8192);
                       require_one_of(app, {m, s});
                       app.add_option("files", o->images, "image files (format detected from content)")->default_str("");
                       add_images_flag(app, o->image_flags);
                       add_json_flag(app, o->json, "print a summary as JSON");
                       app.add_option("--out", o->out, "output .npy (a .jsonl naming each row is written beside it)")
                           ->required();
                       app.add_flag("--exif-transpose", o->exif_transpose,
                                    "apply EXIF orientation first (HF's processor does not)");
                       add_int_flag(app, "--max-pixels", o->max_pixels,
                                    "decompression-bomb limit on width*height (0 = none)", int64_t{0});
                       app.add_flag("--fast-jpeg", o->fast_jpeg,
                                    "JPEG DCT-domain downscaling when >= 2x the target (faster, NOT bit-exact)");
                       add_image_backend_option(app, o->image_backend);
                       add_threads_flag(app, o->threads);
                       return [o, m, s]() {
                         if (m->count() == 0 && s->count() == 0) fail("preprocess: give --model DIR or --size S");
                         o->images.insert(o->images.end(), o->image_flags.begin(), o->image_flags.end());
                         if (o->images.empty()) usage_error("no images given (as arguments or --images FILE...)");
                         return run_preprocess(*o);
                       };
                     });

}  // namespace
}  // namespace clipkit::cli
