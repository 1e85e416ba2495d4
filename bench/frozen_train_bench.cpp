// Frozen-tower training at COCO 2017 scale (118,287 images, 591,753 captions), measured in parts:
//   1. the one embedding pass: images/s (JPEG decode + preprocess + vision tower) and
//      captions/s (tokenize + text tower, length-sorted dynamic padding), on sample files;
//   2. one cached epoch: projection forward/backward + CLIP loss + AdamW over random features
//      of the real sizes, at the given batch size;
// and the projection: embedding pass + epochs x cached epoch.
// usage: frozen_train_bench --model DUAL_DIR --images DIR [--batch-size 32] [--epochs 3]
//        [--precision fp32|bf16] [--sample-images 256] [--sample-captions 1024] [--json]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "core/parallel.h"
#include "image/batch.h"
#include "pipeline/embedder.h"
#include "train/optimizer.h"

using namespace clipkit;
using clk = std::chrono::steady_clock;

static double since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

int main(int argc, char** argv) {
  std::string model, images, precision = "fp32";
  int batch = 32, epochs = 3, n_img = 256, n_cap = 1024, embed_batch = 32;
  bool json_out = false;
  const int64_t kImages = 118287, kCaptions = 591753;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--model") model = next();
    else if (a == "--images") images = next();
    else if (a == "--batch-size") batch = std::stoi(next());
    else if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--precision") precision = next();
    else if (a == "--sample-images") n_img = std::stoi(next());
    else if (a == "--sample-captions") n_cap = std::stoi(next());
    else if (a == "--json") json_out = true;
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  if (model.empty() || images.empty()) {
    std::fprintf(stderr, "usage: frozen_train_bench --model DUAL_DIR --images DIR [--batch-size 32] [--epochs 3]\n");
    return 2;
  }
  set_num_threads(0);
  model::LoadOptions lo;
  lo.precision = backend::precision_from_name(precision);
  lo.train = lo.freeze_vision = lo.freeze_text = true;  // projections only, as the trainer loads it
  auto emb = pipeline::Embedder::load(model, lo);
  auto& m = emb->model();
  const int64_t Cv = m.config().vision->hidden_size, Ct = m.config().text->hidden_size, P = m.embed_dim();

  // 1a. images: decode + preprocess + vision tower over sample JPEGs (cycled)
  std::vector<std::string> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(images))
    if (e.is_regular_file() && (e.path().extension() == ".jpg" || e.path().extension() == ".jpeg")) files.push_back(e.path().string());
  if (files.empty()) { std::fprintf(stderr, "no .jpg files in %s\n", images.c_str()); return 1; }
  std::sort(files.begin(), files.end());
  const size_t per = image::floats_per_image(emb->preprocess_config());
  std::vector<float> px(per * embed_batch);
  auto run_images = [&](int n) {
    for (int s = 0; s < n; s += embed_batch) {
      std::vector<std::string> b;
      for (int i = s; i < std::min(n, s + embed_batch); ++i) b.push_back(files[i % files.size()]);
      image::preprocess_files(b, emb->preprocess_config(), {}, px.data());
      m.vision_forward(px.data(), static_cast<int64_t>(b.size()), false);
    }
  };
  run_images(embed_batch);  // warm-up
  auto t0 = clk::now();
  run_images(n_img);
  const double img_s = n_img / since(t0);

  // 1b. captions: tokenize + text tower, sorted by length, dynamic padding
  static const char* subj[] = {"A man", "Two dogs", "A red double decker bus", "A woman", "A small cat", "Three children",
                               "A plate of food with broccoli", "An old train"};
  static const char* verb[] = {"riding", "standing next to", "sitting on top of", "looking at", "walking past", "parked near"};
  static const char* obj[] = {"a wooden bench in the park.", "a busy city street at night.", "the snowy mountain slope.",
                              "a large white building with many windows.", "a table with a laptop and a cup of coffee.",
                              "the beach on a sunny day."};
  std::vector<std::string> caps;
  for (int i = 0; i < n_cap; ++i) caps.push_back(std::string(subj[i % 8]) + " " + verb[(i / 8) % 6] + " " + obj[(i / 3) % 6]);
  std::stable_sort(caps.begin(), caps.end(), [](auto& a, auto& b) { return a.size() < b.size(); });
  auto run_caps = [&](int n) {
    for (int s = 0; s < n; s += embed_batch) {
      std::vector<std::string> b(caps.begin() + s, caps.begin() + std::min(n, s + embed_batch));
      std::vector<int32_t> ids, mask;
      int64_t L;
      emb->tokenize(b, &ids, &mask, &L, 128);
      m.text_forward(ids.data(), mask.data(), static_cast<int64_t>(b.size()), L, false);
    }
  };
  run_caps(embed_batch);
  t0 = clk::now();
  run_caps(n_cap);
  const double cap_s = n_cap / since(t0);

  // 2. one cached epoch over random features of COCO size (timed on a slice, scaled)
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  const int64_t steps_timed = 400;
  std::vector<float> fi(static_cast<size_t>(4096 * Cv)), ft(static_cast<size_t>(4096 * Ct));
  for (auto& v : fi) v = nd(rng);
  for (auto& v : ft) v = nd(rng);
  backend::Backend& be = m.backend();
  train::AdamW opt(be, m.trainable(), {0.9, 0.999, 1e-8, 0.1});
  std::vector<float> bi(static_cast<size_t>(batch * Cv)), bt(static_cast<size_t>(batch * Ct));
  t0 = clk::now();
  for (int64_t s = 0; s < steps_timed; ++s) {
    backend::Arena::Scope scope(be.thread_arena());
    for (int k = 0; k < batch; ++k) {  // gather rows, as the trainer does from its cache
      const int64_t r = (s * batch + k) % 4096;
      std::copy(fi.begin() + r * Cv, fi.begin() + (r + 1) * Cv, bi.begin() + k * Cv);
      std::copy(ft.begin() + r * Ct, ft.begin() + (r + 1) * Ct, bt.begin() + k * Ct);
    }
    m.zero_grad();
    auto ei = m.project(model::Part::Vision, bi.data(), batch, true);
    auto et = m.project(model::Part::Text, bt.data(), batch, true);
    auto di = be.thread_arena().alloc(DType::F32, {batch, P}), dt = be.thread_arena().alloc(DType::F32, {batch, P});
    auto l = be.clip_loss(ei, et, m.logit_scale_param().value, &di, &dt);
    const float dscale = static_cast<float>(l.dlogit_scale);
    be.upload(&dscale, m.logit_scale_param().grad);
    m.backward(model::Part::Vision, di);
    m.backward(model::Part::Text, dt);
    opt.step(1e-4, train::clip_coefficient(opt.grad_norm(), 1.0));
  }
  const double step_s = since(t0) / steps_timed;
  const int64_t steps_per_epoch = (kCaptions + batch - 1) / batch;
  const double epoch_s = step_s * steps_per_epoch;
  const double embed_pass_s = kImages / img_s + kCaptions / cap_s;
  const double total_s = embed_pass_s + epochs * epoch_s;
  nlohmann::json j = {{"model", model}, {"architecture", m.architecture()}, {"precision", precision}, {"threads", num_threads()},
                      {"images_per_s", img_s}, {"captions_per_s", cap_s}, {"embedding_pass_s", embed_pass_s},
                      {"batch_size", batch}, {"cached_step_ms", 1e3 * step_s}, {"cached_epoch_s", epoch_s},
                      {"epochs", epochs}, {"projected_total_s", total_s}};
  if (json_out) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s, %s, %d threads\n", m.architecture().c_str(), precision.c_str(), num_threads());
  std::printf("embedding pass   images   %8.1f img/s  (JPEG decode + preprocess + vision tower)\n", img_s);
  std::printf("                 captions %8.1f cap/s  (tokenize + text tower)\n", cap_s);
  std::printf("                 COCO 2017 train: %lld images + %lld captions = %.0f s\n", static_cast<long long>(kImages),
              static_cast<long long>(kCaptions), embed_pass_s);
  std::printf("cached epoch     batch %d: %.3f ms/step x %lld steps = %.1f s\n", batch, 1e3 * step_s,
              static_cast<long long>(steps_per_epoch), epoch_s);
  std::printf("projected        %d epochs: %.0f s (%.1f min) = embedding pass + %d x %.1f s\n", epochs, total_s, total_s / 60,
              epochs, epoch_s);
  return 0;
}
