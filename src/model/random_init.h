// Random-weight HF checkpoints of the standard CLIP architectures, for benchmarks and demos
// (speed does not depend on the values). Writes config.json + model.safetensors in HF layout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace clipkit::model {

// "clip-vit-base-patch32", "clip-vit-base-patch16", "clip-vit-large-patch14", "clip-tiny" (CLIPModel),
// "roberta-base", "roberta-tiny" (a RobertaModel text tower, for `clipkit compose`)
std::vector<std::string> known_architectures();
ModelConfig architecture_config(const std::string& arch);  // throws Error for unknown names

// HF RobertaModel with random weights (BERT init: N(0, 0.02), LN 1/0, biases 0), bare key names.
void write_random_roberta(const TextConfig& c, const std::string& dir, uint64_t seed);

// HF CLIPModel with random weights (embeddings ~N(0, 0.02), linear ~N(0, 1/sqrt(fan_in)), LN 1/0).
void write_random_clip(const ModelConfig& c, const std::string& dir, uint64_t seed);

}  // namespace clipkit::model
