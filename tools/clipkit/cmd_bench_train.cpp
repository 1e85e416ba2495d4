// clipkit bench train --model DUAL_DIR [--batch-size 32] [--steps 2] [--warmup 1]
//        [--precision fp32,bf16] [--padding 128,dynamic] [--device cpu|cuda] [--threads N] [--no-dropout] [--json]
// Full fine-tuning throughput: samples/s of complete training steps (both towers forward, CLIP
// loss, both towers backward, gradient clipping at 1.0, AdamW with weight decay 0.1) for a
// dual-encoder checkpoint on one device, in each precision, with captions padded to a fixed length
// and with dynamic padding (the batch's longest caption), plus two rates: model GFLOP/s (the nominal
// forward FLOPs x 3, padding included: the count every engine shares) and performed GFLOP/s (the
// matmul FLOPs the ops counted, backend/flop_count.h: padding and rows no pooled output needs are
// skipped) against the device's matmul peak measured in the same run. Inputs are synthetic (speed
// does not depend on the values): random pixels, random token ids with caption lengths 10..20
// tokens (COCO-like), the same as bench/peers/torch_train_bench.py and bench/gpu/hf_side.py use.
// RoBERTa's dropout is on by default (train mode, as the HF Trainer runs it). --json: one line, an
// array of rows. --profile: where a timed step's time goes, op by op (core/profile.h's scopes over
// the timed steps only; what no scope covers is "outside the named ops"), after each row and in
// its JSON ("ops"). (This was bench/train_bench before issue 16: the CLI has it in every build,
// the standalone GPU build included.)
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <utility>

#include "backend/flop_count.h"
#include "cmd_bench_train.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "model/clip_model.h"
#include "model/flops.h"
#include "train/optimizer.h"

namespace clipkit::cli {
namespace {

using clk = std::chrono::steady_clock;

double since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(x);
  return v;
}

struct Opts {
  std::string model, precisions = "fp32,bf16", paddings = "128,dynamic", device = "auto";
  int batch = 32, steps = 2, warmup = 1, threads = 0;
  bool json = false, no_dropout = false, profile = false;
};

// The timed steps' op table: ms per step and share of the step, nested scopes under their parent.
nlohmann::json op_breakdown(std::vector<ProfileRow> rows, double step_ms, int steps, bool print) {
  nlohmann::json ops = nlohmann::json::array();
  std::stable_sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) {
    return a.nested != b.nested ? !a.nested : a.wall_ms > b.wall_ms;
  });
  double named = 0;
  if (print) std::printf("  %-28s %10s %8s %8s %10s\n", "op", "ms/step", "% step", "calls", "GFLOP/s");
  for (const auto& r : rows) {
    const double ms = r.wall_ms / steps;
    if (!r.nested) named += ms;
    // the matmul FLOPs performed inside the op over its wall time (0: no products)
    const double gflops = r.wall_ms > 0 ? static_cast<double>(r.flops) / (r.wall_ms * 1e6) : 0;
    ops.push_back({{"op", r.name}, {"ms_per_step", ms}, {"share", ms / step_ms}, {"calls_per_step", r.calls / steps},
                   {"gflops", gflops}, {"nested", r.nested}});
    if (print) {
      const std::string rate = r.flops > 0 ? fmt::format("{:10.1f}", gflops) : std::string(10, ' ');
      std::printf("  %-28s %10.1f %7.1f%% %8lld %s%s\n", r.name.c_str(), ms, 100 * ms / step_ms,
                  static_cast<long long>(r.calls / steps), rate.c_str(), r.nested ? "  (inside another op)" : "");
    }
  }
  ops.push_back({{"op", "outside the named ops"}, {"ms_per_step", step_ms - named}, {"share", 1 - named / step_ms},
                 {"nested", false}});
  if (print) {
    std::printf("  %-28s %10.1f %7.1f%%\n", "outside the named ops", step_ms - named, 100 * (1 - named / step_ms));
    std::printf("  %-28s %10.1f\n", "step (mean of the timed)", step_ms);
  }
  return ops;
}

