#include "apps/encoder.h"

#include <cmath>

#include "core/parallel.h"
#include "image/batch.h"

namespace clipkit::apps {

float EmbedderEncoder::logit_scale() const { return std::exp(e_.model().logit_scale()); }

Tensor EmbedderEncoder::encode_texts(const std::vector<std::string>& texts) const {
  if (texts.empty()) return Tensor::zeros(DType::F32, {0, dim()});
  pipeline::EmbedOptions o;
  o.batch_size = batch_;
  return e_.embed_texts(texts, o);
}

Tensor EmbedderEncoder::encode_images(const std::vector<const image::Image*>& images) const {
  const int64_t N = static_cast<int64_t>(images.size());
  if (N == 0) return Tensor::zeros(DType::F32, {0, dim()});
  const auto& pc = e_.preprocess_config();
  const int64_t per = static_cast<int64_t>(image::floats_per_image(pc));
  pipeline::EmbedOptions o;
  o.batch_size = batch_;
  std::vector<Tensor> parts;
  // Preprocess one batch at a time so memory stays at one batch of pixels.
  const int64_t B = std::max(1, batch_);
  std::vector<float> px(static_cast<size_t>(std::min(N, B) * per));
  for (int64_t b = 0; b < N; b += B) {
    const int64_t n = std::min(B, N - b);
    parallel_for(n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) image::preprocess(*images[static_cast<size_t>(b + i)], pc, px.data() + i * per);
    });
    parts.push_back(e_.embed_pixels(px.data(), n, o));
  }
  return pipeline::concat_rows(parts, dim());
}

}  // namespace clipkit::apps
