// Full fine-tuning: `clipkit train` without --freeze-vision/--freeze-text. Each step runs the real
// forward and backward through every unfrozen tower (a frozen tower still uses its cached
// features). Data parallel as the projection trainer: each rank takes its slice of the global
// batch, embeddings are all-gathered for the loss, gradients all-reduced.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/progress.h"
#include "image/batch.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/clip_model.h"
#include "pipeline/embedder.h"
#include "train/checkpoint.h"
#include "train/clip_loss.h"
#include "train/feature_cache.h"
#include "train/optimizer.h"
#include "train/trainable_model.h"
#include "train/trainer.h"
#include "train/trainer_internal.h"

namespace clipkit::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One split's inputs: usable rows, their images, and whatever each tower needs.
struct SplitData {
  std::vector<int64_t> rows, row_image;  // dataset row and image index of each usable row
  std::vector<std::string> image_paths;  // by image index
  std::vector<std::string> captions;     // per usable row
  std::vector<float> pixels;             // [Ni, 3, S, S] when cached in memory
  bool pixels_cached = false;
  std::optional<Features> feats;  // a frozen tower's pooled outputs
};

SplitData prepare(const pipeline::Embedder& emb, const data::CaptionDataset& ds, const TrainOptions& o, bool need_pixels,
                  bool need_features, const std::string& cache_dir, Comm& comm) {
  SplitData d;
  const bool lead = comm.rank() == 0;
  std::map<std::string, int64_t> index;
  std::vector<int64_t> row_img(ds.rows.size());
  for (size_t r = 0; r < ds.rows.size(); ++r) {
    auto [it, added] = index.emplace(ds.rows[r].image_path, static_cast<int64_t>(d.image_paths.size()));
    if (added) d.image_paths.push_back(ds.rows[r].image_path);
    row_img[r] = it->second;
  }
  std::vector<bool> bad(d.image_paths.size(), false);
  if (need_features) {
    FeatureOptions fo;
    fo.batch_size = o.embed_batch_size;
    fo.max_seq_length = o.max_seq_length;
    fo.cache_dir = cache_dir;
    d.feats = compute_features(emb, ds, fo, comm);
    for (auto& s : d.feats->skipped)
      if (lead) std::fprintf(stderr, "  skipped image %s\n", s.c_str());
    d.rows = d.feats->rows;
    d.row_image = d.feats->row_image;
  }
  const int64_t Ni = static_cast<int64_t>(d.image_paths.size());
  if (need_pixels) {
    const int64_t per = static_cast<int64_t>(image::floats_per_image(emb.preprocess_config()));
    if (Ni * per * 4 <= o.pixel_cache_mb * (int64_t{1} << 20)) {
      d.pixels.assign(static_cast<size_t>(Ni * per), 0.0f);
      auto errs = image::preprocess_files(d.image_paths, emb.preprocess_config(), {}, d.pixels.data());
      for (int64_t i = 0; i < Ni; ++i)
        if (!errs[static_cast<size_t>(i)].empty()) {
          bad[static_cast<size_t>(i)] = true;
          if (lead) std::fprintf(stderr, "  skipped image %s\n", errs[static_cast<size_t>(i)].c_str());
        }
      d.pixels_cached = true;
    }
  }
  if (!d.feats) {
    for (size_t r = 0; r < ds.rows.size(); ++r)
      if (!bad[static_cast<size_t>(row_img[r])]) {
        d.rows.push_back(static_cast<int64_t>(r));
        d.row_image.push_back(row_img[r]);
      }
  }
  for (int64_t r : d.rows) d.captions.push_back(ds.rows[static_cast<size_t>(r)].caption);
  return d;
}

// Pixels of the given images into out [n, 3, S, S] (from memory, or decoded now).
void gather_pixels(const SplitData& d, const pipeline::Embedder& emb, const std::vector<int64_t>& imgs, float* out) {
  const int64_t per = static_cast<int64_t>(image::floats_per_image(emb.preprocess_config()));
  if (d.pixels_cached) {
    for (size_t k = 0; k < imgs.size(); ++k)
      std::memcpy(out + static_cast<int64_t>(k) * per, d.pixels.data() + imgs[k] * per, sizeof(float) * per);
    return;
  }
  std::vector<std::string> paths;
  for (int64_t i : imgs) paths.push_back(d.image_paths[static_cast<size_t>(i)]);
  std::fill(out, out + static_cast<int64_t>(imgs.size()) * per, 0.0f);
  auto errs = image::preprocess_files(paths, emb.preprocess_config(), {}, out);
  for (auto& e : errs)
    if (!e.empty()) std::fprintf(stderr, "clipkit train: warning: %s (zero pixels used)\n", e.c_str());
}

