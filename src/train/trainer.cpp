#include "train/trainer.h"

#include "train/trainer_internal.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/progress.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "pipeline/embedder.h"
#include "train/checkpoint.h"
#include "train/clip_loss.h"
#include "train/feature_cache.h"
#include "train/optimizer.h"
#include "train/projection_head.h"

namespace clipkit::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<float> tensor_f32(const Tensor& t) {
  Tensor f = t.to_f32();
  return std::vector<float>(f.ptr<float>(), f.ptr<float>() + f.numel());
}

void init_head(ProjectionHead& h, const std::string& dir, const pipeline::Embedder& emb) {
  Checkpoint ck(dir);
  const auto& c = emb.model().config();
  h.init(tensor_f32(ck.get("visual_projection.weight")), tensor_f32(ck.get("text_projection.weight")), c.projection_dim,
         c.vision->hidden_size, c.text->hidden_size,
         ck.has("logit_scale") ? tensor_f32(ck.get("logit_scale"))[0] : c.logit_scale_init);
}

// Projects + normalizes all features and computes loss (mean over batches of B rows, in row
// order) and retrieval recall (images deduplicated; each caption matches its own image).
json eval_features(const Features& F, const ProjectionHead& h, int B, const std::string& split) {
  const int64_t P = h.P, Ni = F.images.dim(0), Nr = static_cast<int64_t>(F.rows.size());
  std::vector<float> img(static_cast<size_t>(Ni * P)), txt(static_cast<size_t>(Nr * P));
  h.project_images(F.images.ptr<float>(), Ni, img.data());
  h.project_texts(F.texts.ptr<float>(), Nr, txt.data());
  double loss = 0;
  int64_t batches = 0;
  std::vector<float> bi, bt;
  for (int64_t s = 0; s < Nr; s += B) {
    const int64_t n = std::min<int64_t>(B, Nr - s);
    bi.resize(static_cast<size_t>(n * P));
    bt.assign(txt.begin() + s * P, txt.begin() + (s + n) * P);
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(bi.data() + k * P, img.data() + F.row_image[static_cast<size_t>(s + k)] * P, sizeof(float) * P);
    loss += clip_loss(bi.data(), bt.data(), n, P, h.logit_scale, nullptr, nullptr).loss;
    ++batches;
  }
  model::l2_normalize_rows(img.data(), Ni, P);
  model::l2_normalize_rows(txt.data(), Nr, P);
  auto m = retrieval_recall(img.data(), Ni, txt.data(), F.row_image.data(), Nr, P);
  return {{"split", split}, {"images", Ni}, {"captions", Nr}, {"loss", batches ? loss / batches : 0.0},
          {"i2t_r1", m.i2t_r1}, {"i2t_r5", m.i2t_r5}, {"i2t_r10", m.i2t_r10},
          {"t2i_r1", m.t2i_r1}, {"t2i_r5", m.t2i_r5}, {"t2i_r10", m.t2i_r10}};
}

}  // namespace

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> o(static_cast<size_t>(n));
  std::iota(o.begin(), o.end(), 0);
  if (!shuffle) return o;
  std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(o[i], o[rng() % static_cast<uint64_t>(i + 1)]);
  return o;
}

// The newest "checkpoint-<step>" folder in out, or "".
std::string latest_checkpoint(const std::string& out) {
  std::string best;
  int64_t best_step = -1;
  if (!fs::is_directory(out)) return best;
  for (auto& e : fs::directory_iterator(out)) {
    std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("checkpoint-", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
    if (!fs::exists(e.path() / "trainer_state.json")) continue;
    int64_t s = std::atoll(n.c_str() + 11);
    if (s > best_step) best_step = s, best = e.path().string();
  }
  return best;
}

// metrics.jsonl is append-only: one complete line per write, flushed, so a crash loses at most
// the line being written and a resumed run keeps appending.
void log_line(const std::string& path, const json& j) {
  std::string line = j.dump() + "\n";
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) fail("{}: cannot append: {}", path, std::strerror(errno));
  std::fwrite(line.data(), 1, line.size(), f);
  std::fclose(f);
}


