// The one thing the applications need from a CLIP model: texts and decoded images in,
// L2-normalized embeddings out, plus the logit scale. Apps take this interface so their maths is
// testable with synthetic vectors; EmbedderEncoder adapts pipeline::Embedder to it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "image/image.h"
#include "pipeline/embedder.h"

namespace clipkit::apps {

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual int64_t dim() const = 0;
  // The multiplier applied to cosine similarities before a softmax: exp(stored logit_scale).
  virtual float logit_scale() const = 0;
  // [T, D] float32, rows L2-normalized.
  virtual Tensor encode_texts(const std::vector<std::string>& texts) const = 0;
  // [N, D] float32, rows L2-normalized; images are decoded RGB of any size.
  virtual Tensor encode_images(const std::vector<const image::Image*>& images) const = 0;
};

// pipeline::Embedder behind the Encoder interface: images are preprocessed (threaded across images)
// with the model's preprocessor_config and embedded in batches of `batch_size`.
class EmbedderEncoder : public Encoder {
 public:
  EmbedderEncoder(const pipeline::Embedder& e, int batch_size = 32) : e_(e), batch_(batch_size) {}
  int64_t dim() const override { return e_.dim(); }
  float logit_scale() const override;
  Tensor encode_texts(const std::vector<std::string>& texts) const override;
  Tensor encode_images(const std::vector<const image::Image*>& images) const override;
  const pipeline::Embedder& embedder() const { return e_; }

 private:
  const pipeline::Embedder& e_;
  int batch_;
};

}  // namespace clipkit::apps