// Embeddings [n, P] of rows sel (indices into d.rows) for one tower.
void embed_images(TrainableClip& m, const SplitData& d, const pipeline::Embedder& emb, const std::vector<int64_t>& sel,
                  bool frozen, bool training, uint64_t step, float* out) {
  const int64_t n = static_cast<int64_t>(sel.size());
  if (n == 0) return;
  std::vector<int64_t> imgs;
  for (int64_t s : sel) imgs.push_back(d.row_image[static_cast<size_t>(s)]);
  if (frozen) {
    const int64_t Cv = m.vision_hidden();
    std::vector<float> pooled(static_cast<size_t>(n * Cv));
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(pooled.data() + k * Cv, d.feats->images.ptr<float>() + imgs[k] * Cv, sizeof(float) * Cv);
    m.project_vision(pooled.data(), n, out);
    return;
  }
  const int64_t per = static_cast<int64_t>(image::floats_per_image(emb.preprocess_config()));
  std::vector<float> px(static_cast<size_t>(n * per));
  gather_pixels(d, emb, imgs, px.data());
  m.vision_forward(px.data(), n, out, training, step);
}

void embed_texts(TrainableClip& m, const SplitData& d, const pipeline::Embedder& emb, const std::vector<int64_t>& sel,
                 bool frozen, bool training, uint64_t step, int64_t max_len, float* out) {
  const int64_t n = static_cast<int64_t>(sel.size());
  if (n == 0) return;
  if (frozen) {
    const int64_t Ct = m.text_hidden();
    std::vector<float> pooled(static_cast<size_t>(n * Ct));
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(pooled.data() + k * Ct, d.feats->texts.ptr<float>() + sel[k] * Ct, sizeof(float) * Ct);
    m.project_text(pooled.data(), n, out);
    return;
  }
  std::vector<std::string> caps;
  for (int64_t s : sel) caps.push_back(d.captions[static_cast<size_t>(s)]);
  std::vector<int32_t> ids, mask;
  int64_t L = 0;
  emb.tokenize(caps, &ids, &mask, &L, max_len);  // dynamic padding: pads are masked, results don't change
  m.text_forward(ids.data(), mask.data(), n, L, out, training, step);
}

// Loss (mean over batches of B rows, in row order) and retrieval recall with the current weights.
json evaluate_split(TrainableClip& m, const SplitData& d, const pipeline::Embedder& emb, const TrainOptions& o,
                    const std::string& split) {
  const int64_t P = m.embed_dim(), Nr = static_cast<int64_t>(d.rows.size());
  const int64_t Ni = static_cast<int64_t>(d.image_paths.size());
  // one embedding per image (first row that uses it), one per caption
  std::vector<int64_t> first_row(static_cast<size_t>(Ni), -1);
  for (int64_t r = 0; r < Nr; ++r)
    if (first_row[d.row_image[r]] < 0) first_row[d.row_image[r]] = r;
  std::vector<float> img(static_cast<size_t>(Ni * P), 0.0f), txt(static_cast<size_t>(Nr * P));
  const int64_t EB = std::max(1, o.embed_batch_size);
  std::vector<int64_t> imgs_present;
  for (int64_t i = 0; i < Ni; ++i)
    if (first_row[i] >= 0) imgs_present.push_back(i);
  for (size_t s = 0; s < imgs_present.size(); s += static_cast<size_t>(EB)) {
    std::vector<int64_t> sel;
    for (size_t k = s; k < std::min(imgs_present.size(), s + static_cast<size_t>(EB)); ++k)
      sel.push_back(first_row[imgs_present[k]]);
    std::vector<float> e(sel.size() * static_cast<size_t>(P));
    embed_images(m, d, emb, sel, o.freeze_vision, false, 0, e.data());
    for (size_t k = 0; k < sel.size(); ++k)
      std::memcpy(img.data() + imgs_present[s + k] * P, e.data() + k * P, sizeof(float) * P);
  }
  for (int64_t s = 0; s < Nr; s += EB) {
    std::vector<int64_t> sel;
    for (int64_t k = s; k < std::min(Nr, s + EB); ++k) sel.push_back(k);
    embed_texts(m, d, emb, sel, o.freeze_text, false, 0, o.max_seq_length, txt.data() + s * P);
  }
  double loss = 0;
  int64_t batches = 0;
  for (int64_t s = 0; s < Nr; s += o.batch_size) {
    const int64_t n = std::min<int64_t>(o.batch_size, Nr - s);
    std::vector<float> bi(static_cast<size_t>(n * P));
    for (int64_t k = 0; k < n; ++k) std::memcpy(bi.data() + k * P, img.data() + d.row_image[s + k] * P, sizeof(float) * P);
    loss += clip_loss(bi.data(), txt.data() + s * P, n, P, m.logit_scale, nullptr, nullptr).loss;
    ++batches;
  }
  model::l2_normalize_rows(img.data(), Ni, P);
  model::l2_normalize_rows(txt.data(), Nr, P);
  auto r = retrieval_recall(img.data(), Ni, txt.data(), d.row_image.data(), Nr, P);
  return {{"split", split}, {"images", static_cast<int64_t>(imgs_present.size())}, {"captions", Nr},
          {"loss", batches ? loss / batches : 0.0}, {"i2t_r1", r.i2t_r1}, {"i2t_r5", r.i2t_r5}, {"i2t_r10", r.i2t_r10},
          {"t2i_r1", r.t2i_r1}, {"t2i_r5", r.t2i_r5}, {"t2i_r10", r.t2i_r10}};
}

}  // namespace

