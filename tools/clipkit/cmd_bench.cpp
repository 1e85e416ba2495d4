// clipkit bench embed --model DIR [--batch-size 32] [--precision fp32|bf16|int8] [--iters N] [--folder DIR] [--json]
// Throughput of image embedding from preprocessed tensors and of text embedding, achieved GFLOP/s,
// and the fraction of this machine's matmul peak measured in the same run (the roofline); with
// --folder, also image files -> embeddings over the whole folder (decoding and preprocessing on
// --threads workers, all cores by default), after one untimed batch.
// clipkit bench train: cmd_bench_train.cpp.
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "cmd_bench_parity.h"
#include "cmd_bench_train.h"
#include "command.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "model/flops.h"
#include "pipeline/bulk_embed.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}


std::vector<std::string> bench_captions(int n) {
  static const char* subj[] = {"a man", "two dogs", "a red bus", "a woman", "a small cat", "three children", "a plate of food", "an old train"};
  static const char* verb[] = {"riding", "standing next to", "sitting on", "looking at", "walking past", "parked near"};
  static const char* obj[] = {"a wooden bench in the park", "a busy city street at night", "the snowy mountain slope",
                              "a large white building", "a table with a laptop and coffee", "the beach on a sunny day"};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back(std::string(subj[i % 8]) + " " + verb[(i / 8) % 6] + " " + obj[(i / 3) % 6] + ".");
  return out;
}

struct Opts {
  std::string model, folder;
  int iters = 3;
  bool json = false, no_text = false, no_images = false;
  ComputeOptions compute;
};

