// clipkit train --model DIR --data ROOT|FILE|SHARDS --out DIR [--eval-data ROOT|FILE|SHARDS] [run_clip-style flags]
// clipkit eval --model DIR --data ROOT|FILE|SHARDS [--split val] [--json]
// Under `mpirun -np N clipkit train ...` the global batch is split across the N processes.
#include <nlohmann/json.hpp>

#include "cmd_embed_bulk.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/json.h"
#include "train/trainer.h"

namespace clipkit::cli {
namespace {

RunFn setup_train(CLI::App& app) {
  auto o = std::make_shared<train::TrainOptions>();
  auto c = std::make_shared<ComputeOptions>();
  auto json = std::make_shared<bool>(false);
  c->batch_size = 32;  // for the frozen towers' embedding pass
  add_model_flag(app, o->model_dir, ModelUse::Required,
                 "HF dual-encoder checkpoint (e.g. from clipkit compose): a folder, hub id or cache folder");
  app.add_option("--data", o->data,
                 "COCO root (annotations/captions_{split}2017.json), a CSV/JSONL file, or WebDataset shards "
                 "('shards/{00000..00127}.tar', globs): streamed through a shuffle buffer across shards")
      ->required();
  app.add_option("--eval-data", o->eval_data,
                 "evaluate each epoch on this dataset (its --eval-split) instead of --data's --eval-split; "
                 "with WebDataset --data, per-epoch evaluation needs it");
  add_caption_key_flag(app, o->caption_key);
  app.add_option("--out", o->out, "output folder: final HF checkpoint, checkpoint-N/, metrics.jsonl")->required();
  app.add_option("--split", o->split, "training split")->capture_default_str();
  app.add_option("--eval-split", o->eval_split, "evaluation split (evaluated each epoch if present)")->capture_default_str();
  add_int_flag(app, "--epochs", o->epochs, "training epochs", 0);
  add_int_flag(app, "--max-steps", o->max_steps, "stop after N optimizer steps, schedule over N (-1 = no limit)", int64_t{-1});
  add_batch_size_flag(app, o->batch_size, "global batch size");
  add_number_flag(app, "--lr", o->lr, "peak learning rate", 0, std::numeric_limits<double>::infinity());
  add_number_flag(app, "--weight-decay", o->weight_decay, "AdamW weight decay", 0, std::numeric_limits<double>::infinity());
  add_int_flag(app, "--warmup-steps", o->warmup_steps, "linear warmup steps", int64_t{0});
  app.add_option("--lr-scheduler", o->lr_scheduler, "linear|cosine|constant")
      ->capture_default_str()->check(CLI::IsMember({"linear", "cosine", "constant"}));
  add_number_flag(app, "--max-grad-norm", o->max_grad_norm, "gradient clipping (0 = off)", 0,
                  std::numeric_limits<double>::infinity());
  add_number_flag(app, "--adam-beta1", o->adam_beta1, "AdamW beta1", 0, 1, false, true);
  add_number_flag(app, "--adam-beta2", o->adam_beta2, "AdamW beta2", 0, 1, false, true);
  add_number_flag(app, "--adam-eps", o->adam_eps, "AdamW epsilon", 0, std::numeric_limits<double>::infinity(), true);
  add_int_flag(app, "--max-seq-length", o->max_seq_length, "caption token limit", int64_t{2});
  app.add_flag("--freeze-vision", o->freeze_vision, "keep the vision tower fixed");
  app.add_flag("--freeze-text", o->freeze_text, "keep the text tower fixed");
  add_int_flag(app, "--freeze-vision-layers", o->freeze_vision_layers,
               "train the vision tower but freeze its embeddings and first K layers", 0);
  add_int_flag(app, "--freeze-text-layers", o->freeze_text_layers,
               "train the text tower but freeze its embeddings and first K layers", 0);
  app.add_flag("--gradient-checkpointing", o->gradient_checkpointing,
               "recompute layer activations in the backward pass (less memory, ~30% more compute)");
  auto no_dropout = std::make_shared<bool>(false);
  app.add_flag("--no-dropout", *no_dropout, "turn off the config's dropout (deterministic, comparable to references)");
  app.add_option("--seed", o->seed, "shuffling seed")->capture_default_str();
  auto no_shuffle = std::make_shared<bool>(false), no_eval = std::make_shared<bool>(false);
  auto backend = std::make_shared<std::string>("pil");
  app.add_flag("--no-shuffle", *no_shuffle, "take batches in dataset row order");
  app.add_flag("--no-eval", *no_eval, "skip per-epoch evaluation");
  app.add_flag("--resume", o->resume, "continue from the newest checkpoint-N in --out");
  add_int_flag(app, "--save-steps", o->save_steps, "also checkpoint every N steps (0 = only at epoch ends)", int64_t{0});
  add_int_flag(app, "--save-total-limit", o->save_total_limit,
               "keep at most N checkpoint-* folders, deleting the oldest (0 = keep all)", 0);
  app.add_option("--stop-after-steps", o->stop_after_steps, "stop after N steps, as if interrupted (for testing resume)")
      ->group("");
  app.add_option("--cache-dir", o->cache_dir, "frozen-tower feature cache (\"\" = OUT/cache)");
  add_threads_flag(app, c->threads);
  add_int_flag(app, "--embed-batch-size", c->batch_size, "batch size of the frozen towers' embedding pass", 1);
  add_precision_flag(app, c->precision, "matmul precision: fp32, or bf16 (fp32 master weights and optimizer state)",
                     false);
  add_device_option(app, c->device);
  add_json_flag(app, *json, "print the result as JSON: {\"steps\", \"last_loss\", \"out\", \"eval_before\", \"eval_after\"}");
  add_image_backend_option(app, *backend);
  return [o, c, json, no_shuffle, no_eval, no_dropout, backend]() {
    apply_compute_options(*c);
    o->dropout = !*no_dropout;
    o->shuffle = !*no_shuffle;
    o->eval = !*no_eval;
    o->precision = c->precision;
    o->device = backend::resolve_device(c->device);
    note_precision(o->device, o->precision);
    o->embed_batch_size = c->batch_size;
    o->image_backend = image_backend(*backend);
    auto comm = dist::make_comm(dist::CommOptions{o->device, o->out});  // NCCL for --device cuda under mpirun
    auto r = train::train(*o, *comm);
    if (comm->rank() == 0) {
      std::fprintf(stderr, "clipkit train: %lld steps, last loss %.4f; model in %s\n", static_cast<long long>(r.steps),
                   r.last_loss, o->out.c_str());
      if (!r.eval_before.is_null() && !r.eval_after.is_null())
        std::fprintf(stderr, "clipkit train: %s t2i R@1 %.3f -> %.3f, i2t R@1 %.3f -> %.3f\n", o->eval_split.c_str(),
                     r.eval_before["t2i_r1"].get<double>(), r.eval_after["t2i_r1"].get<double>(),
                     r.eval_before["i2t_r1"].get<double>(), r.eval_after["i2t_r1"].get<double>());
      if (*json)
        std::printf("%s\n", nlohmann::json{{"steps", r.steps}, {"last_loss", r.last_loss}, {"out", o->out},
                                           {"eval_before", r.eval_before}, {"eval_after", r.eval_after}}
                                .dump()
                                .c_str());
    }
    return kOk;
  };
}

CommandRegistrar reg_train("train", "Contrastive training of a dual encoder on a caption dataset", setup_train);

RunFn setup_eval(CLI::App& app) {
  auto o = std::make_shared<train::EvalOptions>();
  auto c = std::make_shared<ComputeOptions>();
  auto json_out = std::make_shared<bool>(false);
  add_model_flag(app, o->model_dir, ModelUse::Required,
                 "HF dual-encoder checkpoint: a folder, hub id or cache folder");
  app.add_option("--data", o->data, "COCO root, CSV/JSONL file, or WebDataset shards (evaluated as the split)")->required();
  app.add_option("--split", o->split, "split")->capture_default_str();
  add_caption_key_flag(app, o->caption_key);
  add_batch_size_flag(app, o->batch_size, "batch size the loss is averaged over");
  add_int_flag(app, "--max-seq-length", o->max_seq_length, "caption token limit", int64_t{2});
  app.add_option("--cache-dir", o->cache_dir, "reuse a feature cache");
  add_threads_flag(app, c->threads);
  add_precision_flag(app, c->precision);
  add_device_option(app, c->device);
  add_json_flag(app, *json_out, "one JSON line");
  auto backend = std::make_shared<std::string>("pil");
  add_image_backend_option(app, *backend);
  return [o, c, json_out, backend]() {
    apply_compute_options(*c);
    o->precision = c->precision;
    o->device = backend::resolve_device(c->device);
    note_precision(o->device, o->precision);
    o->image_backend = image_backend(*backend);
    auto comm = dist::make_comm(dist::CommOptions{o->device, o->cache_dir});
    auto j = train::evaluate(*o, *comm);
    if (comm->rank() != 0) return kOk;
    if (*json_out) {
      std::printf("%s\n", json_text(j).c_str());
    } else {
      std::printf("split %s: %lld images, %lld captions\n", j["split"].get<std::string>().c_str(),
                  static_cast<long long>(j["images"].get<int64_t>()), static_cast<long long>(j["captions"].get<int64_t>()));
      std::printf("loss %.4f\n", j["loss"].get<double>());
      std::printf("image->text R@1 %.4f  R@5 %.4f  R@10 %.4f\n", j["i2t_r1"].get<double>(), j["i2t_r5"].get<double>(),
                  j["i2t_r10"].get<double>());
      std::printf("text->image R@1 %.4f  R@5 %.4f  R@10 %.4f\n", j["t2i_r1"].get<double>(), j["t2i_r5"].get<double>(),
                  j["t2i_r10"].get<double>());
    }
    return kOk;
  };
}

CommandRegistrar reg_eval("eval", "Evaluate a dual encoder: loss and retrieval recall@1/5/10", setup_eval);

}  // namespace
}  // namespace clipkit::cli
