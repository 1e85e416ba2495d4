#include "train/evaluation.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::train {

backend::Tensor embed_input(model::ClipModel& m, model::Part tower, const TowerInput& in, bool train, uint64_t step) {
  if (!in.features.empty()) return m.project(tower, in.features.data(), in.n, train);
  if (tower == model::Part::Vision) return m.embed_images(in.pixels.data(), in.n, train, step);
  return m.embed_texts(in.ids.data(), in.mask.data(), in.n, in.L, train, step);
}

nlohmann::json evaluate_split(model::ClipModel& clip, const CaptionBatches& src, int batch, int embed_batch,
                              const std::string& split) {
  if (batch < 1 || embed_batch < 1) fail("evaluation: batch sizes must be ≥ 1 (got {} and {})", batch, embed_batch);
  backend::Backend& be = clip.backend();
  backend::Arena& arena = be.thread_arena();
  const int64_t P = clip.embed_dim(), Nr = src.size();
  // the split's images (those with a usable row), numbered compactly in first-use order
  std::vector<int64_t> images, caption_image(static_cast<size_t>(Nr)), compact(static_cast<size_t>(src.images()), -1);
  for (int64_t r = 0; r < Nr; ++r) {
    int64_t& c = compact[static_cast<size_t>(src.row_image()[static_cast<size_t>(r)])];
    if (c < 0) c = static_cast<int64_t>(images.size()), images.push_back(src.row_image()[static_cast<size_t>(r)]);
    caption_image[static_cast<size_t>(r)] = c;
  }
  const int64_t Ni = static_cast<int64_t>(images.size());
  std::vector<float> img(static_cast<size_t>(Ni * P)), txt(static_cast<size_t>(Nr * P));
  TowerInput in;
  for (int64_t s = 0; s < Ni; s += embed_batch) {
    backend::Arena::Scope scope(arena);
    src.image_inputs({images.begin() + s, images.begin() + std::min(Ni, s + embed_batch)}, in);
    be.download(embed_input(clip, model::Part::Vision, in, false, 0), img.data() + s * P);
  }
  for (int64_t s = 0; s < Nr; s += embed_batch) {
    backend::Arena::Scope scope(arena);
    std::vector<int64_t> rows(static_cast<size_t>(std::min(Nr, s + embed_batch) - s));
    for (size_t k = 0; k < rows.size(); ++k) rows[k] = s + static_cast<int64_t>(k);
    src.text_inputs(rows, in);
    be.download(embed_input(clip, model::Part::Text, in, false, 0), txt.data() + s * P);
  }
  double loss = 0;
  int64_t batches = 0;
  for (int64_t s = 0; s < Nr; s += batch, ++batches) {
    backend::Arena::Scope scope(arena);
    const int64_t n = std::min<int64_t>(batch, Nr - s);
    std::vector<float> bi(static_cast<size_t>(n * P));
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(bi.data() + k * P, img.data() + caption_image[static_cast<size_t>(s + k)] * P, sizeof(float) * P);
    loss += be.clip_loss(be.input(arena, bi.data(), DType::F32, {n, P}),
                         be.input(arena, txt.data() + s * P, DType::F32, {n, P}), clip.logit_scale_param().value, nullptr,
                         nullptr).loss;
  }
  model::l2_normalize_rows(img.data(), Ni, P);
  model::l2_normalize_rows(txt.data(), Nr, P);
  auto r = retrieval_recall(img.data(), Ni, txt.data(), caption_image.data(), Nr, P);
  return {{"split", split}, {"images", Ni}, {"captions", Nr}, {"loss", batches ? loss / batches : 0.0},
          {"i2t_r1", r.i2t_r1}, {"i2t_r5", r.i2t_r5}, {"i2t_r10", r.i2t_r10},
          {"t2i_r1", r.t2i_r1}, {"t2i_r5", r.t2i_r5}, {"t2i_r10", r.t2i_r10}};
}

RetrievalMetrics retrieval_recall(const float* img, int64_t n_img, const float* txt, const int64_t* cap_img,
                                  int64_t n_txt, int64_t P) {
  std::vector<float> S(static_cast<size_t>(n_img * n_txt));
  parallel_for(n_img, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t t = 0; t < n_txt; ++t) {
        float d = 0;
        for (int64_t k = 0; k < P; ++k) d += img[i * P + k] * txt[t * P + k];
        S[static_cast<size_t>(i * n_txt + t)] = d;
      }
  });
  RetrievalMetrics m;
  // image -> text: rank of the best-ranked matching caption
  for (int64_t i = 0; i < n_img; ++i) {
    float best_match = -1e30f;
    for (int64_t t = 0; t < n_txt; ++t)
      if (cap_img[t] == i) best_match = std::max(best_match, S[static_cast<size_t>(i * n_txt + t)]);
    int64_t rank = 0;
    for (int64_t t = 0; t < n_txt; ++t)
      if (cap_img[t] != i && S[static_cast<size_t>(i * n_txt + t)] > best_match) ++rank;
    m.i2t_r1 += rank < 1;
    m.i2t_r5 += rank < 5;
    m.i2t_r10 += rank < 10;
  }
  for (int64_t t = 0; t < n_txt; ++t) {
    const float s = S[static_cast<size_t>(cap_img[t] * n_txt + t)];
    int64_t rank = 0;
    for (int64_t i = 0; i < n_img; ++i)
      if (i != cap_img[t] && S[static_cast<size_t>(i * n_txt + t)] > s) ++rank;
    m.t2i_r1 += rank < 1;
    m.t2i_r5 += rank < 5;
    m.t2i_r10 += rank < 10;
  }
  for (double* v : {&m.i2t_r1, &m.i2t_r5, &m.i2t_r10}) *v /= std::max<int64_t>(1, n_img);
  for (double* v : {&m.t2i_r1, &m.t2i_r5, &m.t2i_r10}) *v /= std::max<int64_t>(1, n_txt);
  return m;
}

}  // namespace clipkit::train
