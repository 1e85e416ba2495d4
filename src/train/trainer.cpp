#include "train/trainer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/json.h"
#include "core/progress.h"
#include "dataset/webdataset.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "pipeline/shard_training.h"
#include "train/batch_source.h"
#include "train/checkpoint.h"
#include "train/evaluation.h"
#include "train/optimizer.h"

namespace clipkit::train {
namespace fs = std::filesystem;
using json = nlohmann::json;
using model::Part;

namespace {

// metrics.jsonl is append-only: one complete line per write, flushed, so a crash loses at most
// the line being written and a resumed run keeps appending.
void log_line(const std::string& path, const json& j) {
  std::string line = j.dump() + "\n";
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) fail("{}: cannot append: {}", path, std::strerror(errno));
  std::fwrite(line.data(), 1, line.size(), f);
  std::fclose(f);
}

// A resumed run takes again the steps the killed run logged after its checkpoint: their
// metrics.jsonl lines go (and a line cut by the kill).
void drop_metrics_after(const std::string& metrics, int64_t step) {
  if (!fs::exists(metrics)) return;
  std::string kept, text = read_file(metrics);
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;
    const std::string_view line(text.data() + pos, end - pos);
    json j;
    const bool after = try_parse_json(line, &j) && j.is_object() && j.contains("step") &&
                       j["step"].is_number_integer() && j["step"].get<int64_t>() > step;
    if (!after) kept.append(line).append("\n");
    pos = end + 1;
  }
  write_file_atomic(metrics, kept);
}

void report_eval(const std::string& metrics, const json& ev, int64_t epoch) {
  log_line(metrics, ev);
  std::fprintf(stderr, "\nclipkit train: epoch %lld eval loss %.4f  i2t R@1/5/10 %.3f/%.3f/%.3f  t2i R@1/5/10 %.3f/%.3f/%.3f\n",
               static_cast<long long>(epoch), ev["loss"].get<double>(), ev["i2t_r1"].get<double>(),
               ev["i2t_r5"].get<double>(), ev["i2t_r10"].get<double>(), ev["t2i_r1"].get<double>(),
               ev["t2i_r5"].get<double>(), ev["t2i_r10"].get<double>());
}

void validate(const TrainOptions& o, const dist::Comm& comm) {
  if (o.epochs < 0) fail("--epochs must be ≥ 0, got {}", o.epochs);
  if (o.max_steps == 0 || o.max_steps < -1)
    fail("--max-steps must be ≥ 1, got {} (the default, -1, trains for --epochs)", o.max_steps);
  if (o.save_total_limit < 0) fail("--save-total-limit must be ≥ 0 (0 keeps every checkpoint), got {}", o.save_total_limit);
  if (o.batch_size < comm.size())
    fail("--batch-size {} is smaller than the number of processes ({})", o.batch_size, comm.size());
}

// This rank's embeddings [n_mine, P] of a global batch of `rows` samples -> the whole batch [rows, P]
// in global order (ranks hold consecutive slices of `share` rows, zero-padded for the all-gather).
backend::Tensor gather_batch(dist::Comm& comm, backend::Backend& be, const backend::Tensor& mine, int64_t rows, int64_t share) {
  const int ranks = comm.size();
  if (ranks == 1) return mine;
  backend::Arena& arena = be.thread_arena();
  const int64_t P = mine.cols();
  backend::Tensor padded = arena.alloc(DType::F32, {share, P}), all = arena.alloc(DType::F32, {ranks * share, P});
  be.zero(padded);
  if (mine.rows() > 0) be.copy(mine, padded.slice(0, mine.rows()));
  comm.allgather(padded, all);
  std::vector<int32_t> real;  // the rows of `all` that hold samples
  for (int rank = 0; rank < ranks; ++rank)
    for (int64_t i = 0; i < std::clamp<int64_t>(rows - rank * share, 0, share); ++i)
      real.push_back(static_cast<int32_t>(rank * share + i));
  backend::Tensor out = arena.alloc(DType::F32, {rows, P}), idx = arena.alloc(DType::I32, {rows});
  be.upload(real.data(), idx);
  be.gather_rows(all, idx, out);
  return out;
}

}  // namespace

