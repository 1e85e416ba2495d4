// The reference batch of ../reference/train/gradients.safetensors for one tiny model, and one
// full fine-tuning step on it (both towers forward, CLIP loss, backward) — what the gradient,
// mixed-precision and dropout tests run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "train/clip_loss.h"
#include "train/trainable_model.h"

namespace clipkit::train::testing {

struct ReferenceBatch {
  const float* pixels = nullptr;  // [B, 3, H, W], owned by the SafeTensorsFile it came from
  std::vector<int32_t> ids, mask;  // [B, L]
  int64_t B = 0, L = 0;

  // model: "tiny-clip" or "tiny-clip-roberta" (the tensor name prefix in `ref`)
  static ReferenceBatch load(const SafeTensorsFile& ref, const std::string& model) {
    ReferenceBatch b;
    b.pixels = ref.get(model + "/pixel_values").ptr<float>();
    const Tensor& ids64 = ref.get(model + "/input_ids");
    const Tensor& mask64 = ref.get(model + "/attention_mask");
    b.B = ids64.dim(0);
    b.L = ids64.dim(1);
    b.ids.resize(static_cast<size_t>(b.B * b.L));
    b.mask.resize(b.ids.size());
    for (int64_t i = 0; i < b.B * b.L; ++i) {
      b.ids[static_cast<size_t>(i)] = static_cast<int32_t>(ids64.ptr<int64_t>()[i]);
      b.mask[static_cast<size_t>(i)] = static_cast<int32_t>(mask64.ptr<int64_t>()[i]);
    }
    return b;
  }
};

// zero_grad, both towers forward (training flag, dropout seed `step`), the CLIP loss, and with
// `backward` the gradients of every trainable tensor (logit scale included). image_emb (optional)
// gets the image embeddings [B, P].
inline ClipLossResult full_step(TrainableClip& m, const ReferenceBatch& b, bool training, uint64_t step,
                                bool backward = true, std::vector<float>* image_emb = nullptr) {
  const int64_t P = m.embed_dim();
  std::vector<float> ie(static_cast<size_t>(b.B * P)), te(ie.size()), di(ie.size()), dt(ie.size());
  m.zero_grad();
  m.vision_forward(b.pixels, b.B, ie.data(), training, step);
  m.text_forward(b.ids.data(), b.mask.data(), b.B, b.L, te.data(), training, step);
  auto r = clip_loss(ie.data(), te.data(), b.B, P, m.logit_scale, di.data(), dt.data());
  if (image_emb) *image_emb = ie;
  if (backward) {
    m.g_logit_scale = static_cast<float>(r.dlogit_scale);
    m.vision_backward(di.data());
    m.text_backward(dt.data());
  }
  return r;
}

}  // namespace clipkit::train::testing