TrainResult train_full(const TrainOptions& o, Comm& comm) {
  const bool lead = comm.rank() == 0;
  if (o.batch_size < comm.size())
    fail("--batch-size {} is smaller than the number of processes ({})", o.batch_size, comm.size());
  const auto prec = ops::precision_from_name(o.precision);
  auto emb = pipeline::Embedder::load(o.model_dir, {prec});
  emb->set_image_backend(o.image_backend);
  if (!emb->model().has_projections()) fail("{}: model has no projection layers to train", o.model_dir);
  TrainableOptions to;
  to.precision = prec;
  to.gradient_checkpointing = o.gradient_checkpointing;
  to.dropout = o.dropout;
  to.freeze_vision = o.freeze_vision;
  to.freeze_text = o.freeze_text;
  to.freeze_vision_layers = o.freeze_vision_layers;
  to.freeze_text_layers = o.freeze_text_layers;
  to.seed = o.seed;
  auto m = TrainableClip::load(o.model_dir, to);
  auto ds = data::load_captions(o.data, o.split);
  data::require_rows(ds, "train on");
  if (lead) std::fprintf(stderr, "clipkit train: %s split: %s\n", ds.split.c_str(), ds.report.summary().c_str());
  if (lead)
    for (auto& p : ds.report.problems) std::fprintf(stderr, "  %s\n", p.c_str());
  fs::create_directories(o.out);
  const std::string cache_dir = o.cache_dir.empty() ? (fs::path(o.out) / "cache").string() : o.cache_dir;
  const bool need_feats = o.freeze_vision || o.freeze_text;
  SplitData D = prepare(*emb, ds, o, !o.freeze_vision, need_feats, cache_dir, comm);
  if (D.rows.empty()) fail("{}: no usable rows (every image was unreadable)", o.data);
  std::optional<SplitData> DE;
  if (o.eval) {
    try {
      auto eds = data::load_captions(o.data, o.eval_split);
      if (!eds.rows.empty()) DE = prepare(*emb, eds, o, !o.freeze_vision, need_feats, cache_dir, comm);
    } catch (const Error& e) {
      if (lead) std::fprintf(stderr, "clipkit train: no evaluation split (%s)\n", e.what());
    }
  }
  if (lead)
    std::fprintf(stderr, "clipkit train: full fine-tuning (%s%s), %zu trainable tensors, %s%s\n",
                 o.freeze_vision ? "vision frozen" : "vision trains", o.freeze_text ? ", text frozen" : ", text trains",
                 m->params().size(), o.precision.c_str(), o.gradient_checkpointing ? ", gradient checkpointing" : "");

  const std::string resume_from = o.resume ? latest_checkpoint(o.out) : "";
  if (o.resume && resume_from.empty() && lead)
    std::fprintf(stderr, "clipkit train: --resume: no checkpoint in %s, starting fresh\n", o.out.c_str());
  if (!resume_from.empty()) m->load_state(resume_from);
  AdamW opt(m->params(), {o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay});
  const Schedule sched = schedule_from_name(o.lr_scheduler);
  const int64_t N = static_cast<int64_t>(D.rows.size()), B = o.batch_size;
  const StepPlan plan = plan_steps(N, B, o.max_steps, o.epochs);
  const int64_t steps_per_epoch = plan.steps_per_epoch, total = plan.total, epochs = plan.epochs;
  const std::string metrics = (fs::path(o.out) / "metrics.jsonl").string();
  int64_t step = begin_run(resume_from, opt, plan, B, metrics, lead);
  TrainResult res;
  if (DE && step == 0) {
    res.eval_before = evaluate_split(*m, *DE, *emb, o, o.eval_split);
    res.eval_before["epoch"] = 0;
    if (lead) log_line(metrics, res.eval_before);
  }
  auto save = [&](int64_t epoch_done, const json& ev) {
    if (!lead) return;
    auto trained = m->trained_state();
    json state = {{"epoch", epoch_done}, {"total_steps", total}, {"batch_size", B}, {"seed", o.seed},
                  {"learning_rate", o.lr}, {"world_size", comm.size()}, {"full_fine_tuning", true}};
    if (!ev.is_null()) state["eval"] = ev;
    save_training_checkpoint(o.out, o.model_dir, step, step >= total, trained, opt, state);
  };

  const int64_t P = m->embed_dim();
  const int R = comm.size(), me = comm.rank();
  Progress prog("train", total - step, "steps");
  StepMeter meter;
  auto params = opt.params();
  for (int64_t epoch = step / steps_per_epoch; epoch < epochs && step < total; ++epoch) {
    auto order = epoch_order(N, o.seed, epoch, o.shuffle);
    for (int64_t bi = step - epoch * steps_per_epoch; bi < steps_per_epoch && step < total; ++bi) {
      const int64_t s0 = bi * B, n = std::min(B, N - s0);
      const int64_t share = (n + R - 1) / R, lb = std::min(n, me * share), le = std::min(n, lb + share);
      const int64_t ln = le - lb;
      std::vector<int64_t> sel;
      for (int64_t k = 0; k < ln; ++k) sel.push_back(order[static_cast<size_t>(s0 + lb + k)]);
      std::vector<float> ei(static_cast<size_t>(share * P), 0.0f), et(static_cast<size_t>(share * P), 0.0f);
      m->zero_grad();
      embed_images(*m, D, *emb, sel, o.freeze_vision, true, static_cast<uint64_t>(step), ei.data());
      embed_texts(*m, D, *emb, sel, o.freeze_text, true, static_cast<uint64_t>(step), o.max_seq_length, et.data());
      std::vector<float> ai, at;
      gather_batch(comm, ei, et, n, share, P, &ai, &at);
      std::vector<float> dai(static_cast<size_t>(n * P)), dat(static_cast<size_t>(n * P));
      auto lr_res = clip_loss(ai.data(), at.data(), n, P, m->logit_scale, dai.data(), dat.data());
      if (ln > 0) {
        m->vision_backward(dai.data() + lb * P);
        m->text_backward(dat.data() + lb * P);
      } else {
        m->settle_grads();  // no samples on this rank: its share of the gradient is zero
      }
      for (auto& p : params)
        if (p.g != &m->g_logit_scale) comm.allreduce_sum(p.g, p.n);
      m->g_logit_scale = static_cast<float>(lr_res.dlogit_scale);  // every rank computed it on the full batch
      const double gnorm = grad_norm(params);  // clipped inside the optimizer step (one pass less)
      const double lr = o.lr * lr_factor(sched, step, total, o.warmup_steps);
      opt.step(lr, clip_coefficient(gnorm, o.max_grad_norm));
      ++step;
      meter.samples += n;
      res.last_loss = lr_res.loss;
      if (lead) log_line(metrics, meter.line(step, steps_per_epoch, lr_res.loss, gnorm, lr, m->logit_scale));
      prog.set_suffix(fmt::format("loss {:.4f}  {:.1f} samples/s", lr_res.loss, meter.samples_per_s()));
      prog.add(1);
      const bool interrupted = o.stop && o.stop->load() && step < total;  // checkpointed here, resumable
      if (interrupted || (o.save_steps > 0 && step % o.save_steps == 0 && step < total)) save(epoch, json());
      if (interrupted || (o.stop_after_steps > 0 && step >= o.stop_after_steps)) {
        comm.barrier();
        res.steps = step;
        res.interrupted = interrupted;
        return res;
      }
    }
    json ev;
    if (DE) {
      ev = evaluate_split(*m, *DE, *emb, o, o.eval_split);
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

}  // namespace clipkit::train