TrainResult train(const TrainOptions& o, dist::Comm& comm) {
  validate(o, comm);
  const bool lead = comm.rank() == 0;
  model::LoadOptions lo;
  lo.precision = backend::precision_from_name(o.precision);
  lo.device = o.device;
  lo.train = true;
  lo.freeze_vision = o.freeze_vision;
  lo.freeze_text = o.freeze_text;
  lo.freeze_vision_layers = o.freeze_vision_layers;
  lo.freeze_text_layers = o.freeze_text_layers;
  lo.gradient_checkpointing = o.gradient_checkpointing;
  lo.dropout = o.dropout;
  lo.seed = o.seed;
  auto emb = pipeline::Embedder::load(o.model_dir, lo);
  emb->set_image_backend(o.image_backend);
  model::ClipModel& clip = emb->model();
  if (!clip.has_vision() || !clip.has_text()) fail("{}: training needs a dual encoder (vision and text towers)", o.model_dir);
  auto ds = dataset::load_captions(o.data, o.split, true, o.caption_key);
  dataset::require_rows(ds, "train on");
  if (lead) std::fprintf(stderr, "clipkit train: %s split: %s", ds.split.c_str(), ds.report.details("  ").c_str());
  fs::create_directories(o.out);
  CaptionOptions co;
  co.features_vision = o.freeze_vision;
  co.features_text = o.freeze_text;
  co.features.batch_size = o.embed_batch_size;
  co.features.max_seq_length = co.max_seq_length = o.max_seq_length;
  co.features.cache_dir = o.cache_dir.empty() ? (fs::path(o.out) / "cache").string() : o.cache_dir;
  co.pixel_cache_mb = o.pixel_cache_mb;
  co.shuffle = o.shuffle;
  co.seed = o.seed;
  std::unique_ptr<BatchSource> source = pipeline::shard_training_batches(  // WebDataset shards: streamed
      *emb, o.data, {.seed = o.seed, .shuffle = o.shuffle, .caption_key = o.caption_key}, o.max_seq_length,
      o.freeze_vision || o.freeze_text);
  if (!source) source = std::make_unique<CaptionBatches>(*emb, ds, co, comm);
  std::optional<CaptionBatches> eval_source;
  if (o.eval && o.eval_data.empty() && dataset::is_shard_spec(o.data)) {
    if (lead) std::fprintf(stderr, "clipkit train: no evaluation split (shards hold none; give --eval-data)\n");
  } else if (o.eval) {
    try {
      auto eds = dataset::load_captions(o.eval_data.empty() ? o.data : o.eval_data, o.eval_split, true, o.caption_key);
      if (!eds.rows.empty()) eval_source.emplace(*emb, eds, co, comm);
    } catch (const Error& e) {
      if (lead) std::fprintf(stderr, "clipkit train: no evaluation split (%s)\n", e.what());
    }
  }
  AdamW opt(clip.backend(), clip.trainable(), {o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay});
  if (lead)
    std::fprintf(stderr, "clipkit train: %s (%s, %s), %zu trainable tensors, %s%s\n",
                 o.freeze_vision && o.freeze_text ? "projections only" : "fine-tuning",
                 o.freeze_vision ? "vision frozen" : "vision trains", o.freeze_text ? "text frozen" : "text trains",
                 opt.params().size(), o.precision.c_str(), o.gradient_checkpointing ? ", gradient checkpointing" : "");

  // steps: HF keeps the last partial batch of an epoch; --max-steps overrides
  const int64_t samples = source->size(), batch_size = o.batch_size;
  const int64_t steps_per_epoch = (samples + batch_size - 1) / batch_size;
  const int64_t total = o.max_steps > 0 ? o.max_steps : steps_per_epoch * o.epochs;
  const int64_t epochs = (total + steps_per_epoch - 1) / steps_per_epoch;
  const std::string metrics = (fs::path(o.out) / "metrics.jsonl").string();
  const std::string resume_from = o.resume ? latest_checkpoint(o.out) : "";
  if (o.resume && resume_from.empty() && lead)
    std::fprintf(stderr, "clipkit train: --resume: no checkpoint in %s, starting fresh\n", o.out.c_str());
  int64_t step = 0;
  if (!resume_from.empty()) {
    const std::string state = resume_from + "/trainer_state.json";
    auto st = parse_json(read_file(state), state);
    step = json_integer(st.at("global_step"), 0, INT64_MAX, state + ": \"global_step\"");
    if (json_integer_or(st, "total_steps", total) != total ||
        json_integer_or(st, "batch_size", batch_size) != batch_size)
      fail("{}: checkpoint was made with a different --batch-size/--epochs/--max-steps; resume with the same flags",
           resume_from);
    clip.load_state(Checkpoint(resume_from).tensors(), resume_from);
    opt.load_state(SafeTensorsFile(resume_from + "/optimizer.safetensors").tensors(), step, resume_from);
    if (lead) std::fprintf(stderr, "clipkit train: resumed from %s (step %lld)\n", resume_from.c_str(), static_cast<long long>(step));
    if (lead) drop_metrics_after(metrics, step);
  } else if (lead && fs::exists(metrics)) {
    fs::remove(metrics);
  }
  TrainResult res;
  auto evaluate_now = [&] { return evaluate_split(clip, *eval_source, o.batch_size, o.embed_batch_size, o.eval_split); };
  if (eval_source && step == 0) {
    res.eval_before = evaluate_now();
    res.eval_before["epoch"] = 0;
    if (lead) log_line(metrics, res.eval_before);
  }
  bool final_written = false;
  auto save = [&](int64_t epoch_done, const json& ev) {
    if (!lead) return;
    json state = {{"epoch", epoch_done}, {"total_steps", total}, {"batch_size", batch_size}, {"seed", o.seed},
                  {"learning_rate", o.lr}, {"world_size", comm.size()},
                  {"full_fine_tuning", !(o.freeze_vision && o.freeze_text)}};
    if (!ev.is_null()) state["eval"] = ev;
    const auto trained = clip.trained_state();
    save_checkpoint(o.out, o.model_dir, step, trained, opt.state(), state, o.save_total_limit);
    if (step < total) return;
    write_hf_checkpoint(o.model_dir, o.out, trained);  // the final model at the top of --out
    final_written = true;
  };

  backend::Backend& be = clip.backend();
  const Schedule sched = schedule_from_name(o.lr_scheduler);
  const int ranks = comm.size(), rank = comm.rank();
  model::Param& logit_scale = clip.logit_scale_param();
  Progress prog("train", total - step, "steps");
  const auto start = std::chrono::steady_clock::now();
  int64_t seen = 0;  // samples trained on since this run started
  Batch batch;
  for (int64_t epoch = step / steps_per_epoch; epoch < epochs && step < total; ++epoch) {
    for (int64_t in_epoch = step - epoch * steps_per_epoch; in_epoch < steps_per_epoch && step < total; ++in_epoch) {
      backend::Arena::Scope step_scope(be.thread_arena());
      // this rank's slice [mine_begin, mine_end) of the global batch of `rows` samples
      const int64_t first = in_epoch * batch_size, rows = std::min(batch_size, samples - first);
      const int64_t share = (rows + ranks - 1) / ranks, mine_begin = std::min(rows, rank * share);
      const int64_t mine_end = std::min(rows, mine_begin + share);
      source->read(epoch, first + mine_begin, first + mine_end, batch);
      clip.zero_grad();
      const bool has_rows = mine_end > mine_begin;
      backend::Tensor img, txt;
      if (has_rows) {
        img = embed_input(clip, Part::Vision, batch.images, true, static_cast<uint64_t>(step));
        txt = embed_input(clip, Part::Text, batch.texts, true, static_cast<uint64_t>(step));
      } else {
        img = txt = be.thread_arena().alloc(DType::F32, {0, clip.embed_dim()});
      }
      img = gather_batch(comm, be, img, rows, share);
      txt = gather_batch(comm, be, txt, rows, share);
      backend::Tensor dimg = be.thread_arena().alloc(DType::F32, img.shape()), dtxt = be.thread_arena().alloc(DType::F32, txt.shape());
      const auto loss = be.clip_loss(img, txt, logit_scale.value, &dimg, &dtxt);
      if (has_rows) {
        clip.backward(Part::Vision, dimg.slice(mine_begin, mine_end));
        clip.backward(Part::Text, dtxt.slice(mine_begin, mine_end));
      }
      clip.settle_grads();  // a rank without rows contributes zero gradients
      for (model::Param* p : opt.params())
        if (p != &logit_scale) comm.allreduce_sum(p->grad);
      const float dscale = static_cast<float>(loss.dlogit_scale);  // every rank computed it on the whole batch
      be.upload(&dscale, logit_scale.grad);
      const double gnorm = opt.grad_norm();  // clipped inside the optimizer step (one pass less)
      const double lr = o.lr * lr_factor(sched, step, total, o.warmup_steps);
      opt.step(lr, clip_coefficient(gnorm, o.max_grad_norm));
      ++step;
      seen += rows;
      res.last_loss = loss.loss;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = secs > 0 ? static_cast<double>(seen) / secs : 0.0;
      if (lead)
        log_line(metrics, {{"step", step}, {"epoch", static_cast<double>(step) / steps_per_epoch}, {"loss", loss.loss},
                           {"grad_norm", gnorm}, {"learning_rate", lr}, {"logit_scale", clip.logit_scale()},
                           {"samples_per_s", rate}});
      prog.set_suffix(fmt::format("loss {:.4f}  {:.1f} samples/s", loss.loss, rate));
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
    json ev;  // end of an epoch (or of --max-steps): evaluation and a checkpoint
    if (eval_source) {
      ev = evaluate_now();
      ev["epoch"] = epoch + 1;
      ev["step"] = step;
      res.eval_after = ev;
      if (lead) report_eval(metrics, ev, epoch + 1);
    }
    save(epoch + 1, ev);
    comm.barrier();
  }
  if (lead && !final_written) write_hf_checkpoint(o.model_dir, o.out, clip.trained_state());  // no steps to take
  prog.finish();
  res.steps = step;
  return res;
}

json evaluate(const EvalOptions& o, dist::Comm& comm) {
  model::LoadOptions lo;
  lo.precision = backend::precision_from_name(o.precision);
  lo.device = o.device;
  auto emb = pipeline::Embedder::load(o.model_dir, lo);
  emb->set_image_backend(o.image_backend);
  if (!emb->model().has_projections() || !emb->model().has_vision() || !emb->model().has_text())
    fail("{}: model has no projection layers", o.model_dir);
  auto ds = dataset::load_captions(o.data, o.split, true, o.caption_key);
  dataset::require_rows(ds, "evaluate");
  CaptionOptions co;
  co.features_vision = co.features_text = true;
  co.features.batch_size = o.embed_batch_size;
  co.features.max_seq_length = co.max_seq_length = o.max_seq_length;
  co.features.cache_dir = o.cache_dir;
  co.report = false;
  CaptionBatches source(*emb, ds, co, comm);
  json j = evaluate_split(emb->model(), source, o.batch_size, o.embed_batch_size, ds.split);
  j["skipped_images"] = ds.unique_images().size() - static_cast<size_t>(j["images"].get<int64_t>());
  return j;
}

}  // namespace clipkit::train
