// Full fine-tuning throughput: samples/s of complete training steps (both towers forward, CLIP
// loss, both towers backward, gradient clipping, AdamW update) for a dual-encoder checkpoint, in
// fp32 and bf16, with captions padded to 128 tokens and with dynamic padding (the batch's longest
// caption), plus two rates: model GFLOP/s (the nominal forward FLOPs x 3, padding included: the
// count every engine shares) and performed GFLOP/s (the matmul FLOPs the ops counted, backend/flop_count.h:
// padding and rows no pooled output needs are skipped) against this machine's matmul peak measured in
// the same run. Inputs are synthetic (speed does not depend on the values): random
// pixels, random token ids with caption lengths 10..20 tokens (COCO-like), the same as
// bench/peers/torch_train_bench.py uses.
// usage: train_bench --model DUAL_DIR [--batch-size 32] [--steps 2] [--warmup 1]
//        [--precision fp32,bf16] [--padding 128,dynamic] [--threads N] [--no-dropout] [--json]
// RoBERTa's dropout is on by default (train mode, as the HF Trainer runs it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "backend/flop_count.h"
#include "model/clip_model.h"
#include "model/flops.h"
#include "train/optimizer.h"

using namespace clipkit;
using clk = std::chrono::steady_clock;

static double since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

static std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(x);
  return v;
}


int main(int argc, char** argv) {
  std::string model, precisions = "fp32,bf16", paddings = "128,dynamic";
  int batch = 32, steps = 2, warmup = 1, threads = 0;
  bool json_out = false, dropout = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--model") model = next();
    else if (a == "--batch-size") batch = std::stoi(next());
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--precision") precisions = next();
    else if (a == "--padding") paddings = next();
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--json") json_out = true;
    else if (a == "--no-dropout") dropout = false;
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  if (model.empty() || batch < 2 || steps < 1) {
    std::fprintf(stderr, "usage: train_bench --model DUAL_DIR [--batch-size 32] [--steps 2] [--warmup 1] "
                         "[--precision fp32,bf16] [--padding 128,dynamic] [--json]\n");
    return 2;
  }
  set_num_threads(threads);
  nlohmann::json rows = nlohmann::json::array();
  try {
    for (const auto& pname : split(precisions)) {
      model::LoadOptions to;
      to.precision = backend::precision_from_name(pname);
      to.dropout = dropout;
      to.train = true;
      auto m = model::ClipModel::load(model, to);
      backend::Backend& be = m->backend();
      const double peak = be.matmul_peak_gflops(to.precision);
      const auto& cfg = m->config();
      const auto& vc = *cfg.vision;
      const auto& tc = *cfg.text;
      const int64_t B = batch, P = m->embed_dim(), S = vc.image_size;
      train::AdamW opt(be, m->trainable(), {0.9, 0.999, 1e-8, 0.1});
      std::mt19937 rng(1);
      std::normal_distribution<float> nd(0, 1);
      std::vector<float> px(static_cast<size_t>(B * 3 * S * S));
      for (auto& v : px) v = nd(rng);
      std::vector<int64_t> len(static_cast<size_t>(B));
      for (int64_t k = 0; k < B; ++k) len[k] = 10 + (k * 7) % 11;  // 10..20 tokens incl. bos/eos
      for (const auto& pad : split(paddings)) {
        const int64_t L = pad == "dynamic" ? *std::max_element(len.begin(), len.end()) : std::stoll(pad);
        std::vector<int32_t> ids(static_cast<size_t>(B * L), tc.pad_token_id), mask(static_cast<size_t>(B * L), 0);
        for (int64_t k = 0; k < B; ++k) {
          const int64_t n = std::min(L, len[k]);
          for (int64_t t = 0; t < n; ++t) {
            ids[k * L + t] = t == 0 ? tc.bos_token_id : t == n - 1 ? tc.eos_token_id
                                                                    : static_cast<int32_t>(1000 + (k * 131 + t * 17) % 20000);
            mask[k * L + t] = 1;
          }
        }
        auto step = [&](uint64_t s) {  // the trainer's step (train/trainer.cpp) on one process
          backend::Arena::Scope scope(be.thread_arena());
          m->zero_grad();
          auto ei = m->embed_images(px.data(), B, true, s);
          auto et = m->embed_texts(ids.data(), mask.data(), B, L, true, s);
          auto di = be.thread_arena().alloc(DType::F32, {B, P}), dt = be.thread_arena().alloc(DType::F32, {B, P});
          auto r = be.clip_loss(ei, et, m->logit_scale_param().value, &di, &dt);
          m->backward(model::Part::Vision, di);
          m->backward(model::Part::Text, dt);
          m->settle_grads();
          const float dscale = static_cast<float>(r.dlogit_scale);
          be.upload(&dscale, m->logit_scale_param().grad);
          opt.step(1e-5, train::clip_coefficient(opt.grad_norm(), 1.0));
        };
        for (int w = 0; w < warmup; ++w) step(static_cast<uint64_t>(w));
        std::vector<double> times;
        int64_t step_flops = 0;  // matmul FLOPs one step performed (the ops' count)
        for (int s = 0; s < steps; ++s) {
          backend::reset_flop_count();
          auto t0 = clk::now();
          step(static_cast<uint64_t>(warmup + s));
          times.push_back(since(t0));
          step_flops = backend::flops_counted();
        }
        std::sort(times.begin(), times.end());
        const double t = times[times.size() / 2];
        // model GFLOP/s: the nominal forward FLOPs x 3 (what PyTorch computes, padding included), the
        // same count for every engine; done: the matmul FLOPs clipkit performed (padding and rows no
        // pooled output needs are skipped), which is what the matmul peak bounds
        const double fwd = B * (model::vision_flops(vc, P) + model::text_flops(tc, L, P));
        const double gflops = 3.0 * fwd / t / 1e9, done = static_cast<double>(step_flops) / t / 1e9;
        rows.push_back({{"model", model}, {"precision", pname}, {"padding", pad}, {"seq_len", L}, {"batch_size", B},
                        {"threads", num_threads()}, {"step_s", t}, {"samples_per_s", B / t}, {"gflops", gflops},
                        {"performed_gflops", done}, {"matmul_peak_gflops", peak}, {"roofline_fraction", done / peak},
                        {"steps", steps}, {"warmup", warmup}, {"dropout", dropout}});
        if (!json_out)
          std::printf("%-5s pad %-8s L=%3lld  %7.2f samples/s  step %6.2f s  model %7.1f GFLOP/s  performed %7.1f "
                      "GFLOP/s = %5.1f%% of %.0f GFLOP/s peak\n",
                      pname.c_str(), pad.c_str(), static_cast<long long>(L), B / t, t, gflops, done, 100 * done / peak,
                      peak);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
  if (json_out) std::printf("%s\n", rows.dump(2).c_str());
  return 0;
}
