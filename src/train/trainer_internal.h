// Helpers shared by the projection-only trainer (trainer.cpp) and full fine-tuning (full_trainer.cpp).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "train/comm.h"
#include "train/optimizer.h"

namespace clipkit::train {

// The row order of an epoch: a seeded shuffle (or identity).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);
// The newest complete "checkpoint-<step>" folder in out, or "".
std::string latest_checkpoint(const std::string& out);
// Appends one JSON line to metrics.jsonl.
void log_line(const std::string& path, const nlohmann::json& j);

// Loads AdamW's moments and step from a checkpoint folder made with the same flags; returns the
// global step to continue from. Throws when the checkpoint was made with other batch/step settings
// or other trainable tensors.
int64_t restore_training_state(const std::string& checkpoint, AdamW& opt, int64_t total_steps, int64_t batch_size);

// Writes OUT/checkpoint-<step>/ atomically: the HF checkpoint with `trained` tensors replaced,
// optimizer.safetensors and trainer_state.json (`state` + global_step); and, at the last step, the
// final HF checkpoint at the top of OUT.
void save_training_checkpoint(const std::string& out, const std::string& model_dir, int64_t step, bool final_step,
                              const std::map<std::string, Tensor>& trained, AdamW& opt, nlohmann::json state);

// Optimizer steps of a run: HF keeps the last partial batch of an epoch; --max-steps overrides.
struct StepPlan {
  int64_t steps_per_epoch = 0, total = 0, epochs = 0;
};
StepPlan plan_steps(int64_t rows, int64_t batch, int64_t max_steps, int64_t epochs);

// Start of a run: restores the optimizer from `checkpoint` (when non-empty) and returns its step,
// or starts a fresh metrics.jsonl and returns 0.
int64_t begin_run(const std::string& checkpoint, AdamW& opt, const StepPlan& plan, int64_t batch,
                  const std::string& metrics, bool lead);

// The whole batch's embeddings from every rank's share: each rank holds `share` rows of P (global
// rows [r*share, min(n, (r+1)*share)), zero-padded to equal length for the allgather); ai/at get the
// n real rows in global order.
void gather_batch(Comm& comm, const std::vector<float>& ei, const std::vector<float>& et, int64_t n, int64_t share,
                  int64_t P, std::vector<float>* ai, std::vector<float>* at);

// Throughput since the run (or resume) started, and the metrics.jsonl line of one optimizer step.
struct StepMeter {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t samples = 0;
  double samples_per_s() const;
  nlohmann::json line(int64_t step, int64_t steps_per_epoch, double loss, double grad_norm, double lr,
                      float logit_scale) const;
};

// Appends an evaluation line to metrics.jsonl and prints it.
void report_eval(const std::string& metrics, const nlohmann::json& ev, int64_t epoch);

}  // namespace clipkit::train
