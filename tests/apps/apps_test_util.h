// Helpers for the apps tests: a synthetic encoder whose embeddings are known, and temp folders.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

#include "apps/encoder.h"
#include "model/clip_model.h"

namespace clipkit::test {

inline std::string apps_temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("clipkit_apps_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// Texts map to fixed vectors by exact lookup (unknown text: an error); an image maps to its mean
// colour (r, g, b) in the first three dims plus a constant, normalized. Known answers by design.
class SyntheticEncoder : public apps::Encoder {
 public:
  explicit SyntheticEncoder(int64_t D = 8, float scale = 100.f) : D_(D), scale_(scale) {}
  void set_text(const std::string& t, std::vector<float> v) {
    v.resize(static_cast<size_t>(D_), 0.f);
    texts_[t] = v;
  }
  int64_t dim() const override { return D_; }
  float logit_scale() const override { return scale_; }
  Tensor encode_texts(const std::vector<std::string>& texts) const override {
    Tensor t = Tensor::zeros(DType::F32, {static_cast<int64_t>(texts.size()), D_});
    for (size_t i = 0; i < texts.size(); ++i) {
      auto it = texts_.find(texts[i]);
      if (it == texts_.end()) throw std::runtime_error("synthetic encoder: unknown text \"" + texts[i] + "\"");
      std::copy(it->second.begin(), it->second.end(), t.ptr<float>() + static_cast<int64_t>(i) * D_);
    }
    model::l2_normalize_rows(t.ptr<float>(), t.dim(0), D_);
    ++text_calls;
    return t;
  }
  Tensor encode_images(const std::vector<const image::Image*>& ims) const override {
    Tensor t = Tensor::zeros(DType::F32, {static_cast<int64_t>(ims.size()), D_});
    for (size_t i = 0; i < ims.size(); ++i) {
      double m[3] = {0, 0, 0};
      const size_t n = ims[i]->rgb.size() / 3;
      for (size_t p = 0; p < n; ++p)
        for (int c = 0; c < 3; ++c) m[c] += ims[i]->rgb[p * 3 + c];
      float* o = t.ptr<float>() + static_cast<int64_t>(i) * D_;
      for (int c = 0; c < 3; ++c) o[c] = static_cast<float>(m[c] / double(n) / 255.0);
      o[3] = 0.05f;
    }
    model::l2_normalize_rows(t.ptr<float>(), t.dim(0), D_);
    images_encoded += static_cast<int64_t>(ims.size());
    return t;
  }
  mutable int text_calls = 0;
  mutable int64_t images_encoded = 0;

 private:
  int64_t D_;
  float scale_;
  std::map<std::string, std::vector<float>> texts_;
};

inline std::string tiny_clip() { return std::string(CLIPKIT_TEST_DATA) + "/models/tiny-clip"; }

}  // namespace clipkit::test