RunFn setup_embed(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model);
  add_int_flag(app, "--iters", o->iters, "timed batches per measurement", 1);
  add_json_flag(app, o->json);
  app.add_flag("--no-text", o->no_text, "skip the text tower");
  app.add_flag("--no-images", o->no_images, "skip the vision tower");
  add_folder_flag(app, o->folder, "also time the image files of this folder (recursive) -> embeddings");
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    model::LoadOptions lo = load_options(o->compute);
    lo.vision = !o->no_images || !o->folder.empty();
    lo.text = !o->no_text;
    const auto t_load = clock_type::now();
    auto emb = pipeline::Embedder::load(o->model, lo);
    const double load_s = seconds_since(t_load);
    const auto& m = emb->model();
    const int B = o->compute.batch_size;
    pipeline::EmbedOptions eo;
    eo.batch_size = B;
    nlohmann::json j = {{"model", o->model}, {"architecture", m.architecture()}, {"batch_size", B},
                        {"precision", o->compute.precision}, {"device", o->compute.device},
                        {"threads", num_threads()}, {"load_s", load_s}};
    const double peak = m.backend().matmul_peak_gflops(m.precision());
    j["matmul_peak_gflops"] = peak;
    j["precision_note"] = m.backend().precision_note(m.precision());  // "" where the device runs it natively
    if (m.has_vision() && !o->no_images) {
      const int64_t S = m.image_size();
      std::vector<float> px(static_cast<size_t>(B * 3 * S * S));
      std::mt19937 rng(1);
      std::normal_distribution<float> nd(0, 1);
      for (auto& v : px) v = nd(rng);
      const auto t_first = clock_type::now();
      emb->embed_pixels(px.data(), B, eo);  // warm-up: primitives, packed weights
      const double first_s = seconds_since(t_first);
      auto t0 = clock_type::now();
      for (int i = 0; i < o->iters; ++i) emb->embed_pixels(px.data(), B, eo);
      double s = seconds_since(t0);
      double ips = B * o->iters / s;
      // The first batch less a timed one: preparing the weights (packing, bf16 or int8 copies).
      j["image_first_batch_s"] = first_s;
      j["image_weight_prepare_s"] = std::max(0.0, first_s - s / o->iters);
      double gf = ips * model::vision_flops(*m.config().vision, m.embed_dim()) / 1e9;
      j["images_per_s"] = ips;
      j["image_gflops"] = gf;
      j["image_roofline_fraction"] = gf / peak;
      j["image_roofline_images_per_s"] = peak * 1e9 / model::vision_flops(*m.config().vision, m.embed_dim());
    }
    if (!o->folder.empty()) {
      if (!m.has_vision()) fail("--folder: {} has no vision tower", o->model);
      std::vector<std::string> paths;
      for (auto& item : pipeline::list_image_folder(o->folder)) paths.push_back(item.path);
      if (paths.empty()) fail("--folder {}: no image files", o->folder);
      std::vector<std::string> first(paths.begin(), paths.begin() + std::min<size_t>(paths.size(), static_cast<size_t>(B)));
      std::vector<int64_t> kept;
      std::vector<pipeline::SkippedInput> skipped;
      emb->embed_image_files(first, eo, &kept, &skipped);  // warm-up
      kept.clear();
      skipped.clear();
      auto t0 = clock_type::now();
      emb->embed_image_files(paths, eo, &kept, &skipped);
      const double s = seconds_since(t0);
      j["files"] = paths.size();
      j["files_embedded"] = kept.size();
      j["files_per_s"] = static_cast<double>(paths.size()) / s;
    }
    if (m.has_text() && !o->no_text) {
      auto caps = bench_captions(B);
      std::vector<int32_t> ids, mask;
      int64_t L;
      emb->tokenize(caps, &ids, &mask, &L);
      emb->embed_texts(caps, eo);
      auto t0 = clock_type::now();
      for (int i = 0; i < o->iters; ++i) emb->embed_texts(caps, eo);
      double s = seconds_since(t0);
      double tps = B * o->iters / s;
      double gf = tps * model::text_flops(*m.config().text, L, m.embed_dim()) / 1e9;
      j["texts_per_s"] = tps;
      j["text_tokens"] = L;
      j["text_gflops"] = gf;
      j["text_roofline_fraction"] = gf / peak;
    }
    if (o->json) {
      std::printf("%s\n", json_text(j).c_str());
      return kOk;
    }
    std::printf("%s\n%s, batch %d, %d threads\n", m.architecture().c_str(), o->compute.precision.c_str(), B, num_threads());
    std::printf("model load              %8.3f s\n", load_s);
    std::printf("matmul peak (measured)  %8.1f GFLOP/s\n", peak);
    if (j.contains("images_per_s"))
      std::printf("images                  %8.1f img/s   %7.1f GFLOP/s  %5.1f%% of peak  (roofline %.1f img/s)\n",
                  j["images_per_s"].get<double>(), j["image_gflops"].get<double>(),
                  100 * j["image_roofline_fraction"].get<double>(), j["image_roofline_images_per_s"].get<double>());
    if (j.contains("image_weight_prepare_s"))
      std::printf("first image batch       %8.3f s   (%.3f s more than the others: preparing the weights)\n",
                  j["image_first_batch_s"].get<double>(), j["image_weight_prepare_s"].get<double>());
    if (j.contains("files_per_s"))
      std::printf("image files             %8.1f img/s   (%lld files of %s)\n", j["files_per_s"].get<double>(),
                  static_cast<long long>(j["files"].get<int64_t>()), o->folder.c_str());
    if (j.contains("texts_per_s"))
      std::printf("texts (%2lld tokens)       %8.1f txt/s   %7.1f GFLOP/s  %5.1f%% of peak\n",
                  static_cast<long long>(j["text_tokens"].get<int64_t>()), j["texts_per_s"].get<double>(),
                  j["text_gflops"].get<double>(), 100 * j["text_roofline_fraction"].get<double>());
    return kOk;
  };
}

RunFn setup(CLI::App& app) {
  app.require_subcommand(1);
  auto* e = app.add_subcommand("embed", "image and text embedding throughput vs the matmul roofline");
  auto* t = app.add_subcommand("train", "full fine-tuning steps per second (both towers, AdamW) on one device");
  auto* p = app.add_subcommand("parity", "embeddings or one step's gradients of given inputs, to compare with HF's");
  auto run_embed = std::make_shared<RunFn>(setup_embed(*e));
  auto run_train = std::make_shared<RunFn>(setup_bench_train(*t));
  auto run_parity = std::make_shared<RunFn>(setup_bench_parity(*p));
  return [=]() {
    if (e->parsed()) return (*run_embed)();
    if (t->parsed()) return (*run_train)();
    return p->parsed() ? (*run_parity)() : kUsage;
  };
}

CommandRegistrar reg("bench", "Benchmarks (embed, train) and the GPU parity dumps (parity)", setup);

}  // namespace
}  // namespace clipkit::cli
