// `clipkit compose`: a VisionTextDualEncoder from two pretrained towers, what
// VisionTextDualEncoderModel.from_vision_text_pretrained(vision, text) + processor.save_pretrained do.
#pragma once
#include <cstdint>
#include <string>

namespace clipkit::pipeline {

struct ComposeOptions {
  std::string vision_dir, text_dir, out_dir;
  int projection_dim = 512;
  float logit_scale_init = 2.6592f;
  uint64_t seed = 0;
};

// Vision: a CLIPModel or CLIPVisionModel checkpoint. Text: RoBERTa (RobertaModel or any
// Roberta*For* checkpoint: the "roberta." prefix is stripped, heads dropped) or a CLIP text tower
// (CLIPModel / CLIPTextModel). New projections: torch nn.Linear's default init,
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded; logit_scale = logit_scale_init. A RoBERTa
// checkpoint without pooler weights gets HF's init for it (N(0, initializer_range), bias 0).
void compose_dual_encoder(const ComposeOptions& o);

}  // namespace clipkit::pipeline
