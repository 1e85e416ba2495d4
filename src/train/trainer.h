// `clipkit train` / `clipkit eval`: contrastive training of a dual encoder on a caption dataset,
// HF Trainer semantics (AdamW, linear/cosine schedule with warmup, clipping, decay groups),
// data parallel over MPI ranks, checkpoints each epoch and exact resume. One loop for every
// setting: a frozen tower's embeddings come from its cached outputs (projections only when both
// are frozen), a trained tower's from its forward pass.
#pragma once
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "image/preprocess.h"
#include "dist/comm.h"

namespace clipkit::train {

struct TrainOptions {
  std::string model_dir, data, out;
  std::string split = "train", eval_split = "val";
  std::string eval_data;  // evaluated each epoch (its eval_split) instead of data's eval_split
  std::string cache_dir;  // default: <out>/cache
  std::string caption_key = "txt";  // WebDataset shards: captions from KEY.txt, or this field of KEY.json
  int epochs = 3;          // 0: no steps, the model is written as it is (as HF's Trainer does)
  int64_t max_steps = -1;  // > 0: stop after N optimizer steps, schedule computed over N (-1: --epochs)
  int batch_size = 8;      // global batch (split across ranks); HF per_device_train_batch_size default
  double lr = 5e-5, weight_decay = 0.0, max_grad_norm = 1.0;
  int64_t warmup_steps = 0;
  std::string lr_scheduler = "linear";
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  int64_t max_seq_length = 128;
  bool freeze_vision = false, freeze_text = false;
  int freeze_vision_layers = 0, freeze_text_layers = 0;  // > 0: freeze embeddings + the first K layers
  bool gradient_checkpointing = false;  // recompute each layer's activations in backward
  bool dropout = true;                  // the config's dropout in training (--no-dropout: off)
  int64_t pixel_cache_mb = 2048;        // preprocessed training images kept in memory up to this size
  uint64_t seed = 42;
  bool shuffle = true, resume = false, eval = true;
  std::string precision = "fp32", device = "cpu";
  int embed_batch_size = 32;
  int64_t save_steps = 0;        // also checkpoint every N steps (0 = only at epoch ends)
  int save_total_limit = 0;      // keep at most N checkpoint-* folders, oldest deleted first (0 = all)
  int64_t stop_after_steps = 0;  // testing: stop (as if interrupted) after N steps
  // When set and true (Ctrl-C in the Python package): write a checkpoint at the next step boundary
  // and return with TrainResult::interrupted; `resume` continues from it.
  const std::atomic<bool>* stop = nullptr;
  image::ImageBackend image_backend = image::ImageBackend::Pil;
};

struct TrainResult {
  int64_t steps = 0;
  double last_loss = 0;
  bool interrupted = false;  // stopped by TrainOptions::stop (a checkpoint of the last step is in `out`)
  nlohmann::json eval_before, eval_after;
};

TrainResult train(const TrainOptions& o, dist::Comm& comm);

struct EvalOptions {
  std::string model_dir, data, split = "val", cache_dir, caption_key = "txt";
  int batch_size = 8;  // loss is averaged over batches of this size, as HF's eval loop does
  int64_t max_seq_length = 128;
  std::string precision = "fp32", device = "cpu";
  int embed_batch_size = 32;
  image::ImageBackend image_backend = image::ImageBackend::Pil;
};
// {"split", "images", "captions", "loss", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"}
nlohmann::json evaluate(const EvalOptions& o, dist::Comm& comm);

}  // namespace clipkit::train