// the rows of one precision: a step timed at each padding
void bench_precision(const Opts& o, const std::string& pname, nlohmann::json& rows) {
  model::LoadOptions to;
  to.precision = backend::precision_from_name(pname);
  to.device = backend::resolve_device(o.device);
  to.dropout = !o.no_dropout;
  to.train = true;
  auto m = model::ClipModel::load(o.model, to);
  if (!m->has_vision() || !m->has_text()) fail("{}: bench train needs a dual encoder (vision and text towers)", o.model);
  backend::Backend& be = m->backend();
  const double peak = be.matmul_peak_gflops(to.precision);
  const std::string note = be.precision_note(to.precision);  // emulated on this device: say so beside the figures
  if (!note.empty() && !o.json) std::printf("%s: %s\n", pname.c_str(), note.c_str());
  const auto& vc = *m->config().vision;
  const auto& tc = *m->config().text;
  const int64_t B = o.batch, P = m->embed_dim(), S = vc.image_size;
  train::AdamW opt(be, m->trainable(), {0.9, 0.999, 1e-8, 0.1});
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> px(static_cast<size_t>(B * 3 * S * S));
  for (auto& v : px) v = nd(rng);
  std::vector<int64_t> len(static_cast<size_t>(B));
  for (int64_t k = 0; k < B; ++k) len[k] = 10 + (k * 7) % 11;  // 10..20 tokens incl. bos/eos
  for (const auto& pad : split(o.paddings)) {
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
      opt.step(1e-5, train::clip_coefficient(opt.grad_norm(), 1.0));  // grad_norm waits for the device
    };
    for (int w = 0; w < o.warmup; ++w) step(static_cast<uint64_t>(w));
    be.synchronize();
    if (o.profile) profile_take();  // the warm-up's and the load's counts are not the step's
    std::vector<double> times;
    int64_t step_flops = 0;  // matmul FLOPs one step performed (the ops' count)
    for (int s = 0; s < o.steps; ++s) {
      backend::reset_flop_count();
      auto t0 = clk::now();
      step(static_cast<uint64_t>(o.warmup + s));
      be.synchronize();
      times.push_back(since(t0));
      step_flops = backend::flops_counted();
    }
    std::vector<ProfileRow> prof;
    if (o.profile) prof = profile_take();
    double total = 0;
    for (double x : times) total += x;
    std::sort(times.begin(), times.end());
    const double t = times[times.size() / 2];
    const double fwd = B * (model::vision_flops(vc, P) + model::text_flops(tc, L, P));
    const double gflops = 3.0 * fwd / t / 1e9, done = static_cast<double>(step_flops) / t / 1e9;
    rows.push_back({{"model", o.model}, {"device", to.device}, {"precision", pname}, {"padding", pad}, {"seq_len", L},
                    {"batch_size", B}, {"threads", num_threads()}, {"step_s", t}, {"samples_per_s", B / t},
                    {"gflops", gflops}, {"performed_gflops", done}, {"matmul_peak_gflops", peak},
                    {"roofline_fraction", done / peak}, {"steps", o.steps}, {"warmup", o.warmup},
                    {"dropout", !o.no_dropout}, {"precision_note", note}});
    if (!o.json)
      std::printf("%-5s pad %-8s L=%3lld  %7.2f samples/s  step %6.3f s  model %7.1f GFLOP/s  performed %7.1f "
                  "GFLOP/s = %5.1f%% of %.0f GFLOP/s peak\n",
                  pname.c_str(), pad.c_str(), static_cast<long long>(L), B / t, t, gflops, done, 100 * done / peak, peak);
    if (o.profile) rows.back()["ops"] = op_breakdown(std::move(prof), 1e3 * total / o.steps, o.steps, !o.json);
    std::fflush(stdout);
  }
}

}  // namespace

RunFn setup_bench_train(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model, ModelUse::Required, "HF dual-encoder checkpoint");
  add_batch_size_flag(app, o->batch, "samples per step");
  add_int_flag(app, "--steps", o->steps, "timed steps (the median is reported)", 1);
  add_int_flag(app, "--warmup", o->warmup, "untimed steps first", 0);
  app.add_option("--precision", o->precisions, "comma-separated: fp32, bf16")->capture_default_str();
  app.add_option("--padding", o->paddings, "comma-separated caption lengths: N tokens, or dynamic (the batch's longest)")
      ->capture_default_str();
  app.add_flag("--no-dropout", o->no_dropout, "turn off the config's dropout");
  add_threads_flag(app, o->threads);
  add_device_option(app, o->device);
  add_json_flag(app, o->json, "one line: an array of rows");
  app.add_flag("--profile", o->profile,
               "after each row, where the timed steps' time goes: ms per step of each op (and in the JSON: \"ops\")");
  return [o]() {
    if (o->profile) profile_enable();
    if (o->batch < 2) fail("--batch-size must be ≥ 2 for the contrastive loss, got {}", o->batch);
    for (const auto& pad : split(o->paddings))
      if (pad != "dynamic" && (pad.empty() || pad.find_first_not_of("0123456789") != std::string::npos || std::stoll(pad) < 2))
        fail("--padding: '{}' is neither a token count ≥ 2 nor dynamic", pad);
    ComputeOptions c;
    c.threads = o->threads;
    apply_compute_options(c);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& pname : split(o->precisions)) bench_precision(*o, pname, rows);
    if (o->json) std::printf("%s\n", json_text(rows).c_str());
    return kOk;
  };
}

}  // namespace clipkit::cli
