// Evaluation of a dual encoder on a caption split: the CLIP loss and retrieval recall, with the
// model's current weights (in training, between epochs; `clipkit eval` on a checkpoint).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "model/clip_model.h"
#include "train/batch_source.h"

namespace clipkit::train {

// A tower's embeddings [n, P] of one batch input: projected cached features, or a forward pass
// (`train`: a training pass of `step`). In the calling thread's arena.
backend::Tensor embed_input(model::ClipModel& m, model::Part tower, const TowerInput& in, bool train, uint64_t step);

// {"split", "images", "captions", "loss", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"}:
// the loss averaged over batches of `batch` rows in row order, recall@k both ways over the split's
// images (each caption matches its own image).
nlohmann::json evaluate_split(model::ClipModel& clip, const CaptionBatches& src, int batch, int embed_batch,
                              const std::string& split);

struct RetrievalMetrics {
  double i2t_r1 = 0, i2t_r5 = 0, i2t_r10 = 0, t2i_r1 = 0, t2i_r5 = 0, t2i_r10 = 0;
};
// From normalized embeddings img [n_img, P], txt [n_txt, P]: caption t matches image caption_image[t].
RetrievalMetrics retrieval_recall(const float* img, int64_t n_img, const float* txt, const int64_t* caption_image,
                                  int64_t n_txt, int64_t P);

}  // namespace clipkit::train