TrainResult train(const TrainOptions& o, Comm& comm) {
  const bool lead = comm.rank() == 0;
  if (!o.freeze_vision || !o.freeze_text) return train_full(o, comm);
  if (o.batch_size < comm.size())
    fail("--batch-size {} is smaller than the number of processes ({})", o.batch_size, comm.size());
  const auto prec = ops::precision_from_name(o.precision);
  auto emb = pipeline::Embedder::load(o.model_dir, {prec});
  emb->set_image_backend(o.image_backend);
  if (!emb->model().has_projections()) fail("{}: model has no projection layers to train", o.model_dir);
  auto ds = data::load_captions(o.data, o.split);
  data::require_rows(ds, "train on");
  if (lead) std::fprintf(stderr, "clipkit train: %s split: %s\n", ds.split.c_str(), ds.report.summary().c_str());
  if (lead)
    for (auto& p : ds.report.problems) std::fprintf(stderr, "  %s\n", p.c_str());

  fs::create_directories(o.out);
  FeatureOptions fo;
  fo.batch_size = o.embed_batch_size;
  fo.max_seq_length = o.max_seq_length;
  fo.cache_dir = o.cache_dir.empty() ? (fs::path(o.out) / "cache").string() : o.cache_dir;
  Features F = compute_features(*emb, ds, fo, comm);
  if (lead) {
    std::fprintf(stderr, "clipkit train: features for %zu captions / %lld images %s\n", F.rows.size(),
                 static_cast<long long>(F.images.dim(0)), F.from_cache ? "(from cache)" : "(computed)");
    for (auto& s : F.skipped) std::fprintf(stderr, "  skipped image %s\n", s.c_str());
  }
  if (F.rows.empty()) fail("{}: no usable rows (every image was unreadable)", o.data);

  // evaluation data: the eval split of the same COCO root, if present
  std::optional<Features> FE;
  if (o.eval) {
    try {
      auto eds = data::load_captions(o.data, o.eval_split);
      if (!eds.rows.empty()) FE = compute_features(*emb, eds, fo, comm);
    } catch (const Error& e) {
      if (lead) std::fprintf(stderr, "clipkit train: no evaluation split (%s)\n", e.what());
    }
  }

  ProjectionHead head;
  init_head(head, o.model_dir, *emb);
  const std::string resume_from = o.resume ? latest_checkpoint(o.out) : "";
  if (o.resume && resume_from.empty() && lead)
    std::fprintf(stderr, "clipkit train: --resume: no checkpoint in %s, starting fresh\n", o.out.c_str());
  if (!resume_from.empty()) init_head(head, resume_from, *emb);
  AdamWConfig ac{o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay};
  AdamW opt(head.params(), ac);
  const Schedule sched = schedule_from_name(o.lr_scheduler);
  const int64_t N = static_cast<int64_t>(F.rows.size()), B = o.batch_size;
  const StepPlan plan = plan_steps(N, B, o.max_steps, o.epochs);
  const int64_t steps_per_epoch = plan.steps_per_epoch, total = plan.total, epochs = plan.epochs;
  const std::string metrics = (fs::path(o.out) / "metrics.jsonl").string();
  int64_t step = begin_run(resume_from, opt, plan, B, metrics, lead);
  TrainResult res;
  if (FE && step == 0) {
    res.eval_before = eval_features(*FE, head, o.batch_size, o.eval_split);
    res.eval_before["epoch"] = 0;
    if (lead) log_line(metrics, res.eval_before);
  }

  auto save = [&](int64_t epoch_done, const json& ev) {
    if (!lead) return;
    Tensor wv = Tensor::empty(DType::F32, {head.P, head.Cv}), wt = Tensor::empty(DType::F32, {head.P, head.Ct});
    Tensor ls = Tensor::empty(DType::F32, {});
    std::memcpy(wv.data, head.wv.data(), wv.nbytes());
    std::memcpy(wt.data, head.wt.data(), wt.nbytes());
    *ls.ptr<float>() = head.logit_scale;
    std::map<std::string, Tensor> trained = {{"visual_projection.weight", wv}, {"text_projection.weight", wt}, {"logit_scale", ls}};
    json state = {{"epoch", epoch_done}, {"total_steps", total}, {"batch_size", B}, {"seed", o.seed},
                  {"learning_rate", o.lr}, {"world_size", comm.size()}};
    if (!ev.is_null()) state["eval"] = ev;
    save_training_checkpoint(o.out, o.model_dir, step, step >= total, trained, opt, state);
  };
  const int64_t P = head.P, Cv = head.Cv, Ct = head.Ct;
  const int R = comm.size(), me = comm.rank();
  Progress prog("train", total - step, "steps");
  StepMeter meter;
  for (int64_t epoch = step / steps_per_epoch; epoch < epochs && step < total; ++epoch) {
    auto order = epoch_order(N, o.seed, epoch, o.shuffle);
    for (int64_t bi = step - epoch * steps_per_epoch; bi < steps_per_epoch && step < total; ++bi) {
      const int64_t s0 = bi * B, n = std::min(B, N - s0);
      // this rank's slice of the global batch; slices are padded to equal length for allgather
      const int64_t share = (n + R - 1) / R, lb = std::min(n, me * share), le = std::min(n, lb + share);
      const int64_t ln = le - lb;
      std::vector<float> pi(static_cast<size_t>(share * Cv), 0.0f), pt(static_cast<size_t>(share * Ct), 0.0f);
      for (int64_t k = 0; k < ln; ++k) {
        const int64_t r = order[static_cast<size_t>(s0 + lb + k)];
        std::memcpy(pi.data() + k * Cv, F.images.ptr<float>() + F.row_image[static_cast<size_t>(r)] * Cv, sizeof(float) * Cv);
        std::memcpy(pt.data() + k * Ct, F.texts.ptr<float>() + r * Ct, sizeof(float) * Ct);
      }
      std::vector<float> ei(static_cast<size_t>(share * P), 0.0f), et(static_cast<size_t>(share * P), 0.0f);
      head.project_images(pi.data(), ln, ei.data());
      head.project_texts(pt.data(), ln, et.data());
      std::vector<float> ai, at;
      gather_batch(comm, ei, et, n, share, P, &ai, &at);
      std::vector<float> dai(static_cast<size_t>(n * P)), dat(static_cast<size_t>(n * P));
      head.zero_grad();
      auto lr_res = clip_loss(ai.data(), at.data(), n, P, head.logit_scale, dai.data(), dat.data());
      head.backward(pi.data(), pt.data(), dai.data() + lb * P, dat.data() + lb * P, ln);
      comm.allreduce_sum(head.gv.data(), static_cast<int64_t>(head.gv.size()));
      comm.allreduce_sum(head.gt.data(), static_cast<int64_t>(head.gt.size()));
      head.g_logit_scale = static_cast<float>(lr_res.dlogit_scale);  // computed on the full batch by every rank
      const double gnorm = grad_norm(opt.params());  // clipped inside the optimizer step (one pass less)
      const double lr = o.lr * lr_factor(sched, step, total, o.warmup_steps);
      opt.step(lr, clip_coefficient(gnorm, o.max_grad_norm));
      ++step;
      meter.samples += n;
      res.last_loss = lr_res.loss;
      if (lead) log_line(metrics, meter.line(step, steps_per_epoch, lr_res.loss, gnorm, lr, head.logit_scale));
      prog.set_suffix(fmt::format("loss {:.4f}  {:.0f} samples/s", lr_res.loss, meter.samples_per_s()));
      prog.add(1);
      const bool interrupted = o.stop && o.stop->load() && step < total;  // checkpointed here, resumable
      if (interrupted || (o.save_steps > 0 && step % o.save_steps == 0 && step < total)) save(epoch, json());
      if (interrupted || (o.stop_after_steps > 0 && step >= o.stop_after_steps)) {  // (stop_after_steps: tests)
        comm.barrier();
        res.steps = step;
        res.interrupted = interrupted;
        return res;
      }
    }
    // end of epoch (or of max_steps): eval + checkpoint
    json ev;
    if (FE) {
      ev = eval_features(*FE, head, o.batch_size, o.eval_split);
      ev["epoch"] = epoch + 1;
      ev["step"] = step;
      res.eval_after = ev;
      if (lead) report_eval(metrics, ev, epoch + 1);
    }
    save(epoch + 1, ev);
    comm.barrier();
  }
  prog.finish();
  res.steps = step;
  return res;
}

json evaluate(const EvalOptions& o, Comm& comm) {
  auto emb = pipeline::Embedder::load(o.model_dir, {ops::precision_from_name(o.precision)});
  emb->set_image_backend(o.image_backend);
  if (!emb->model().has_projections()) fail("{}: model has no projection layers", o.model_dir);
  auto ds = data::load_captions(o.data, o.split);
  data::require_rows(ds, "evaluate");
  FeatureOptions fo;
  fo.batch_size = o.embed_batch_size;
  fo.max_seq_length = o.max_seq_length;
  fo.cache_dir = o.cache_dir;
  Features F = compute_features(*emb, ds, fo, comm);
  if (F.rows.empty()) fail("{}: no usable rows", o.data);
  ProjectionHead head;
  init_head(head, o.model_dir, *emb);
  json j = eval_features(F, head, o.batch_size, ds.split);
  j["skipped_images"] = F.skipped.size();
  return j;
}

}  // namespace clipkit::train
