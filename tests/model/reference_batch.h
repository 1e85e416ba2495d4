// The reference batch of ../reference/train/gradients.safetensors for one tiny model, and one
// full fine-tuning step on it (both towers forward, CLIP loss, backward) — what the gradient,
// mixed-precision and dropout tests run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/clip_model.h"
#include "test_util.h"

namespace clipkit::model::testing {

struct ReferenceBatch {
  const float* pixels = nullptr;  // [B, 3, H, W], owned by the SafeTensorsFile it came from
  std::vector<int32_t> ids, mask;  // [B, L]
  int64_t B = 0, L = 0;

  // model: "tiny-clip" or "tiny-clip-roberta" (the tensor name prefix in `ref`)
  static ReferenceBatch load(const SafeTensorsFile& ref, const std::string& model) {
    ReferenceBatch b;
    b.pixels = ref.get(model + "/pixel_values").ptr<float>();
    const clipkit::Tensor& ids64 = ref.get(model + "/input_ids");
    const clipkit::Tensor& mask64 = ref.get(model + "/attention_mask");
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

// A backend tensor's values on the host.
inline std::vector<float> host(backend::Backend& be, const backend::Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.download(t, v.data());
  return v;
}

// zero_grad, both towers forward (training flag, dropout seed `step`), the CLIP loss, and with
// `backward` the gradients of every trainable tensor (logit scale included). image_emb (optional)
// gets the image embeddings [B, P].
inline backend::ClipLossResult full_step(ClipModel& m, const ReferenceBatch& b, bool training, uint64_t step,
                                         bool backward = true, std::vector<float>* image_emb = nullptr) {
  backend::Backend& be = m.backend();
  backend::Arena::Scope scope(be.thread_arena());
  m.zero_grad();
  backend::Tensor ie = m.embed_images(b.pixels, b.B, training, step);
  backend::Tensor te = m.embed_texts(b.ids.data(), b.mask.data(), b.B, b.L, training, step);
  backend::Tensor di = be.thread_arena().alloc(DType::F32, ie.shape()), dt = be.thread_arena().alloc(DType::F32, te.shape());
  auto r = be.clip_loss(ie, te, m.logit_scale_param().value, &di, &dt);
  if (image_emb) *image_emb = host(be, ie);
  if (backward) {
    const float g = static_cast<float>(r.dlogit_scale);
    be.upload(&g, m.logit_scale_param().grad);
    m.backward(Part::Vision, di);
    m.backward(Part::Text, dt);
    m.settle_grads();
  }
  return r;
}

// The model trained on the reference batch's setting: every tensor trains (nothing frozen).
inline LoadOptions training_options(backend::Precision p, bool dropout, bool checkpointing = false) {
  LoadOptions o;
  o.device = test::test_device();
  o.train = true;
  o.precision = p;
  o.dropout = dropout;
  o.gradient_checkpointing = checkpointing;
  return o;
}

}  // namespace clipkit::model::testing
