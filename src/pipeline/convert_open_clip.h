// open_clip checkpoints -> Hugging Face CLIPModel folders, so models published only in open_clip's
// format load like any other (`clipkit convert open-clip DIR --out HF_DIR`).
//
// Input: a folder with open_clip_config.json ({"model_cfg": {"embed_dim", "quick_gelu",
// "vision_cfg": {...}, "text_cfg": {...}}, "preprocess_cfg": {...}}) and open_clip_model.safetensors
// (or open_clip_pytorch_model.safetensors). Handled: the CLIP architecture open_clip shares with
// OpenAI's release -- a ViT image tower with class-token pooling and the causal text transformer
// pooled at the end token. Anything else (timm or Hugging Face towers, attentional pooling, layer
// scale, CoCa, SigLIP, ...) is refused naming the setting. Tensors are copied bit for bit:
// in_proj splits into q/k/v, the two projections are transposed.
#pragma once
#include <string>

namespace clipkit::pipeline {

struct OpenClipConversion {
  std::string architecture;  // e.g. "CLIPModel (ViT-B/32 + CLIP text)"
  int64_t tensors = 0;       // written to model.safetensors
};

// vocab_dir: vocab.json + merges.txt for the tokenizer files ("" = the bundled CLIP BPE, which is
// what open_clip's tokenizer uses).
OpenClipConversion convert_open_clip(const std::string& in_dir, const std::string& out_dir,
                                     const std::string& vocab_dir = "");

}  // namespace clipkit::pipeline
