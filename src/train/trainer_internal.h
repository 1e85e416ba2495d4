// Helpers shared by the projection-only trainer (trainer.cpp) and full fine-tuning (full_trainer.cpp).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clipkit::train {

// The row order of an epoch: a seeded shuffle (or identity).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);
// The newest complete "checkpoint-<step>" folder in out, or "".
std::string latest_checkpoint(const std::string& out);
// Appends one JSON line to metrics.jsonl.
void log_line(const std::string& path, const nlohmann::json& j);

}  // namespace clipkit::train
